/**
 * Baseline comparison. For each metric in both reports:
 *
 *   ratio = current median / baseline median
 *   a change beyond tolerance is |ratio - 1| > tolerance; it is a regression
 *   when it goes the wrong way for the metric (up for better='lower', down
 *   for better='higher') and an improvement otherwise.
 *
 * Noise, honestly: each side's noise is the relative width of its sample
 * band, (p90 - p10) / median from 10 samples on, (max - min) / median below
 * (quantiles of a handful of samples are interpolation, not data). Then:
 *
 *   - a change beyond tolerance whose bands still overlap is within the
 *     noise of the two runs: 'inconclusive', not a regression or improvement;
 *   - a change within tolerance is a 'pass' only if neither side's noise
 *     exceeds the tolerance; otherwise the runs cannot resolve a change of
 *     that size, and it is 'inconclusive', not a pass;
 *   - with fewer than 2 samples on a side there is no noise estimate: always
 *     'inconclusive'.
 *
 * A change beyond tolerance with disjoint bands is reported whatever the
 * noise: the bands already say the two runs differ.
 */
import { NodevisorError } from '../kvm/errors.js';
import type { Metric } from './types.js';
import {
  VERDICTS,
  type BenchReport,
  type ComparedSide,
  type Comparison,
  type MetricComparison,
  type Verdict,
} from './report-types.js';
import { isSelected, mostSpecific } from './select.js';
import { median, summarize } from './stats.js';

export interface ToleranceOverrides {
  /** For every metric (`--tolerance 0.15`). */
  all?: number;
  /** Per metric id or dotted prefix (`--tolerance micro.ipi-rtt.user=0.3`); the longest matching pattern wins. */
  byPattern: Map<string, number>;
}

export interface CompareOptions {
  tolerances?: ToleranceOverrides;
  /**
   * The two runs' samples were measured in pairs, repetition by repetition
   * (an A/B run): judge each pair's ratio instead of the two sample bands,
   * so that load that drifts over the run cancels out.
   */
  paired?: boolean;
  /** Inconclusive and missing metrics fail (exit status 2). */
  strict?: boolean;
  /** Where the baseline came from (a file name), for the report. */
  source?: string;
}

export const ExitCodes = { pass: 0, regressed: 1, strictInconclusive: 2 } as const;

function parseValue(text: string, spec: string): number {
  const t = text.trim();
  const v = t.endsWith('%') ? Number(t.slice(0, -1)) / 100 : Number(t);
  if (t === '' || !Number.isFinite(v) || v < 0 || v > 10) {
    throw new NodevisorError('EBENCH', `bad tolerance "${spec}": give a relative change like 0.15 or 15%, optionally for a metric: micro.ipi-rtt.user=0.3`);
  }
  return v;
}

/** Parses `--tolerance` values: "0.15", "15%", "ID=0.3", or several comma-separated. */
export function parseTolerances(specs: readonly string[]): ToleranceOverrides {
  const out: ToleranceOverrides = { byPattern: new Map() };
  for (const spec of specs) {
    for (const part of spec.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) {
        out.all = parseValue(part, spec);
        continue;
      }
      const pattern = part.slice(0, eq).trim();
      if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(pattern)) throw new NodevisorError('EBENCH', `bad tolerance "${spec}": "${pattern}" is not a metric id or dotted prefix`);
      out.byPattern.set(pattern, parseValue(part.slice(eq + 1), spec));
    }
  }
  return out;
}

/** The tolerance that applies to a metric: most specific override, then the global one, then the metric's own. */
export function toleranceFor(metric: Pick<Metric, 'id' | 'tolerance'>, overrides?: ToleranceOverrides): number {
  return (overrides && mostSpecific(metric.id, overrides.byPattern)) ?? overrides?.all ?? metric.tolerance;
}

function side(samples: readonly number[]): ComparedSide {
  const s = summarize(samples);
  return { median: s.median, n: s.n, low: s.low, high: s.high, noise: s.n < 2 ? null : s.spread };
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const signedPct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;

/**
 * Compares a metric whose samples were taken in pairs (sample i of both
 * runs measured back to back). Each pair gives a ratio; the change is the
 * median ratio, the noise the ratios' spread, and a change beyond the
 * tolerance is called only when every ratio of the band (min-max below 10
 * pairs, p10-p90 from 10) lies on the same side of 1: the pairs agree on
 * its direction.
 */
export function comparePairedMetric(current: Metric, baseline: Metric, tolerance: number): MetricComparison {
  const out = compareMetric(current, baseline, tolerance);
  if (out.verdict === 'inconclusive' && out.ratio === undefined) return out; // meaning changed, or no ratio at all
  const n = Math.min(current.samples.length, baseline.samples.length);
  const ratios = Array.from({ length: n }, (_, i) => current.samples[i]! / baseline.samples[i]!).filter((r) => Number.isFinite(r));
  if (ratios.length < 2) {
    out.verdict = 'inconclusive';
    out.reason = `fewer than 2 pairs of samples: no paired comparison`;
    return out;
  }
  const s = summarize(ratios);
  const change = s.median - 1;
  const worse = current.better === 'lower' ? change > 0 : change < 0;
  out.ratio = s.median;
  out.noise = s.spread;
  const agree = s.low > 1 || s.high < 1;
  if (Math.abs(change) > tolerance) {
    if (!agree) {
      out.verdict = 'inconclusive';
      out.reason = `pairs changed ${signedPct(change)} at the median (tolerance ${pct(tolerance)}), but not all in the same direction (pair ratios ${s.low.toFixed(3)}-${s.high.toFixed(3)})`;
      return out;
    }
    out.verdict = worse ? 'regressed' : 'improved';
    out.reason = `${worse ? 'worse' : 'better'} by ${pct(Math.abs(change))} (tolerance ${pct(tolerance)}); every pair agrees (ratios ${s.low.toFixed(3)}-${s.high.toFixed(3)})`;
    return out;
  }
  if ((s.spread ?? Infinity) > tolerance) {
    out.verdict = 'inconclusive';
    out.reason = `pairs changed ${signedPct(change)}, within tolerance ${pct(tolerance)}, but the pairs' noise ${pct(s.spread ?? 0)} exceeds it`;
    return out;
  }
  out.verdict = 'pass';
  out.reason = `pairs changed ${signedPct(change)}, within tolerance ${pct(tolerance)} (pair noise ${pct(s.spread ?? 0)})`;
  return out;
}

/** Compares one metric present in both runs. */
export function compareMetric(current: Metric, baseline: Metric, tolerance: number): MetricComparison {
  const cur = side(current.samples);
  const base = side(baseline.samples);
  const out: MetricComparison = { id: current.id, verdict: 'inconclusive', unit: current.unit, better: current.better, tolerance, current: cur, baseline: base, reason: '' };
  if (current.unit !== baseline.unit || current.better !== baseline.better) {
    out.reason = `the metric changed meaning (unit ${baseline.unit} -> ${current.unit}, better ${baseline.better} -> ${current.better})`;
    return out;
  }
  if (base.median === 0) {
    out.reason = 'the baseline median is 0: no ratio';
    return out;
  }
  const ratio = cur.median / base.median;
  out.ratio = ratio;
  const noise = cur.noise === null || base.noise === null ? null : Math.max(cur.noise, base.noise);
  out.noise = noise;
  const change = ratio - 1;
  const worse = current.better === 'lower' ? change > 0 : change < 0;
  if (noise === null) {
    out.reason = `changed ${signedPct(change)}, but a side has fewer than 2 samples (or a zero median): its noise is unknown`;
    return out;
  }
  const overlap = cur.low <= base.high && base.low <= cur.high;
  if (Math.abs(change) > tolerance) {
    if (overlap) {
      out.reason = `changed ${signedPct(change)} (tolerance ${pct(tolerance)}), but the sample bands overlap: within the runs' noise (${pct(noise)})`;
      return out;
    }
    out.verdict = worse ? 'regressed' : 'improved';
    out.reason = `${worse ? 'worse' : 'better'} by ${pct(Math.abs(change))} (tolerance ${pct(tolerance)}); sample bands do not overlap`;
    return out;
  }
  if (noise > tolerance) {
    out.reason = `changed ${signedPct(change)}, within tolerance ${pct(tolerance)}, but noise ${pct(noise)} exceeds the tolerance: a change of that size could not be seen`;
    return out;
  }
  out.verdict = 'pass';
  out.reason = `changed ${signedPct(change)}, within tolerance ${pct(tolerance)} (noise ${pct(noise)})`;
  return out;
}

function metricsOf(report: BenchReport): Map<string, { metric: Metric; suite: string }> {
  const out = new Map<string, { metric: Metric; suite: string }>();
  for (const s of report.suites) for (const m of s.metrics) out.set(m.id, { metric: m, suite: s.suite });
  return out;
}

/** 0 pass; 1 any regression; 2 with `strict`, any inconclusive or missing metric. */
export function comparisonExitStatus(counts: Record<Verdict, number>, strict: boolean): number {
  if (counts.regressed > 0) return ExitCodes.regressed;
  if (strict && counts.inconclusive + counts.missing > 0) return ExitCodes.strictInconclusive;
  return ExitCodes.pass;
}

/**
 * Compares `current` with `baseline`. Baseline metrics outside what the
 * current run set out to measure (its suites and `only`) are ignored rather
 * than reported missing; a metric of a suite that failed is missing.
 */
export function compareToBaseline(current: BenchReport, baseline: BenchReport, options: CompareOptions = {}): Comparison {
  const cur = metricsOf(current);
  const base = metricsOf(baseline);
  const inScope = (id: string, suite: string): boolean => current.settings.suites.includes(suite) && isSelected(id, current.settings.only);
  const metrics: MetricComparison[] = [];
  for (const [id, { metric }] of cur) {
    const b = base.get(id);
    const tolerance = toleranceFor(metric, options.tolerances);
    if (b) metrics.push(options.paired ? comparePairedMetric(metric, b.metric, tolerance) : compareMetric(metric, b.metric, tolerance));
    else metrics.push({ id, verdict: 'new', unit: metric.unit, better: metric.better, tolerance, current: side(metric.samples), reason: 'not in the baseline' });
  }
  for (const [id, { metric, suite }] of base) {
    if (cur.has(id) || !inScope(id, suite)) continue;
    const failed = current.suites.find((s) => s.suite === suite)?.error;
    metrics.push({
      id,
      verdict: 'missing',
      unit: metric.unit,
      better: metric.better,
      tolerance: toleranceFor(metric, options.tolerances),
      baseline: side(metric.samples),
      reason: failed ? `not measured: suite ${suite} failed` : 'in the baseline but not measured',
    });
  }
  const counts = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const m of metrics) counts[m.verdict]++;
  const strict = options.strict ?? false;
  const comparison: Comparison = {
    baseline: { date: baseline.metadata.date, nodevisorVersion: baseline.metadata.nodevisorVersion },
    strict,
    metrics,
    counts,
    noiseFloor: noiseFloor(metrics),
    exitStatus: comparisonExitStatus(counts, strict),
  };
  if (options.source !== undefined) comparison.baseline.source = options.source;
  return comparison;
}

function noiseFloor(metrics: readonly MetricComparison[]): Comparison['noiseFloor'] {
  const known = metrics.filter((m): m is MetricComparison & { noise: number } => typeof m.noise === 'number');
  if (known.length === 0) return null;
  const worst = known.reduce((a, b) => (b.noise > a.noise ? b : a));
  return { median: median(known.map((m) => m.noise)), worst: { id: worst.id, noise: worst.noise } };
}
