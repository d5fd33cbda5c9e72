/**
 * Charts for `nodevisor bench --svg DIR`, as hand-written SVG:
 *
 * - scaling-<family>.svg: for each family of metrics with a numeric
 *   `params.vcpus` (the same measurement at several vCPU counts), the
 *   median against the vCPU count with min-max bars, against ideal scaling:
 *   a flat line at `params.ideal` when the suite names one (an efficiency
 *   ratio's 1.0), else linear from the smallest count for better='higher'
 *   (throughput) and flat for better='lower' (a per-operation cost that
 *   should not grow).
 *   Family: `params.family` if a suite sets it, else the id without the
 *   segment that spells the vCPU count ("scaling.ipi.v4" -> "scaling.ipi").
 * - distribution-<family>.svg: for each family of metrics whose last id
 *   segment is their `params.irqchip` (micro.ipi-rtt.user, .split, .kernel),
 *   one box per mode over the raw observations (`distribution`, else the
 *   samples): every observation as a dot, quartile box, median line,
 *   p5-p95 whiskers (min-max below 20 observations).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchReport, MetricReport } from './report-types.js';
import { fmtSig, median, quantile } from './stats.js';

export interface Chart {
  /** File name inside the --svg directory. */
  file: string;
  title: string;
  svg: string;
}

const W = 760;
const H = 460;
const PLOT = { left: 84, right: W - 32, top: 92, bottom: H - 72 };
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const INK = '#1f2937';
const MUTED = '#6b7280';
const GRID = '#e5e7eb';
const MEASURED = '#2563eb';
const IDEAL = '#9ca3af';
const MODE_COLOURS: Record<string, string> = { user: '#2563eb', split: '#d97706', kernel: '#059669' };
const EXTRA_COLOURS = ['#7c3aed', '#db2777', '#0891b2', '#65a30d'];
const MODE_ORDER = ['user', 'split', 'kernel'];
const MAX_DOTS = 400;

/** Escapes text and attribute values for XML. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const r1 = (x: number): string => (Math.round(x * 10) / 10).toString();

function truncate(s: string, px: number, fontPx: number): string {
  const max = Math.floor(px / (fontPx * 0.55));
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

function text(x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${r1(x)}" y="${r1(y)}"${attrs ? ` ${attrs}` : ''}>${esc(s)}</text>`;
}

function frame(title: string, subtitle: string, desc: string, body: string[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="${esc(FONT)}" role="img">`,
    `<title>${esc(title)}</title>`,
    `<desc>${esc(desc)}</desc>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`,
    text(PLOT.left, 32, truncate(title, W - PLOT.left - 20, 17), `font-size="17" font-weight="600" fill="${INK}"`),
    text(PLOT.left, 54, truncate(subtitle, W - PLOT.left - 20, 12), `font-size="12" fill="${MUTED}"`),
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** A round step (1, 2 or 5 times a power of ten) giving about `target` intervals over `span`. */
function niceStep(span: number, target: number): number {
  const raw = span / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

interface Scale {
  at(v: number): number;
  ticks: number[];
  log: boolean;
}

function linearScale(lo: number, hi: number, p0: number, p1: number, target = 5): Scale {
  if (hi <= lo) hi = lo + (lo === 0 ? 1 : Math.abs(lo) * 0.1);
  const step = niceStep(hi - lo, target);
  const a = Math.floor(lo / step) * step;
  const b = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let v = a; v <= b + step / 2; v += step) ticks.push(Number(v.toPrecision(12)));
  return { at: (v) => p0 + ((v - a) / (b - a)) * (p1 - p0), ticks, log: false };
}

/** The 1-2-5 sequence (..., 0.5, 1, 2, 5, 10, ...) around [lo, hi]. */
function oneTwoFive(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let d = 10 ** (Math.floor(Math.log10(lo)) - 1); d <= hi * 10; d *= 10) for (const m of [1, 2, 5]) out.push(Number((d * m).toPrecision(12)));
  return out;
}

function logScale(lo: number, hi: number, p0: number, p1: number): Scale {
  const seq = oneTwoFive(lo, hi);
  const a = [...seq].reverse().find((t) => t <= lo)!;
  const b = seq.find((t) => t >= hi)!;
  const ticks = seq.filter((t) => t >= a && t <= b);
  const la = Math.log10(a);
  const lb = Math.log10(b);
  return { at: (v) => p0 + ((Math.log10(v) - la) / (lb - la)) * (p1 - p0), ticks, log: true };
}

/** Tick labels: no more digits than the tick needs (0.5, 20, 1,000). */
/** Axis labels stay short enough for the margin: SI suffixes from 10,000 up (1.2M, 3G). */
function tickLabel(v: number): string {
  const a = Math.abs(v);
  for (const [div, suffix] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e4, 'k']] as const) {
    if (a >= div) return `${Number((v / (suffix === 'k' ? 1e3 : div)).toPrecision(3))}${suffix === 'k' ? 'k' : suffix}`;
  }
  return Number(v.toPrecision(6)).toLocaleString('en-US', { maximumFractionDigits: 6 });
}

function yAxis(y: Scale, unit: string): string[] {
  const out: string[] = [];
  for (const t of y.ticks) {
    const py = y.at(t);
    out.push(`<line x1="${PLOT.left}" y1="${r1(py)}" x2="${PLOT.right}" y2="${r1(py)}" stroke="${GRID}" stroke-width="1"/>`);
    out.push(text(PLOT.left - 8, py + 4, tickLabel(t), `font-size="11" fill="${MUTED}" text-anchor="end"`));
  }
  const cy = (PLOT.top + PLOT.bottom) / 2;
  out.push(text(20, cy, `${unit}${y.log ? ' (log scale)' : ''}`, `font-size="12" fill="${INK}" text-anchor="middle" transform="rotate(-90 20 ${r1(cy)})"`));
  out.push(`<line x1="${PLOT.left}" y1="${PLOT.bottom}" x2="${PLOT.right}" y2="${PLOT.bottom}" stroke="${INK}" stroke-width="1"/>`);
  out.push(`<line x1="${PLOT.left}" y1="${PLOT.top}" x2="${PLOT.left}" y2="${PLOT.bottom}" stroke="${INK}" stroke-width="1"/>`);
  return out;
}

function fileName(prefix: string, family: string): string {
  return `${prefix}-${family.replace(/[^A-Za-z0-9_.-]+/g, '_')}.svg`;
}

function allMetrics(report: BenchReport): MetricReport[] {
  return report.suites.flatMap((s) => s.metrics);
}

/** The scaling family of a metric, or undefined if it has no numeric params.vcpus. */
export function scalingFamily(m: MetricReport): string | undefined {
  const v = m.params?.vcpus;
  if (typeof v !== 'number') return undefined;
  const base = typeof m.params?.family === 'string' ? m.params.family : familyWithout(m.id, v);
  return `${base}|${m.unit}|${m.better}`;
}

function familyWithout(id: string, vcpus: number): string {
  const spells = new RegExp(`^[A-Za-z_-]*${vcpus}[A-Za-z_-]*$`);
  const kept = id.split('.').filter((seg, i) => i === 0 || !spells.test(seg));
  return kept.join('.');
}

function scalingChart(family: string, members: MetricReport[]): Chart {
  const [name] = family.split('|');
  const sorted = [...members].sort((a, b) => (a.params!.vcpus as number) - (b.params!.vcpus as number));
  const pts = sorted.map((m) => ({ n: m.params!.vcpus as number, med: m.summary.median, min: m.summary.min, max: m.summary.max }));
  const first = sorted[0]!;
  const higher = first.better === 'higher';
  const n0 = pts[0]!.n;
  const y0 = pts[0]!.med;
  const fixed = typeof first.params?.ideal === 'number' ? first.params.ideal : undefined;
  const linear = fixed === undefined && higher;
  const ideal = (n: number): number => fixed ?? (linear ? (y0 * n) / n0 : y0);
  const nMax = pts[pts.length - 1]!.n;
  const x = linearScale(0, nMax, PLOT.left, PLOT.right, Math.min(nMax, 8));
  const yHi = Math.max(...pts.map((p) => p.max), ideal(nMax));
  const y = linearScale(0, yHi * 1.05, PLOT.bottom, PLOT.top);
  const body = yAxis(y, first.unit);
  // x ticks: the measured counts, dropping any too close to the previous one.
  let lastX = -Infinity;
  for (const p of pts) {
    const px = x.at(p.n);
    if (px - lastX < 26) continue;
    lastX = px;
    body.push(`<line x1="${r1(px)}" y1="${PLOT.bottom}" x2="${r1(px)}" y2="${PLOT.bottom + 5}" stroke="${INK}" stroke-width="1"/>`);
    body.push(text(px, PLOT.bottom + 19, String(p.n), `font-size="11" fill="${MUTED}" text-anchor="middle"`));
  }
  body.push(text((PLOT.left + PLOT.right) / 2, H - 24, 'vCPUs', `font-size="12" fill="${INK}" text-anchor="middle"`));
  body.push(
    `<line x1="${r1(x.at(n0))}" y1="${r1(y.at(ideal(n0)))}" x2="${r1(x.at(nMax))}" y2="${r1(y.at(ideal(nMax)))}" stroke="${IDEAL}" stroke-width="2" stroke-dasharray="6 5"/>`,
  );
  for (const p of pts) {
    const px = x.at(p.n);
    body.push(`<line x1="${r1(px)}" y1="${r1(y.at(p.min))}" x2="${r1(px)}" y2="${r1(y.at(p.max))}" stroke="${MEASURED}" stroke-width="1.5" stroke-opacity="0.6"/>`);
    for (const v of [p.min, p.max]) body.push(`<line x1="${r1(px - 4)}" y1="${r1(y.at(v))}" x2="${r1(px + 4)}" y2="${r1(y.at(v))}" stroke="${MEASURED}" stroke-width="1.5" stroke-opacity="0.6"/>`);
  }
  body.push(`<polyline points="${pts.map((p) => `${r1(x.at(p.n))},${r1(y.at(p.med))}`).join(' ')}" fill="none" stroke="${MEASURED}" stroke-width="2.5" stroke-linejoin="round"/>`);
  for (const p of pts) body.push(`<circle cx="${r1(x.at(p.n))}" cy="${r1(y.at(p.med))}" r="4" fill="${MEASURED}" stroke="#ffffff" stroke-width="1.5"/>`);
  // Legend inside the plot: top left above a rising line, bottom right
  // below a flat one (where the data is not).
  const lx = linear ? PLOT.left + 14 : PLOT.right - 250;
  const ly = linear ? PLOT.top + 10 : PLOT.bottom - 62;
  body.push(`<rect x="${lx - 8}" y="${ly - 6}" width="250" height="58" rx="4" fill="#ffffff" fill-opacity="0.9" stroke="${GRID}"/>`);
  body.push(`<line x1="${lx}" y1="${ly + 6}" x2="${lx + 26}" y2="${ly + 6}" stroke="${MEASURED}" stroke-width="2.5"/><circle cx="${lx + 13}" cy="${ly + 6}" r="4" fill="${MEASURED}"/>`);
  body.push(text(lx + 34, ly + 10, 'measured (median; bars: min-max)', `font-size="11" fill="${INK}"`));
  body.push(`<line x1="${lx}" y1="${ly + 30}" x2="${lx + 26}" y2="${ly + 30}" stroke="${IDEAL}" stroke-width="2" stroke-dasharray="6 5"/>`);
  const idealLabel = fixed !== undefined ? `ideal: ${fmtSig(fixed, 3)}` : linear ? `ideal: linear from ${n0} vCPU${n0 > 1 ? 's' : ''}` : 'ideal: flat (no growth with vCPUs)';
  body.push(text(lx + 34, ly + 34, idealLabel, `font-size="11" fill="${INK}"`));
  const last = pts[pts.length - 1]!;
  const efficiency = higher ? last.med / ideal(last.n) : ideal(last.n) / last.med;
  // The members' descriptions name their own count; the chart covers them all.
  const what = first.description.replace(new RegExp(`\\b${pts[0]!.n}\\b(?=\\s*(vCPU|host thread))`, 'g'), 'N');
  const subtitle = `${what} - at ${last.n} vCPUs: ${(efficiency * 100).toFixed(0)}% of ideal`;
  const title = `${name}: ${first.unit} vs vCPUs`;
  return { file: fileName('scaling', name!), title, svg: frame(title, subtitle, first.description, body) };
}

/** Picks at most `max` values spread evenly over the list (keeps the shape, bounds the file size). */
function thin(values: readonly number[], max: number): number[] {
  if (values.length <= max) return [...values];
  const out: number[] = [];
  for (let i = 0; i < max; i++) out.push(values[Math.floor((i * values.length) / max)]!);
  return out;
}

/** Deterministic jitter in [-0.5, 0.5): the same report draws the same picture. */
const jitter = (i: number): number => ((Math.imul(i + 1, 2654435761) >>> 0) % 1000) / 1000 - 0.5;

function distributionChart(family: string, members: MetricReport[]): Chart {
  const modes = members
    .map((m) => ({ mode: m.params!.irqchip as string, m, values: m.distribution?.length ? m.distribution : m.samples }))
    .sort((a, b) => (MODE_ORDER.indexOf(a.mode) + 1 || 99) - (MODE_ORDER.indexOf(b.mode) + 1 || 99) || a.mode.localeCompare(b.mode));
  const all = modes.flatMap((d) => d.values);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const y = lo > 0 && hi / lo > 30 ? logScale(lo, hi, PLOT.bottom, PLOT.top) : lo >= 0 && lo < hi * 0.4 ? linearScale(0, hi, PLOT.bottom, PLOT.top) : linearScale(lo, hi, PLOT.bottom, PLOT.top);
  const unit = members[0]!.unit;
  const body = yAxis(y, unit);
  const slot = (PLOT.right - PLOT.left) / modes.length;
  const boxW = Math.min(90, slot * 0.45);
  let extra = 0;
  modes.forEach((d, k) => {
    const colour = MODE_COLOURS[d.mode] ?? EXTRA_COLOURS[extra++ % EXTRA_COLOURS.length]!;
    const cx = PLOT.left + slot * (k + 0.5);
    const few = d.values.length < 20;
    const q1 = quantile(d.values, 0.25);
    const q3 = quantile(d.values, 0.75);
    const med = median(d.values);
    const wLo = few ? Math.min(...d.values) : quantile(d.values, 0.05);
    const wHi = few ? Math.max(...d.values) : quantile(d.values, 0.95);
    thin(d.values, MAX_DOTS).forEach((v, i) => {
      body.push(`<circle cx="${r1(cx + jitter(i) * boxW * 1.5)}" cy="${r1(y.at(v))}" r="1.8" fill="${colour}" fill-opacity="0.28"/>`);
    });
    body.push(`<line x1="${r1(cx)}" y1="${r1(y.at(wLo))}" x2="${r1(cx)}" y2="${r1(y.at(q1))}" stroke="${INK}" stroke-width="1.2"/>`);
    body.push(`<line x1="${r1(cx)}" y1="${r1(y.at(q3))}" x2="${r1(cx)}" y2="${r1(y.at(wHi))}" stroke="${INK}" stroke-width="1.2"/>`);
    for (const v of [wLo, wHi]) body.push(`<line x1="${r1(cx - boxW / 4)}" y1="${r1(y.at(v))}" x2="${r1(cx + boxW / 4)}" y2="${r1(y.at(v))}" stroke="${INK}" stroke-width="1.2"/>`);
    const top = y.at(q3);
    body.push(`<rect x="${r1(cx - boxW / 2)}" y="${r1(top)}" width="${r1(boxW)}" height="${r1(Math.max(1, y.at(q1) - top))}" fill="${colour}" fill-opacity="0.18" stroke="${colour}" stroke-width="1.5"/>`);
    body.push(`<line x1="${r1(cx - boxW / 2)}" y1="${r1(y.at(med))}" x2="${r1(cx + boxW / 2)}" y2="${r1(y.at(med))}" stroke="${colour}" stroke-width="3"/>`);
    const label = unit === 'ratio' ? fmtSig(med, 4) : `${fmtSig(med, 3)} ${unit}`;
    body.push(text(cx + boxW * 0.75 + 8, y.at(med) + 4, label, `font-size="11" font-weight="600" fill="${colour}" stroke="#ffffff" stroke-width="3" paint-order="stroke"`));
    body.push(text(cx, PLOT.bottom + 19, d.mode, `font-size="12" font-weight="600" fill="${colour}" text-anchor="middle"`));
    body.push(text(cx, PLOT.bottom + 35, `n = ${d.values.length}`, `font-size="10" fill="${MUTED}" text-anchor="middle"`));
  });
  body.push(text((PLOT.left + PLOT.right) / 2, H - 14, 'irqchip mode', `font-size="12" fill="${INK}" text-anchor="middle"`));
  const source = modes.every((d) => d.m.distribution?.length) ? 'each dot one observation' : 'each dot one repetition';
  const subtitle = `${source}; box: quartiles, line: median, whiskers: ${modes.some((d) => d.values.length < 20) ? 'min-max' : 'p5-p95'}`;
  const title = `${family}: distribution per irqchip mode`;
  return { file: fileName('distribution', family), title, svg: frame(title, subtitle, members[0]!.description, body) };
}

/** The family of a per-irqchip metric (id minus its mode segment), or undefined. */
export function modeFamily(m: MetricReport): string | undefined {
  const mode = m.params?.irqchip;
  const segs = m.id.split('.');
  if (typeof mode !== 'string' || segs.length < 2 || segs[segs.length - 1] !== mode) return undefined;
  return segs.slice(0, -1).join('.');
}

function groupBy(metrics: MetricReport[], key: (m: MetricReport) => string | undefined): Map<string, MetricReport[]> {
  const out = new Map<string, MetricReport[]>();
  for (const m of metrics) {
    const k = key(m);
    if (k === undefined) continue;
    if (!out.has(k)) out.set(k, []);
    out.get(k)!.push(m);
  }
  return out;
}

/** Every chart the report supports (none if it has no scaling or per-mode metrics). */
export function renderCharts(report: BenchReport): Chart[] {
  const metrics = allMetrics(report);
  const charts: Chart[] = [];
  for (const [family, members] of groupBy(metrics, scalingFamily)) charts.push(scalingChart(family, members));
  for (const [family, members] of groupBy(metrics, modeFamily)) charts.push(distributionChart(family, members));
  // Families differing only in unit or direction would share a file name.
  const used = new Set<string>();
  for (const c of charts) {
    let file = c.file;
    for (let i = 2; used.has(file); i++) file = c.file.replace(/\.svg$/, `-${i}.svg`);
    used.add(file);
    c.file = file;
  }
  return charts;
}

/** Writes the charts into `dir` (created if needed); returns the paths written. */
export function writeCharts(report: BenchReport, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return renderCharts(report).map((c) => {
    const path = join(dir, c.file);
    writeFileSync(path, c.svg);
    return path;
  });
}
