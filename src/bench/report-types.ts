/**
 * The benchmark report: what `runBenchmark` returns, `--json` writes and
 * `--baseline` reads back. src/bench/schema.ts describes the same shape as a
 * JSON Schema; bump REPORT_FORMAT when a change would break old readers.
 */
import type { Better, Metric, TestKnobs } from './types.js';
import type { Summary } from './stats.js';

export const REPORT_FORMAT = 'nodevisor-bench-report/1';

export interface BenchMetadata {
  /** ISO 8601 time the run started. */
  date: string;
  nodevisorVersion: string;
  nodeVersion: string;
  /** os.release(). */
  hostKernel: string;
  /** "model name" from /proc/cpuinfo. */
  cpuModel: string;
  /** Logical CPUs the host gives this process. */
  hostCores: number;
  /** 'software (kvm_pvm)' where guest ring 0 is emulated (see README), else 'hardware'. */
  kvm: 'hardware' | 'software (kvm_pvm)';
  /** process.platform-process.arch, e.g. linux-x64. */
  platform: string;
}

/** The options a run used, so a report says what it measured. */
export interface BenchRunSettings {
  suites: string[];
  repetitions: number;
  maxVcpus: number;
  only?: string[];
  testKnobs?: TestKnobs;
}

export interface MetricReport extends Metric {
  summary: Summary;
}

export interface SuiteReport {
  suite: string;
  description: string;
  notes: string[];
  metrics: MetricReport[];
  /** Wall-clock seconds the suite took. */
  seconds: number;
  /** Set when the suite failed; its metrics are then absent. */
  error?: string;
}

export type Verdict = 'pass' | 'regressed' | 'improved' | 'inconclusive' | 'missing' | 'new';
export const VERDICTS: readonly Verdict[] = ['pass', 'regressed', 'improved', 'inconclusive', 'missing', 'new'];

/** One side of a comparison: the numbers the verdict was drawn from. */
export interface ComparedSide {
  median: number;
  n: number;
  /** The band (p10..p90, or min..max below 10 samples) whose overlap decides "within noise". */
  low: number;
  high: number;
  /** Relative band width ((high - low) / median); null where it does not exist (fewer than 2 samples, median 0). */
  noise: number | null;
}

export interface MetricComparison {
  id: string;
  verdict: Verdict;
  unit: string;
  better: Better;
  /** Relative tolerance applied, after overrides. */
  tolerance: number;
  current?: ComparedSide;
  baseline?: ComparedSide;
  /** current median / baseline median. */
  ratio?: number;
  /** The larger of the two sides' noise: the smallest change this comparison can resolve. */
  noise?: number | null;
  /** Why this verdict, in words. */
  reason: string;
}

export interface Comparison {
  baseline: { date: string; nodevisorVersion: string; source?: string };
  strict: boolean;
  metrics: MetricComparison[];
  counts: Record<Verdict, number>;
  /**
   * Median over compared metrics of their noise (see MetricComparison.noise),
   * and the worst one: changes smaller than these are not resolvable.
   */
  noiseFloor: { median: number; worst: { id: string; noise: number } } | null;
  /** 0 pass; 1 a metric regressed; 2 with `strict`, inconclusive or missing metrics (and no regression). */
  exitStatus: number;
}

export interface BenchReport {
  format: typeof REPORT_FORMAT;
  metadata: BenchMetadata;
  settings: BenchRunSettings;
  suites: SuiteReport[];
  comparison?: Comparison;
  /**
   * An A/B run (`nodevisor bench linux --ab...`): `suites` hold B's results,
   * `baseline` A's, measured alternately in the same run; `comparison`
   * compares B against A.
   */
  ab?: { a: string; b: string; baseline: SuiteReport[] };
}
