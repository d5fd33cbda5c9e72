/**
 * The contract between benchmark suites, the runner, reports and baseline
 * comparison. A suite measures; everything else only reads `SuiteResult`s.
 */

export type Better = 'higher' | 'lower';

export interface Metric {
  /** Stable identifier, dotted: "<suite>.<benchmark>[.<variant>]", e.g. "micro.ipi-rtt.user". */
  id: string;
  /** One line a person understands. */
  description: string;
  /** Unit of every sample, e.g. "us", "exits/s", "ratio", "ops/s", "MiB/s". */
  unit: string;
  better: Better;
  /** Raw repetitions, in the order measured. Medians and spreads are derived. */
  samples: number[];
  /** Default relative tolerance for regression checks (0.10 = 10%), overridable by the user. */
  tolerance: number;
  /** Free-form structured context (vCPU count, irqchip mode, reference values...). */
  params?: Record<string, string | number | boolean>;
  /**
   * Optional: the individual observations behind the samples, in the
   * metric's unit (e.g. every IPI round trip of every repetition, where each
   * sample is one repetition's median). Only for distribution charts; the
   * summary and baseline comparison use `samples`.
   */
  distribution?: number[];
}

export interface SuiteResult {
  suite: string;
  metrics: Metric[];
  /** Lines worth showing beside the table (e.g. "QEMU cannot boot here"). */
  notes: string[];
  /**
   * An A/B run: `metrics` above are A's, these are B's (same ids), measured
   * alternately with A's; the runner reports B compared against A.
   */
  ab?: { a: string; b: string; metrics: Metric[]; notes: string[] };
}

export type { TestKnobs } from '../vcpu/test-knobs.js';
import type { TestKnobs } from '../vcpu/test-knobs.js';
import type { LinuxBenchOptions } from './linux.js';

export interface BenchContext {
  /** Repetitions per measurement (each yields one sample). */
  repetitions: number;
  /** Largest vCPU count for scaling runs. */
  maxVcpus: number;
  /** Reports progress; the runner draws a bar on a TTY. */
  progress(done: number, total: number, label: string): void;
  log(message: string): void;
  testKnobs?: TestKnobs;
  /** Restrict a suite to some of its benchmarks (ids or prefixes); all when absent. */
  only?: string[];
  /** Options of the linux suite (kernel, workloads, A/B variant). */
  linux?: LinuxBenchOptions;
}

export interface Suite {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<SuiteResult>;
}
