/**
 * A/B runs: one report holds B's results and, under `ab.baseline`, A's,
 * measured alternately. B is compared against A pair by pair (sample i of
 * A and of B were measured back to back), so load that drifts during the
 * run cancels: a change counts when it exceeds the tolerance and every
 * pair agrees on its direction.
 */
import { compareToBaseline, type CompareOptions } from './compare.js';
import type { BenchReport, Comparison } from './report-types.js';

/** A's side of an A/B report, as a report of its own. */
export function abBaseline(report: BenchReport): BenchReport | undefined {
  if (!report.ab) return undefined;
  return { format: report.format, metadata: report.metadata, settings: report.settings, suites: report.ab.baseline };
}

/** B compared against A; throws if the report is not an A/B report. */
export function compareAb(report: BenchReport, options: CompareOptions = {}): Comparison {
  const a = abBaseline(report);
  if (!a) throw new Error('not an A/B report');
  return compareToBaseline(report, a, { ...options, paired: true, source: `A (${report.ab!.a})` });
}
