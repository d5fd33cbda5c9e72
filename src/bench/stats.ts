/**
 * Statistics for benchmark samples: order statistics only (medians,
 * quantiles, ranges). Means of noisy timing samples are pulled around by
 * the one run that met a busy host; medians are not.
 */

/** Below this many samples p10/p90 are interpolations between a handful of points, so summaries use min/max. */
export const QUANTILE_MIN_SAMPLES = 10;

function sorted(xs: readonly number[]): number[] {
  if (xs.length === 0) throw new RangeError('statistics of an empty sample set');
  return [...xs].sort((a, b) => a - b);
}

export function median(xs: readonly number[]): number {
  const s = sorted(xs);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The q-quantile (0 <= q <= 1), linearly interpolated between order statistics (Hyndman-Fan type 7, as in R and NumPy). */
export function quantile(xs: readonly number[], q: number): number {
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile ${q} is outside [0, 1]`);
  const s = sorted(xs);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

/** Relative range: (max - min) / median. Kept with this meaning for bench/exit-latency. */
export function spread(xs: readonly number[]): number {
  return (Math.max(...xs) - Math.min(...xs)) / median(xs);
}

export type SpreadKind = 'p10-p90' | 'min-max';

/** What a report shows for one metric's samples. */
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  /** Only with at least QUANTILE_MIN_SAMPLES samples. */
  p10?: number;
  p90?: number;
  /** The band the spread is measured over: p10..p90, or min..max for few samples. */
  low: number;
  high: number;
  spreadKind: SpreadKind;
  /**
   * (high - low) / |median|: the relative width of the band. 0 for one
   * sample (no noise estimate: see `n`), null when the median is 0 and the
   * band is not (a relative width does not exist).
   */
  spread: number | null;
}

export function summarize(xs: readonly number[]): Summary {
  const s = sorted(xs);
  const n = s.length;
  const med = median(s);
  const min = s[0]!;
  const max = s[n - 1]!;
  const withQuantiles = n >= QUANTILE_MIN_SAMPLES;
  const p10 = withQuantiles ? quantile(s, 0.1) : undefined;
  const p90 = withQuantiles ? quantile(s, 0.9) : undefined;
  const low = p10 ?? min;
  const high = p90 ?? max;
  const width = high - low;
  const rel = med !== 0 ? width / Math.abs(med) : width === 0 ? 0 : null;
  const out: Summary = { n, median: med, min, max, low, high, spreadKind: withQuantiles ? 'p10-p90' : 'min-max', spread: rel };
  if (p10 !== undefined && p90 !== undefined) {
    out.p10 = p10;
    out.p90 = p90;
  }
  return out;
}

/** `n` rounded to `significant` significant digits, as a number (for params: context, not data). */
export function roundSig(n: number, significant: number): number {
  return Number.isFinite(n) && n !== 0 ? Number(n.toPrecision(significant)) : n;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** A number with about `significant` significant digits, for tables (no exponent for ordinary magnitudes). */
export function fmtSig(n: number, significant = 3): string {
  if (!Number.isFinite(n)) return String(n);
  if (n === 0) return '0';
  const digits = Math.max(0, significant - 1 - Math.floor(Math.log10(Math.abs(n))));
  return fmt(n, Math.min(digits, 6));
}
