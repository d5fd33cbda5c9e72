/**
 * Turns `nodevisor bench linux` samples into metrics. Pure: no VM, no
 * clock. Ids follow the scaling suite's shape, linux.<workload>.<measure>-<n>:
 *
 *   linux.boot.init-N                 seconds from VM start to /init's first line
 *   linux.W.M-N                       workload W's measure M in the guest
 *   linux.W.host-M-N                  the same program as host threads (built-ins)
 *   linux.W.vs-host-N                 guest performance / host performance
 *                                     (for a lower-is-better M: host / guest)
 *   linux.compute.efficiency-N        throughput(N) / (N x throughput(1))
 *   linux.compute.host-efficiency-N   the same for host threads
 *   linux.compute.efficiency-vs-host-N
 *
 * Ratios pair each repetition's guest sample with the host sample of the
 * same repetition (measured right after it), so slow drifts in the
 * machine's load cancel.
 */
import type { Metric } from './types.js';
import type { WorkloadMetric } from './linux-protocol.js';
import type { Workload } from './linux-workloads.js';

export interface LinuxSamples {
  /** vCPU counts, ascending. */
  counts: readonly number[];
  workloads: readonly Workload[];
  /** Per `${workload}/${n}`: each repetition's metric lines from the guest. */
  guest: ReadonlyMap<string, readonly (readonly WorkloadMetric[])[]>;
  /** Per `${workload}/${n}`: each repetition's metric lines from the host reference. */
  host: ReadonlyMap<string, readonly (readonly WorkloadMetric[])[]>;
  /** Per vCPU count: each repetition's seconds to /init's first line. */
  boot: ReadonlyMap<number, readonly number[]>;
  /** Copied into every metric's params (irqchip, kernel, memory...). */
  context: Record<string, string | number | boolean>;
}

/** The compute workload's scaling target: guest efficiency within 5% of the host's. */
export const LINUX_COMPUTE_TARGET = 0.95;

export const linuxKey = (workload: string, n: number): string => `${workload}/${n}`;

const MEASURE_TOLERANCE = 0.15;
const LATENCY_TOLERANCE = 0.2;
const RATIO_TOLERANCE = 0.1;

const plural = (n: number): string => `${n} vCPU${n === 1 ? '' : 's'}`;

/** Each repetition's value of `measure` (repetitions that lack it are left out). */
function valuesOf(reps: readonly (readonly WorkloadMetric[])[] | undefined, measure: string): number[] {
  return (reps ?? []).map((r) => r.find((m) => m.name === measure)?.value).filter((v): v is number => v !== undefined);
}

/** Measure names in first-seen order, with the unit and direction of their first line. */
function measuresOf(reps: readonly (readonly WorkloadMetric[])[]): WorkloadMetric[] {
  const seen = new Map<string, WorkloadMetric>();
  for (const r of reps) for (const m of r) if (!seen.has(m.name)) seen.set(m.name, m);
  return [...seen.values()];
}

/** Pairs a[i] with b[i] (as many as both have). */
function paired(a: readonly number[], b: readonly number[], f: (x: number, y: number) => number): number[] {
  return a.slice(0, Math.min(a.length, b.length)).map((x, i) => f(x, b[i]!));
}

export function linuxMetrics(s: LinuxSamples): Metric[] {
  const metrics: Metric[] = [];
  const params = (n: number, extra: Record<string, string | number | boolean>) => ({ ...s.context, vcpus: n, ...extra });
  for (const n of s.counts) {
    const samples = s.boot.get(n) ?? [];
    if (!samples.length) continue;
    metrics.push({
      id: `linux.boot.init-${n}`,
      description: `seconds from VM start to the first line of /init with ${plural(n)}`,
      unit: 's',
      better: 'lower',
      samples: [...samples],
      tolerance: MEASURE_TOLERANCE,
      params: params(n, { family: 'linux.boot.init' }),
    });
  }
  for (const w of s.workloads) {
    const all = s.counts.flatMap((n) => s.guest.get(linuxKey(w.name, n)) ?? []);
    const measures = measuresOf(all).filter((m) => w.primary === undefined || m.name === w.primary);
    for (const m of measures) {
      const tolerance = m.better === 'lower' ? LATENCY_TOLERANCE : MEASURE_TOLERANCE;
      const guest = new Map(s.counts.map((n) => [n, valuesOf(s.guest.get(linuxKey(w.name, n)), m.name)]));
      const host = new Map(s.counts.map((n) => [n, valuesOf(s.host.get(linuxKey(w.name, n)), m.name)]));
      for (const n of s.counts) {
        const g = guest.get(n)!;
        if (g.length) {
          metrics.push({ id: `linux.${w.name}.${m.name}-${n}`, description: `${w.name} ${m.name} in the guest on ${plural(n)}: ${w.what}`, unit: m.unit, better: m.better, samples: g, tolerance, params: params(n, { workload: w.name, family: `linux.${w.name}.${m.name}` }) });
        }
        const h = host.get(n)!;
        if (!h.length) continue;
        metrics.push({ id: `linux.${w.name}.host-${m.name}-${n}`, description: `${w.name} ${m.name} of the same program as host threads for ${plural(n)} (reference)`, unit: m.unit, better: m.better, samples: h, tolerance, params: params(n, { workload: w.name, family: `linux.${w.name}.host-${m.name}` }) });
        const ratio = paired(g, h, (x, y) => (m.better === 'higher' ? x / y : y / x));
        if (ratio.length) {
          metrics.push({ id: `linux.${w.name}.vs-host-${n}`, description: `${w.name}: guest ${m.name} relative to the host's on ${plural(n)} (1 = as fast as host threads)`, unit: 'ratio', better: 'higher', samples: ratio, tolerance: RATIO_TOLERANCE, params: params(n, { workload: w.name, family: `linux.${w.name}.vs-host`, ideal: 1 }) });
        }
      }
      if (w.name !== 'compute' || !guest.get(1)?.length) continue;
      for (const n of s.counts.filter((c) => c > 1)) {
        const eff = (byN: Map<number, number[]>): number[] => paired(byN.get(n)!, byN.get(1)!, (t, t1) => t / (n * t1));
        const g = eff(guest);
        if (g.length) {
          metrics.push({ id: `linux.compute.efficiency-${n}`, description: `compute scaling efficiency in the guest on ${plural(n)}: throughput / (${n} x 1-vCPU throughput)`, unit: 'ratio', better: 'higher', samples: g, tolerance: RATIO_TOLERANCE, params: params(n, { workload: 'compute', family: 'linux.compute.efficiency', ideal: 1 }) });
        }
        const h = host.get(1)?.length ? eff(host) : [];
        if (!h.length) continue;
        metrics.push({ id: `linux.compute.host-efficiency-${n}`, description: `compute scaling efficiency of ${n} host threads (reference)`, unit: 'ratio', better: 'higher', samples: h, tolerance: RATIO_TOLERANCE, params: params(n, { workload: 'compute', family: 'linux.compute.host-efficiency', ideal: 1 }) });
        const vs = paired(g, h, (x, y) => x / y);
        if (vs.length) {
          metrics.push({ id: `linux.compute.efficiency-vs-host-${n}`, description: `compute: guest scaling efficiency / host-thread efficiency on ${plural(n)} (target >= ${LINUX_COMPUTE_TARGET})`, unit: 'ratio', better: 'higher', samples: vs, tolerance: RATIO_TOLERANCE, params: params(n, { workload: 'compute', family: 'linux.compute.efficiency-vs-host', ideal: 1, target: LINUX_COMPUTE_TARGET }) });
        }
      }
    }
  }
  return metrics;
}
