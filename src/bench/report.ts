/**
 * Reports for people (a table per suite, the baseline verdicts, the noise
 * floor) and for machines (the JSON document, checked against the schema
 * before it is written, so a report that could not be read back as a
 * baseline is never produced).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { NodevisorError } from '../kvm/errors.js';
import type { BenchReport, Comparison, MetricComparison, MetricReport, SuiteReport } from './report-types.js';
import { parseReport, validateReport } from './schema.js';
import { fmtSig, QUANTILE_MIN_SAMPLES } from './stats.js';
import { renderTable, type Column } from './table.js';

const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);

function header(report: BenchReport): string[] {
  const m = report.metadata;
  const s = report.settings;
  const lines = [
    `nodevisor bench: ${m.date}, nodevisor ${m.nodevisorVersion}, Node ${m.nodeVersion}`,
    `host: ${m.cpuModel}, ${m.hostCores} cores, Linux ${m.hostKernel}, KVM ${m.kvm}`,
    `suites ${s.suites.join(', ')}; ${s.repetitions} repetitions; max vCPUs ${s.maxVcpus}${s.only ? `; only ${s.only.join(',')}` : ''}`,
  ];
  if (report.ab) lines.push(`A/B run: A = ${report.ab.a}; B = ${report.ab.b}. Booted alternately; the tables show B, "baseline" is A`);
  if (s.testKnobs && Object.values(s.testKnobs).some((v) => v)) lines.push(`test knobs: ${JSON.stringify(s.testKnobs)} (deliberately slowed: not a real measurement)`);
  return lines;
}

const noisy = (m: MetricReport): boolean => m.summary.n >= 2 && (m.summary.spread === null || m.summary.spread > m.tolerance);

function suiteSection(suite: SuiteReport, comparison?: Comparison): string[] {
  const title = `${suite.suite} (${suite.seconds.toFixed(1)} s): ${suite.description}`;
  if (suite.error) return [title, `  FAILED: ${suite.error}`];
  const lines = [title];
  if (suite.metrics.length === 0) lines.push('  (no metrics selected)');
  else {
    const byId = new Map(comparison?.metrics.map((c) => [c.id, c]));
    const columns: Column[] = [
      { header: 'metric' },
      { header: 'median', align: 'right' },
      { header: 'unit' },
      { header: 'spread', align: 'right' },
      { header: 'n', align: 'right' },
    ];
    if (comparison) columns.push({ header: 'baseline', align: 'right' }, { header: 'ratio', align: 'right' }, { header: 'verdict' });
    const rows = suite.metrics.map((m) => {
      // One sample has no spread to show (its 0 would read as "no noise").
      const spread = m.summary.n < 2 ? '- ' : `${pct(m.summary.spread)}${noisy(m) ? '*' : ' '}`;
      const row = [m.id, fmtSig(m.summary.median, 4), m.unit, spread, String(m.summary.n)];
      if (comparison) {
        const c = byId.get(m.id);
        row.push(c?.baseline ? fmtSig(c.baseline.median, 4) : '-', c?.ratio !== undefined ? c.ratio.toFixed(3) : '-', c?.verdict ?? '-');
      }
      return row;
    });
    lines.push(renderTable(columns, rows));
    lines.push(`  spread: (max - min) / median below ${QUANTILE_MIN_SAMPLES} samples, (p90 - p10) / median from ${QUANTILE_MIN_SAMPLES}`);
    if (suite.metrics.some(noisy)) {
      lines.push('  * spread above the metric\'s tolerance: against a baseline it is inconclusive unless a change clears the noise (more --repetitions narrow p10-p90)');
    }
  }
  for (const n of suite.notes) lines.push(`  - ${n}`);
  return lines;
}

function comparisonSection(c: Comparison): string[] {
  const lines = [`baseline: ${c.baseline.source ? `${c.baseline.source}, ` : ''}${c.baseline.date}, nodevisor ${c.baseline.nodevisorVersion}`];
  lines.push(`verdicts: ${Object.entries(c.counts).map(([v, n]) => `${n} ${v}`).join(', ')}`);
  if (c.noiseFloor) {
    lines.push(
      `noise floor: median ${pct(c.noiseFloor.median)} across compared metrics, worst ${pct(c.noiseFloor.worst.noise)} (${c.noiseFloor.worst.id}); ` +
        'a change is only called when it exceeds the tolerance and the two runs\' sample bands do not overlap',
    );
  } else {
    lines.push('noise floor: unknown (no metric has at least 2 samples on both sides)');
  }
  const notable = c.metrics.filter((m) => m.verdict !== 'pass');
  if (notable.length) {
    lines.push(renderTable([{ header: 'metric' }, { header: 'verdict' }, { header: 'why' }], notable.map((m: MetricComparison) => [m.id, m.verdict, m.reason])));
  }
  const outcome = c.exitStatus === 1 ? 'REGRESSED' : c.exitStatus === 2 ? 'INCONCLUSIVE (strict)' : c.counts.inconclusive + c.counts.missing > 0 ? 'no regression (some metrics inconclusive or missing)' : 'PASS';
  lines.push(`result: ${outcome} (exit status ${c.exitStatus})`);
  return lines;
}

/** The human-readable report: header, a table per suite, then the comparison if any. */
export function formatReport(report: BenchReport): string {
  const parts: string[][] = [header(report)];
  for (const s of report.suites) parts.push(suiteSection(s, report.comparison));
  if (report.comparison) parts.push(comparisonSection(report.comparison));
  return `${parts.map((p) => p.join('\n')).join('\n\n')}\n`;
}

/** The JSON document; throws if it would not validate (a bug, never the user's fault). */
export function reportJson(report: BenchReport): string {
  const errors = validateReport(JSON.parse(JSON.stringify(report)));
  if (errors.length) throw new Error(`internal error: the report does not match its schema: ${errors.slice(0, 3).map((e) => `${e.path}: ${e.message}`).join('; ')}`);
  // Indented for reading and diffing, but arrays of numbers (samples,
  // distributions) on one line each rather than one number per line. Only
  // real newlines are matched, and JSON strings cannot hold those.
  const text = JSON.stringify(report, null, 2).replace(/\[\n\s*(-?\d[\d.eE+\-,\s]*?)\n\s*\]/g, (_, body: string) => `[${body.split(/,\s*/).join(', ')}]`);
  return `${text}\n`;
}

export function writeReportJson(file: string, report: BenchReport): void {
  writeFileSync(file, reportJson(report));
}

/** Reads a report written by --json (a baseline). */
export function readReportFile(file: string): BenchReport {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new NodevisorError('EBENCH', `cannot read ${file}: ${(e as Error).message}`);
  }
  return parseReport(text, file);
}
