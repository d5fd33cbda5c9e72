/**
 * What `nodevisor top` shows: rates over the time between two `stats`
 * answers of the API socket. Pure functions of the two samples.
 */
import type { VcpuStats, VmStats } from '../vm/vcpu-stats.js';

/** The `stats` command's result. */
export type StatsSnapshot = VmStats & { timeSeconds: number; state: string };

export interface VcpuRates {
  index: number;
  state: VcpuStats['state'];
  exitsPerSecond: number;
  exitsByReasonPerSecond: Record<string, number>;
  /** null where KVM injects (kernel irqchip): nodevisor does not see those. */
  injectionsPerSecond: number | null;
  /** null unless the LAPICs are nodevisor's (user irqchip). */
  ipisSentPerSecond: number | null;
  ipisReceivedPerSecond: number | null;
  /** Shares of the interval (0-1): in KVM_RUN, handling exits, halted, paused. */
  time: { guest: number; vmm: number; halt: number; paused: number };
}

export interface VirtioRates {
  name: string;
  device: number;
  /** Completed requests (virtio-blk); null for devices without requests. */
  requestsPerSecond: number | null;
  /** Queue notifications from the driver, and how many of them cost an exit (the rest came through ioeventfds). */
  notificationsPerSecond: number;
  notificationExitsPerSecond: number;
}

export interface TopSample {
  timeSeconds: number;
  intervalSeconds: number;
  state: string;
  irqchip: string;
  vcpus: VcpuRates[];
  virtio: VirtioRates[];
}

const per = (a: number, b: number, dt: number): number => Math.max(0, b - a) / dt;

function vcpuRates(a: VcpuStats | undefined, b: VcpuStats, dt: number, irqchip: string): VcpuRates {
  const byReason: Record<string, number> = {};
  for (const [reason, n] of Object.entries(b.exitsByReason)) {
    const r = per(a?.exitsByReason[reason] ?? 0, n, dt);
    if (r > 0) byReason[reason] = r;
  }
  const share = (k: 'guestSeconds' | 'vmmSeconds' | 'haltSeconds' | 'pausedSeconds'): number => Math.min(1, per(a?.[k] ?? 0, b[k], dt));
  const user = irqchip === 'user';
  return {
    index: b.index,
    state: b.state,
    exitsPerSecond: per(a?.exits ?? 0, b.exits, dt),
    exitsByReasonPerSecond: byReason,
    injectionsPerSecond: irqchip === 'kernel' ? null : per(a?.injections ?? 0, b.injections, dt),
    ipisSentPerSecond: user ? per(a?.ipisSent ?? 0, b.ipisSent, dt) : null,
    ipisReceivedPerSecond: user ? per(a?.ipisReceived ?? 0, b.ipisReceived, dt) : null,
    time: { guest: share('guestSeconds'), vmm: share('vmmSeconds'), halt: share('haltSeconds'), paused: share('pausedSeconds') },
  };
}

/** Rates from sample `a` to the later sample `b`. */
export function rates(a: StatsSnapshot, b: StatsSnapshot): TopSample {
  const dt = Math.max(1e-9, b.timeSeconds - a.timeSeconds);
  return {
    timeSeconds: b.timeSeconds,
    intervalSeconds: dt,
    state: b.state,
    irqchip: b.irqchip,
    vcpus: b.vcpus.map((v) => vcpuRates(a.vcpus.find((x) => x.index === v.index), v, dt, b.irqchip)),
    virtio: b.virtio.map((d) => {
      const old = a.virtio.find((x) => x.device === d.device);
      const notes = (s: typeof d | undefined): number => (s ? s.notifications.exits + s.notifications.ioeventfd : 0);
      return {
        name: d.name,
        device: d.device,
        requestsPerSecond: d.requests ? per(old?.requests?.completed ?? 0, d.requests.completed, dt) : null,
        notificationsPerSecond: per(notes(old), notes(d), dt),
        notificationExitsPerSecond: per(old?.notifications.exits ?? 0, d.notifications.exits, dt),
      };
    }),
  };
}
