import { monotonicClock } from '../sync/clock.js';
import { Stat, STAT_WORDS, VcpuState, ipisReceived, type VmControlBlock } from '../vcpu/control.js';
import { exitName } from '../vcpu/run-page.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { VirtioFunctionStats } from './virtio-runtime.js';

export interface VcpuStats {
  index: number;
  /** OS thread id of the vCPU's worker. */
  tid: number;
  exits: number;
  exitsByReason: Record<string, number>;
  /** Interrupts the VMM injected (user and split irqchip; KVM's own injections are not seen, so 0 in kernel mode). */
  injections: number;
  /** EOIs the guest signalled through paravirtual EOI instead of an APIC register write (user irqchip only). */
  pvEois: number;
  /** IPIs sent to other vCPUs' APICs and received from them (one per destination; user irqchip only: KVM's LAPIC keeps them in the kernel). */
  ipisSent: number;
  ipisReceived: number;
  /** Seconds inside KVM_RUN. */
  guestSeconds: number;
  /** Seconds parked in HLT. */
  haltSeconds: number;
  /** Of those, seconds spent polling for a wake-up before sleeping (`haltPollNs`). */
  haltPollSeconds: number;
  /** Halts a wake-up ended while the vCPU polled, so that its thread never slept. */
  haltPollWakes: number;
  /** Seconds held outside the guest by pauses. */
  pausedSeconds: number;
  /** Seconds in the VMM handling exits (wall time minus the three above). */
  vmmSeconds: number;
  /** Where the vCPU is now. */
  state: 'starting' | 'in-guest' | 'in-vmm' | 'halted' | 'paused' | 'exited';
}

export interface VmStats {
  /** Where the interrupt controllers live. */
  irqchip: IrqchipMode;
  vcpus: VcpuStats[];
  console: { bytesOut: number; bytesIn: number };
  /** Each virtio PCI function: its model, bus 0 device number, status, interrupts, notifications and requests. */
  virtio: VirtioFunctionStats[];
}

const STATE_NAMES: Record<number, VcpuStats['state']> = {
  [VcpuState.Created]: 'starting',
  [VcpuState.InVmm]: 'in-vmm',
  [VcpuState.InGuest]: 'in-guest',
  [VcpuState.Halted]: 'halted',
  [VcpuState.Exited]: 'exited',
  [VcpuState.Paused]: 'paused',
};

/** Every vCPU's counters from the shared stats rows (any thread, any time; no vCPU is disturbed). */
export function readVcpuStats(buffer: SharedArrayBuffer, count: number, control: VmControlBlock | undefined): VcpuStats[] {
  const now = monotonicClock.nowNs();
  const out: VcpuStats[] = [];
  for (let i = 0; i < count; i++) {
    const s = new Float64Array(buffer, i * STAT_WORDS * 8, STAT_WORDS);
    const byReason: Record<string, number> = {};
    for (let r = 0; r < STAT_WORDS - Stat.ExitBase; r++) {
      const n = s[Stat.ExitBase + r]!;
      if (n) byReason[exitName(r)] = n;
    }
    const wall = s[Stat.StartNs] ? (s[Stat.EndNs] || now) - s[Stat.StartNs]! : 0;
    const guest = s[Stat.GuestNs]!;
    // A halt or pause in progress counts up to now (the vCPU adds it when it ends).
    const since = (at: number): number => (s[at] ? Math.max(0, now - s[at]!) : 0);
    const halt = s[Stat.HaltNs]! + since(Stat.HaltSinceNs);
    const paused = s[Stat.PausedNs]! + since(Stat.PausedSinceNs);
    out.push({
      index: i,
      tid: s[Stat.Tid]!,
      exits: s[Stat.Exits]!,
      exitsByReason: byReason,
      injections: s[Stat.Injections]!,
      pvEois: s[Stat.PvEois]!,
      ipisSent: s[Stat.IpisSent]!,
      ipisReceived: ipisReceived(s),
      guestSeconds: guest / 1e9,
      haltSeconds: halt / 1e9,
      haltPollSeconds: s[Stat.HaltPollNs]! / 1e9,
      haltPollWakes: s[Stat.HaltPollWakes]!,
      pausedSeconds: paused / 1e9,
      vmmSeconds: Math.max(0, wall - guest - halt - paused) / 1e9,
      state: control ? (STATE_NAMES[control.state(i)] ?? 'in-vmm') : 'starting',
    });
  }
  return out;
}
