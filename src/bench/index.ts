/**
 * The benchmark library API: run suites, compare with a baseline, read and
 * write reports. `nodevisor bench` (cli.ts) is built on exactly this.
 */
export { runBenchmark, resolveSuites, machineMetadata, DEFAULT_REPETITIONS } from './runner.js';
export type { RunBenchmarkOptions, BenchProgress } from './runner.js';
export { compareToBaseline, compareMetric, parseTolerances, toleranceFor, comparisonExitStatus } from './compare.js';
export type { CompareOptions, ToleranceOverrides } from './compare.js';
export { formatReport, reportJson, writeReportJson, readReportFile } from './report.js';
export { reportSchema, validateReport, parseReport } from './schema.js';
export type { JsonSchema, SchemaError } from './json-schema.js';
export { renderCharts, writeCharts } from './svg.js';
export type { Chart } from './svg.js';
export { SUITES, DEFAULT_SUITES } from './suites.js';
export { microSuite } from './micro.js';
export { scalingSuite } from './scaling.js';
export { bootSuite } from './boot.js';
export { linuxSuite, type LinuxBenchOptions, type LinuxVariant } from './linux.js';
export { compareAb, abBaseline } from './ab.js';
export { parseMetricLine, type WorkloadMetric } from './linux-protocol.js';
export { summarize, median, quantile } from './stats.js';
export type { Summary, SpreadKind } from './stats.js';
export { matchesId, isSelected } from './select.js';
export { REPORT_FORMAT, VERDICTS } from './report-types.js';
export type {
  BenchReport,
  BenchMetadata,
  BenchRunSettings,
  SuiteReport,
  MetricReport,
  Comparison,
  MetricComparison,
  ComparedSide,
  Verdict,
} from './report-types.js';
export type { Metric, Suite, SuiteResult, BenchContext, TestKnobs, Better } from './types.js';
