import type { Better, Metric } from './types.js';
import { isSelected } from './select.js';
import { median, roundSig } from './stats.js';
import type { NetDeviceCounts, NetGuestResult, NetWorkloadResult } from './virtio-net-runs.js';

/**
 * `nodevisor bench virtio-net`'s metrics from its samples (pure): per
 * queue-pair count and workload, the guest's value, the veth reference,
 * their ratio paired per repetition (oriented so 1 = as good as veth),
 * and the device's batching: packets per notification and per interrupt.
 */

export type NetBenchWorkload = 'stream' | 'rr';
export const WORKLOADS: readonly NetBenchWorkload[] = ['stream', 'rr'];

export const netBenchId = (w: NetBenchWorkload, pairs: number, what?: string): string => `virtio-net.${w}.${pairs}q${what ? `.${what}` : ''}`;

/** What one repetition of one queue-pair count measured. */
export interface NetBenchSample {
  guest: NetGuestResult;
  veth: NetWorkloadResult;
}

/** Packets per notification (what the guest sends per doorbell) and per interrupt (what each interrupt reports). */
export function batching(d: NetDeviceCounts): { perNotification: number; perInterrupt: number } {
  const interrupts = d.tx.interrupts + d.rx.interrupts;
  return { perNotification: d.tx.notifications ? d.tx.packets / d.tx.notifications : 0, perInterrupt: interrupts ? (d.tx.packets + d.rx.packets) / interrupts : 0 };
}

export function netBenchMetrics(samples: ReadonlyMap<number, readonly NetBenchSample[]>, params: { seconds: number; irqchip: string }, only?: readonly string[]): Metric[] {
  const metrics: Metric[] = [];
  for (const [p, s] of samples) {
    for (const w of WORKLOADS) {
      if (!isSelected(netBenchId(w, p), only)) continue;
      const stream = w === 'stream';
      const guestValue = (x: NetBenchSample): number => (stream ? x.guest.stream : x.guest.rrLatencyUs);
      const vethValue = (x: NetBenchSample): number => (stream ? x.veth.stream : x.veth.rrLatencyUs);
      const better: Better = stream ? 'higher' : 'lower';
      const unit = stream ? 'MiB/s' : 'us';
      const what = stream ? `TCP stream throughput, ${p} connection${p > 1 ? 's' : ''}` : `TCP request/response round trip (1 byte each way), ${p} connection${p > 1 ? 's' : ''}`;
      const base = { pairs: p, vcpus: p, seconds: params.seconds, irqchip: params.irqchip };
      const counts = s.map((x) => batching(x.guest.device[w]));
      const extra = { ...base, packetsPerNotification: roundSig(median(counts.map((c) => c.perNotification)), 3), packetsPerInterrupt: roundSig(median(counts.map((c) => c.perInterrupt)), 3) };
      metrics.push({ id: netBenchId(w, p), description: `${what} from a Linux guest through virtio-net on a tap with ${p} queue pair${p > 1 ? 's' : ''}`, unit, better, samples: s.map(guestValue), tolerance: 0.25, params: extra });
      metrics.push({ id: netBenchId(w, p, 'veth'), description: `the same ${stream ? 'stream' : 'round trip'} between two host namespaces over a veth pair (reference)`, unit, better, samples: s.map(vethValue), tolerance: 0.25, params: base });
      // Paired per repetition: both sides met the same machine load. Oriented so that 1 = as good as veth.
      const ratios = s.map((x) => (stream ? guestValue(x) / vethValue(x) : vethValue(x) / guestValue(x)));
      metrics.push({ id: netBenchId(w, p, 'ratio-vs-veth'), description: `${netBenchId(w, p)} against ${netBenchId(w, p, 'veth')}, paired per repetition (1 = as ${stream ? 'fast' : 'quick'} as the host over veth)`, unit: 'ratio', better: 'higher', samples: ratios, tolerance: 0.3, params: { ...base, ideal: 1 } });
      metrics.push({ id: netBenchId(w, p, 'packets-per-notification'), description: `packets the guest sent per transmit-queue notification during ${netBenchId(w, p)} (above 1: the driver batches)`, unit: 'packets', better: 'higher', samples: counts.map((c) => c.perNotification), tolerance: 0.5, params: base });
      metrics.push({ id: netBenchId(w, p, 'packets-per-interrupt'), description: `packets (both ways) per interrupt raised during ${netBenchId(w, p)} (above 1: the device batches completions)`, unit: 'packets', better: 'higher', samples: counts.map((c) => c.perInterrupt), tolerance: 0.5, params: base });
    }
  }
  return metrics;
}
