import type { Metric } from './types.js';
import type { GuestRun, ScalingWorkload } from './scaling-guest.js';
import type { ThreadRecord } from './scaling-ref.js';

/**
 * Turns the scaling suite's raw runs into metrics. Pure: no KVM, no clock,
 * so the arithmetic is testable on its own.
 *
 * Throughput of a run is the sum over vCPUs (or threads) of each one's work
 * divided by its own window, so a vCPU that started its window late does not
 * dilute the others. Efficiency at n is throughput(n) / (n * throughput(1))
 * within each repetition: the suite runs a repetition's counts back to back,
 * so pairing them cancels the slow drifts in load that shared machines have.
 */

export interface ScalingRuns {
  workloads: readonly ScalingWorkload[];
  /** vCPU (and thread) counts, ascending, starting at 1. */
  counts: readonly number[];
  /** Guest runs per `${workload}/${n}`, one per repetition. */
  guest: ReadonlyMap<string, readonly GuestRun[]>;
  /** Host reference runs per `${workload}/${n}`, for the ring-3 workloads. */
  host: ReadonlyMap<string, readonly (readonly ThreadRecord[])[]>;
  tscHz: number;
  /** Copied into every metric's params (e.g. irqchip, timer rate, window). */
  context: Record<string, string | number | boolean>;
}

/** What a metric measures; also the last segment of its chart family. */
export type Kind = 'throughput' | 'efficiency' | 'host-threads' | 'host-efficiency' | 'efficiency-vs-host';

export const runKey = (workload: ScalingWorkload, n: number): string => `${workload}/${n}`;

interface WorkloadInfo {
  unit: string;
  /** Multiplies ops/s into `unit`. */
  scale: number;
  what: string;
}

const MiB = 1 << 20;
const INFO: Record<ScalingWorkload, WorkloadInfo> = {
  compute: { unit: 'ops/s', scale: 1, what: 'integer mixing loop in ring 3, iterations/s' },
  memory: { unit: 'MiB/s', scale: 1 / MiB, what: 'rep movsq copy over a private buffer per vCPU in ring 3, MiB copied/s' },
  contention: { unit: 'ops/s', scale: 1, what: 'lock xadd on one shared cache line in ring 3, increments/s' },
  ipi: { unit: 'IPIs/s', scale: 1, what: 'ring-0 token ring, each vCPU IPIs the next and halts until its own arrives, IPIs sent/s' },
};

/** The goal for compute: guest scaling efficiency within 5% of the host's. */
export const COMPUTE_VS_HOST_TARGET = 0.95;

const THROUGHPUT_TOLERANCE = 0.15;
const RATIO_TOLERANCE = 0.1;

export function guestThroughput(run: GuestRun, tscHz: number): number {
  const perSecond = run.records.reduce((sum, r) => sum + r.ops / (r.tscTicks / tscHz), 0);
  return perSecond * INFO[run.workload].scale;
}

export function hostThroughput(workload: ScalingWorkload, threads: readonly ThreadRecord[]): number {
  return threads.reduce((sum, t) => sum + t.ops / (t.ns / 1e9), 0) * INFO[workload].scale;
}

/** Per-repetition efficiencies of `byCount` (throughput samples per n, one per repetition) against n = 1. */
function efficiencies(byCount: ReadonlyMap<number, number[]>, n: number): number[] {
  const base = byCount.get(1)!;
  return byCount.get(n)!.map((t, i) => t / (n * base[i % base.length]!));
}

export function scalingMetrics(runs: ScalingRuns): Metric[] {
  const metrics: Metric[] = [];
  for (const w of runs.workloads) {
    const info = INFO[w];
    // `family` names the series for charts (svg.ts groups metrics with a numeric `vcpus` by it);
    // `ideal` is where a perfectly scaling ratio would sit.
    const params = (n: number, kind: Kind, extra: Record<string, string | number | boolean> = {}) => ({
      ...runs.context,
      workload: w,
      vcpus: n,
      kind,
      family: kind === 'throughput' ? `scaling.${w}` : `scaling.${w}.${kind}`,
      ...(kind.endsWith('efficiency') || kind === 'efficiency-vs-host' ? { ideal: 1 } : {}),
      ...extra,
    });
    const guest = new Map<number, number[]>();
    for (const n of runs.counts) guest.set(n, (runs.guest.get(runKey(w, n)) ?? []).map((r) => guestThroughput(r, runs.tscHz)));
    const hasHost = runs.counts.every((n) => (runs.host.get(runKey(w, n)) ?? []).length > 0);
    const host = new Map<number, number[]>();
    if (hasHost) for (const n of runs.counts) host.set(n, runs.host.get(runKey(w, n))!.map((t) => hostThroughput(w, t)));
    const plural = (n: number) => `${n} vCPU${n === 1 ? '' : 's'}`;

    for (const n of runs.counts) {
      const samples = guest.get(n)!;
      if (!samples.length) continue;
      metrics.push({
        id: `scaling.${w}.vcpus-${n}`,
        description: `${w} throughput on ${plural(n)} (${info.what}, summed over vCPUs)`,
        unit: info.unit,
        better: 'higher',
        samples,
        tolerance: THROUGHPUT_TOLERANCE,
        params: params(n, 'throughput'),
      });
    }
    // Efficiencies start at n = 2: at n = 1 they are 1 by definition.
    const scaled = runs.counts.filter((n) => n > 1);
    if (!guest.get(1)?.length) continue;
    const guestEff = new Map(scaled.map((n) => [n, efficiencies(guest, n)]));
    for (const n of scaled) {
      metrics.push({
        id: `scaling.${w}.efficiency-${n}`,
        description: `${w} scaling efficiency on ${plural(n)}: throughput / (${n} x 1-vCPU throughput)`,
        unit: 'ratio',
        better: 'higher',
        samples: guestEff.get(n)!,
        tolerance: RATIO_TOLERANCE,
        params: params(n, 'efficiency'),
      });
    }
    if (!hasHost) continue;
    for (const n of runs.counts) {
      metrics.push({
        id: `scaling.${w}.host-threads-${n}`,
        description: `${w} throughput of ${n} host thread${n === 1 ? '' : 's'} running the guest's kernel (reference)`,
        unit: info.unit,
        better: 'higher',
        samples: host.get(n)!,
        tolerance: THROUGHPUT_TOLERANCE,
        params: params(n, 'host-threads'),
      });
    }
    for (const n of scaled) {
      const hostEff = efficiencies(host, n);
      const vsHost = guestEff.get(n)!.map((e, i) => e / hostEff[i % hostEff.length]!);
      metrics.push(
        {
          id: `scaling.${w}.host-efficiency-${n}`,
          description: `${w} scaling efficiency of ${n} host threads (reference)`,
          unit: 'ratio',
          better: 'higher',
          samples: hostEff,
          tolerance: RATIO_TOLERANCE,
          params: params(n, 'host-efficiency'),
        },
        {
          id: `scaling.${w}.efficiency-vs-host-${n}`,
          description: `${w} guest efficiency / host-thread efficiency on ${plural(n)}` + (w === 'compute' ? ` (target >= ${COMPUTE_VS_HOST_TARGET})` : ''),
          unit: 'ratio',
          better: 'higher',
          samples: vsHost,
          tolerance: RATIO_TOLERANCE,
          params: params(n, 'efficiency-vs-host', w === 'compute' ? { target: COMPUTE_VS_HOST_TARGET } : {}),
        },
      );
    }
  }
  return metrics;
}
