/**
 * Runs benchmark suites and assembles a BenchReport: every suite's raw
 * samples, a summary per metric and what machine it ran on.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, release } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../guests/build.js';
import { NodevisorError } from '../kvm/errors.js';
import type { BenchContext, Metric, Suite, SuiteResult, TestKnobs } from './types.js';
import type { LinuxBenchOptions } from './linux.js';
import { compareAb } from './ab.js';
import { REPORT_FORMAT, type BenchMetadata, type BenchReport, type MetricReport, type SuiteReport } from './report-types.js';
import { isSelected, suiteSelected } from './select.js';
import { summarize } from './stats.js';
import { DEFAULT_SUITES, SUITES } from './suites.js';

export interface BenchProgress {
  suite: string;
  done: number;
  total: number;
  label: string;
}

export interface RunBenchmarkOptions {
  /** Suite names; default: those of DEFAULT_SUITES that are registered (narrowed by `only`). */
  suites?: string[];
  /** Samples per metric (default 5). */
  repetitions?: number;
  /** Largest vCPU count for scaling runs (default: the host's logical CPUs). */
  maxVcpus?: number;
  /** Metric ids or dotted prefixes to run; all when absent. */
  only?: string[];
  testKnobs?: TestKnobs;
  /** Options of the linux suite (kernel, workloads, A/B variant). */
  linux?: LinuxBenchOptions;
  onProgress?: (p: BenchProgress) => void;
  /** Suites' diagnostic lines. */
  onLog?: (suite: string, message: string) => void;
  /** Where suite names are looked up (default SUITES). */
  registry?: ReadonlyMap<string, Suite>;
}

export const DEFAULT_REPETITIONS = 5;

/** Chooses and checks the suites a run covers. */
export function resolveSuites(options: Pick<RunBenchmarkOptions, 'suites' | 'only' | 'registry'>): Suite[] {
  const registry = options.registry ?? SUITES;
  const names = options.suites?.length ? options.suites : [...registry.keys()].filter((n) => DEFAULT_SUITES.includes(n) && suiteSelected(n, options.only));
  const unknown = names.filter((n) => !registry.has(n));
  if (unknown.length) throw new NodevisorError('EBENCH', `unknown benchmark suite "${unknown[0]}": available: ${[...registry.keys()].join(', ')}`);
  if (names.length === 0) throw new NodevisorError('EBENCH', `no benchmark suite matches --only ${options.only?.join(',')}: available: ${[...registry.keys()].join(', ')}`);
  return names.map((n) => registry.get(n)!);
}

export async function runBenchmark(options: RunBenchmarkOptions = {}): Promise<BenchReport> {
  const repetitions = options.repetitions ?? DEFAULT_REPETITIONS;
  const maxVcpus = options.maxVcpus ?? availableParallelism();
  if (!Number.isInteger(repetitions) || repetitions < 1) throw new NodevisorError('EBENCH', `repetitions must be a positive integer (got ${repetitions})`);
  if (!Number.isInteger(maxVcpus) || maxVcpus < 1) throw new NodevisorError('EBENCH', `maxVcpus must be a positive integer (got ${maxVcpus})`);
  const only = options.only?.length ? options.only : undefined;
  const suites = resolveSuites({ ...options, only });
  const metadata = machineMetadata();
  const reports: SuiteReport[] = [];
  const abReports: SuiteReport[] = [];
  let ab: { a: string; b: string } | undefined;
  for (const suite of suites) {
    const ctx: BenchContext = {
      repetitions,
      maxVcpus,
      only,
      testKnobs: options.testKnobs,
      linux: options.linux,
      progress: (done, total, label) => options.onProgress?.({ suite: suite.name, done, total, label }),
      log: (message) => options.onLog?.(suite.name, message),
    };
    const r = await runSuite(suite, ctx);
    reports.push(r.a);
    if (r.b) {
      abReports.push(r.b);
      ab = r.ab;
    }
  }
  const settings: BenchReport['settings'] = { suites: suites.map((s) => s.name), repetitions, maxVcpus };
  if (only) settings.only = [...only];
  if (options.testKnobs) settings.testKnobs = { ...options.testKnobs };
  if (!ab) return { format: REPORT_FORMAT, metadata, settings, suites: reports };
  // An A/B run reports B, with A as the baseline it is compared against.
  const report: BenchReport = { format: REPORT_FORMAT, metadata, settings, suites: abReports, ab: { a: ab.a, b: ab.b, baseline: reports } };
  report.comparison = compareAb(report);
  return report;
}

interface SuiteRun {
  a: SuiteReport;
  /** B's report in an A/B run. */
  b?: SuiteReport;
  ab?: { a: string; b: string };
}

/** Runs one suite; a failure becomes the report's `error` rather than ending the run. */
async function runSuite(suite: Suite, ctx: BenchContext): Promise<SuiteRun> {
  const began = performance.now();
  const seconds = (): number => Math.round(performance.now() - began) / 1000;
  const report = (result: Pick<SuiteResult, 'metrics' | 'notes'>): SuiteReport => {
    const notes = [...result.notes];
    const metrics: MetricReport[] = [];
    for (const m of result.metrics) {
      if (!isSelected(m.id, ctx.only)) continue;
      const problem = invalidSamples(m);
      if (problem) {
        notes.push(`${m.id} left out: ${problem}`);
        continue;
      }
      metrics.push({ ...m, summary: summarize(m.samples) });
    }
    return { suite: suite.name, description: suite.description, notes, metrics, seconds: seconds() };
  };
  try {
    const result = await suite.run(ctx);
    const a = report(result);
    if (!result.ab) return { a };
    return { a, b: report(result.ab), ab: { a: result.ab.a, b: result.ab.b } };
  } catch (e) {
    const failed = { suite: suite.name, description: suite.description, notes: [], metrics: [], seconds: seconds(), error: (e as Error).message };
    return ctx.linux?.ab && suite.name === 'linux' ? { a: failed, b: { ...failed, notes: [] }, ab: { a: 'A', b: 'B' } } : { a: failed };
  }
}

/** A metric without usable samples would poison summaries and JSON (NaN becomes null). */
function invalidSamples(m: Metric): string | undefined {
  if (m.samples.length === 0) return 'no samples';
  if (m.samples.some((x) => !Number.isFinite(x))) return `non-finite samples (${m.samples.join(', ')})`;
  if (m.distribution?.some((x) => !Number.isFinite(x))) return 'non-finite values in its distribution';
  return undefined;
}

export function machineMetadata(): BenchMetadata {
  return {
    date: new Date().toISOString(),
    nodevisorVersion: packageVersion(),
    nodeVersion: process.version,
    hostKernel: release(),
    cpuModel: cpuModel(),
    hostCores: availableParallelism(),
    kvm: existsSync('/sys/module/kvm_pvm') ? 'software (kvm_pvm)' : 'hardware',
    platform: `${process.platform}-${process.arch}`,
  };
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'));
    if (m) return m[1]!.trim();
  } catch {
    // Not Linux, or /proc not mounted: say so below.
  }
  return 'unknown';
}

/** From package.json, not src/index.ts: the library entry re-exports this module. */
function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}
