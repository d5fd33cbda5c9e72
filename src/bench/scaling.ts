import { availableParallelism } from 'node:os';
import { Kvm } from '../kvm/kvm.js';
import type { BenchContext, Suite, SuiteResult } from './types.js';
import { DEFAULT_TIMING, HOST_WORKLOADS, SCALING_WORKLOADS, runScalingGuest, type GuestRun, type ScalingWorkload } from './scaling-guest.js';
import { buildScalingReference, runHostReference, type ThreadRecord } from './scaling-ref.js';
import { runKey, scalingMetrics } from './scaling-metrics.js';
import { tscFrequency } from './scaling-tsc.js';
import { isSelected, suiteSelected, vcpuCounts } from './select.js';

export { vcpuCounts };

/**
 * The scaling suite (issue 5): how throughput grows with vCPUs for four
 * workloads of guests/bench/scaling.c, each vCPU count booted afresh, and for
 * the three ring-3 workloads the same kernels on host threads as a reference
 * (bench/ref/scaling-threads.c). Guest and host runs are interleaved so drift
 * in machine load hits both alike. See scaling-metrics.ts for the metrics.
 */

const IRQCHIP = 'user';
const TIMER_HZ = 1000;

/** 1, 2, 4, ... up to `max`, and `max` itself. */
/** Whether `only` (metric ids or dotted prefixes, see select.ts) could select a metric of `workload`. */
export function wantsWorkload(only: readonly string[] | undefined, workload: ScalingWorkload): boolean {
  return suiteSelected(`scaling.${workload}`, only);
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const counts = vcpuCounts(ctx.maxVcpus);
  const workloads = SCALING_WORKLOADS.filter((w) => wantsWorkload(ctx.only, w));
  const hostWorkloads = workloads.filter((w) => HOST_WORKLOADS.includes(w));
  if (!workloads.length) return { suite: 'scaling', metrics: [], notes: [] };
  const reference = hostWorkloads.length ? buildScalingReference() : '';

  const guest = new Map<string, GuestRun[]>();
  const host = new Map<string, ThreadRecord[][]>();
  const total = ctx.repetitions * counts.length * (workloads.length + hostWorkloads.length);
  let done = 0;
  for (let rep = 0; rep < ctx.repetitions; rep++) {
    for (const w of workloads) {
      for (const n of counts) {
        const key = runKey(w, n);
        ctx.progress(done, total, `scaling ${w}: guest, ${n} vCPU${n === 1 ? '' : 's'}`);
        const g = await runScalingGuest(w, n, { irqchip: IRQCHIP, testKnobs: ctx.testKnobs });
        guest.set(key, [...(guest.get(key) ?? []), g]);
        done++;
        if (!hostWorkloads.includes(w)) continue;
        ctx.progress(done, total, `scaling ${w}: host, ${n} thread${n === 1 ? '' : 's'}`);
        const h = await runHostReference(reference, w, n);
        host.set(key, [...(host.get(key) ?? []), h]);
        done++;
      }
    }
  }
  ctx.progress(total, total, 'scaling: done');

  const tsc = tscFrequency([...guest.values()].flat().map((g) => g.calibration));
  ctx.log(`scaling: guest TSC ${(tsc.hz / 1e6).toFixed(3)} MHz (${tsc.source})`);
  const metrics = scalingMetrics({
    workloads,
    counts,
    guest,
    host,
    tscHz: tsc.hz,
    context: { irqchip: IRQCHIP, timerHz: TIMER_HZ, measureMs: DEFAULT_TIMING.measureMs, tscMHz: Math.round(tsc.hz / 1e3) / 1e3 },
  }).filter((m) => isSelected(m.id, ctx.only));

  const notes = [`guest TSC ${(tsc.hz / 1e6).toFixed(3)} MHz, from ${tsc.source === 'sysfs' ? 'sysfs tsc_freq_khz' : 'RDTSC against the ACPI PM timer in every run'}`];
  if (tsc.note) notes.push(tsc.note);
  const cpus = availableParallelism();
  if (ctx.maxVcpus > cpus) notes.push(`${cpus} host CPUs: runs with more vCPUs or threads than that share cores, so their efficiency measures sharing, not scaling`);
  if (Kvm.isSoftwareVirtualised()) {
    notes.push('guest ring 0 is emulated on this host (kvm_pvm): the ipi workload and every 1 ms timer tick run emulated, so guest throughput trails the host threads by the tick cost');
  }
  return { suite: 'scaling', metrics, notes };
}

export const scalingSuite: Suite = {
  name: 'scaling',
  description: 'throughput and efficiency against vCPU count: compute, memory, contention (ring 3) and IPI (ring 0), with host threads as the reference',
  run,
};
