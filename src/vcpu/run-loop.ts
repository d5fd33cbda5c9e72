import { native } from '../kvm/addon.js';
import type { KvmVcpu } from '../kvm/vcpu-fd.js';
import type { Bus } from '../devices/bus.js';
import type { AccessSize, StopReason, VmControl } from '../devices/device.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { monotonicClock } from '../sync/clock.js';
import { VcpuState, Stat, type VmControlBlock } from './control.js';
import { RunPage, RunOff, Exit, exitName } from './run-page.js';
import type { VcpuInterrupts } from './interrupts.js';
import { syncedRegs, instructionBytes, fetchOutsideRam, formatRegisters, formatBytes } from './exit-report.js';
import { recoverEmulationFailure } from './quirks/apply.js';
import { disassemble } from './quirks/disasm.js';
import { cpuModeOf } from './quirks/page-walk.js';
import type { DebugExits } from './debug-exit.js';
import { ExitKind, type ExitProfileRecorder } from './exit-profile.js';
import { pollUntil, type PollWindow } from '../sync/poll-window.js';

export interface RunLoopContext {
  index: number;
  slot: number;
  vcpu: KvmVcpu;
  run: RunPage;
  bus: Bus;
  memory: GuestMemory;
  control: VmControlBlock;
  stats: Float64Array;
  interrupts: VcpuInterrupts;
  vm: VmControl;
  /** Recover from KVM emulation failures (software-virtualising hosts only). */
  quirks: boolean;
  /** The run page carries vcpu events (KVM_SYNC_X86_EVENTS). */
  syncEvents: boolean;
  /** Around a pause, on this vCPU's thread (e.g. the guest TSC's offset). */
  onPause?: () => void;
  onResume?: () => void;
  /** Debug exits and the debugger's `int3`s (the gdb stub). */
  debug?: DebugExits;
  /** Test knob: busy-wait this long after every kick out of KVM_RUN (a deliberately slow interrupt path). */
  kickDelayNs?: number;
  /** Counts exits by port, MMIO address and reason (VmOptions `exitProfile`). */
  profile?: ExitProfileRecorder;
  /** Poll for a wake-up before sleeping in a halt the VMM handles (VmOptions `haltPollNs`). */
  haltPoll?: PollWindow;
}

/**
 * One vCPU's loop: KVM_RUN, dispatch the exit from the kvm_run page, repeat.
 * The common exits (port and MMIO I/O) cost exactly one ioctl, the KVM_RUN
 * that resumes the guest.
 */
export class RunLoop {
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  private readonly dv: DataView;

  constructor(private readonly c: RunLoopContext) {
    this.u8 = c.run.u8;
    this.u16 = c.run.u16;
    this.u32 = c.run.u32;
    this.dv = c.run.view;
  }

  /** Runs until the VM stops; returns when this vCPU has left the guest for good. */
  run(): void {
    const { control, index, slot, stats, interrupts, run } = this.c;
    for (;;) {
      // Publish "in guest" before looking for work: a waker that misses the
      // work check sees this state and kicks (see VmControlBlock.wake).
      control.setState(index, VcpuState.InGuest);
      if (control.stopRequested) break;
      if (control.pauseRequested) {
        this.holdForPause();
        continue;
      }
      if (!interrupts.beforeRun(run)) {
        this.park();
        continue;
      }
      const r = native.run(slot);
      control.setState(index, VcpuState.InVmm);
      interrupts.afterRun?.(run);
      if (r < 0) {
        // kicked (EINTR) or asked to retry (EAGAIN)
        if (this.c.kickDelayNs) spin(this.c.kickDelayNs);
        continue;
      }
      const reason = this.u32[RunOff.exitReason >> 2]!;
      stats[Stat.Exits]! += 1;
      stats[Stat.ExitBase + reason]! += 1;
      if (this.c.profile !== undefined) {
        if (!this.profiledExit(reason, this.c.profile)) break;
      } else if (reason === Exit.Io) this.io();
      else if (reason === Exit.Mmio) this.mmio();
      else if (!this.slowExit(reason)) break;
    }
    control.setState(index, VcpuState.Exited);
  }

  /** The dispatch above, with each exit counted in the profile (and port and MMIO handling timed). */
  private profiledExit(reason: number, profile: ExitProfileRecorder): boolean {
    const { bus } = this.c;
    if (reason === Exit.Io) {
      const port = this.u16[RunOff.ioPort >> 1]!;
      const t0 = monotonicClock.nowNs();
      this.io();
      profile.record(this.u8[RunOff.ioDirection] === 1 ? ExitKind.PioOut : ExitKind.PioIn, port, monotonicClock.nowNs() - t0, () => bus.nameAt('pio', port));
      return true;
    }
    if (reason === Exit.Mmio) {
      const addr = this.c.run.u64(RunOff.mmioPhysAddr);
      const t0 = monotonicClock.nowNs();
      this.mmio();
      profile.record(this.u8[RunOff.mmioIsWrite] !== 0 ? ExitKind.MmioWrite : ExitKind.MmioRead, addr, monotonicClock.nowNs() - t0, () => bus.nameAt('mmio', addr));
      return true;
    }
    profile.record(ExitKind.Other, reason, 0, () => exitName(reason));
    return this.slowExit(reason);
  }

  private io(): void {
    const { bus, index } = this.c;
    const u8 = this.u8;
    const size = u8[RunOff.ioSize]! as AccessSize;
    const port = this.u16[RunOff.ioPort >> 1]!;
    const count = this.u32[RunOff.ioCount >> 2]!;
    let at = this.u32[RunOff.ioDataOffset >> 2]!;
    if (u8[RunOff.ioDirection] === 1) {
      for (let i = 0; i < count; i++, at += size) {
        const v = size === 1 ? u8[at]! : size === 2 ? this.dv.getUint16(at, true) : this.dv.getUint32(at, true);
        bus.pioWrite(port, size, v, index);
      }
    } else {
      for (let i = 0; i < count; i++, at += size) {
        const v = bus.pioRead(port, size, index);
        if (size === 1) u8[at] = v;
        else if (size === 2) this.dv.setUint16(at, v, true);
        else this.dv.setUint32(at, v, true);
      }
    }
  }

  private mmio(): void {
    const { bus, index, run } = this.c;
    const addr = run.u64(RunOff.mmioPhysAddr);
    const len = this.u32[RunOff.mmioLen >> 2]!;
    const data = RunOff.mmioData;
    const write = this.u8[RunOff.mmioIsWrite] !== 0;
    // Split into naturally sized pieces: 8-byte accesses become two 4-byte
    // ones (what devices with 64-bit registers expect from 32-bit drivers).
    for (let done = 0; done < len; ) {
      const left = len - done;
      const size: AccessSize = left >= 4 ? 4 : left >= 2 ? 2 : 1;
      const at = data + done;
      if (write) {
        const v = size === 4 ? this.dv.getUint32(at, true) : size === 2 ? this.dv.getUint16(at, true) : this.u8[at]!;
        bus.mmioWrite(addr + done, size, v, index);
      } else {
        const v = bus.mmioRead(addr + done, size, index);
        if (size === 4) this.dv.setUint32(at, v, true);
        else if (size === 2) this.dv.setUint16(at, v, true);
        else this.u8[at] = v;
      }
      done += size;
    }
  }

  /** Everything but I/O. Returns false when this vCPU must stop. */
  private slowExit(reason: number): boolean {
    const { interrupts, run } = this.c;
    switch (reason) {
      case Exit.Hlt:
        // With KVM's LAPIC, the next KVM_RUN blocks in the kernel until an interrupt.
        if (!interrupts.haltInKernel) this.park();
        return true;
      case Exit.IrqWindowOpen:
      case Exit.Intr:
        return true;
      case Exit.RdMsr:
      case Exit.WrMsr: {
        const index = this.u32[RunOff.msrIndex >> 2]!;
        if (interrupts.msr?.(run, reason === Exit.WrMsr, index)) return true;
        // Not ours: tell KVM to raise #GP, as hardware does for an unknown MSR.
        this.u8[RunOff.msrError] = 1;
        return true;
      }
      case Exit.IoapicEoi:
        interrupts.eoi?.(this.u8[RunOff.eoiVector]!);
        return true;
      case Exit.SystemEvent: {
        const type = this.u32[RunOff.systemEventType >> 2]!;
        if (type === 1) return this.stop({ kind: 'poweroff' });
        if (type === 2) return this.stop({ kind: 'reset' });
        return this.stop(this.fault('error', 'guest crash', `system event ${type}`));
      }
      case Exit.Shutdown:
        return this.stop(this.fault('triple-fault', 'triple fault', 'the guest took an exception it could not handle'));
      case Exit.Debug:
        if (!this.c.debug) return this.stop(this.fault('error', 'unexpected debug exit', 'no debugger is attached'));
        if (this.c.debug.onDebugExit(run) === 'reinjected') this.eventInjected();
        return true;
      case Exit.InternalError: {
        const nowhere = fetchOutsideRam(this.c.vcpu, this.c.memory, syncedRegs(run));
        if (nowhere) return this.stop(this.report('error', `vCPU ${this.c.index} tried to execute at ${nowhere}, where there is no RAM`));
        let why = 'KVM could not execute the instruction at RIP';
        if (this.c.quirks && this.u32[RunOff.internalSuberror >> 2] === 1) {
          if (this.c.debug?.onEmulationFailure(this.kvmInstructionBytes(), syncedRegs(run).rip)) return true;
          const r = recoverEmulationFailure(this.c.vcpu, this.c.memory, syncedRegs(run), this.kvmInstructionBytes());
          if (r.recovered) {
            this.c.stats[Stat.QuirkFixes]! += 1;
            this.eventInjected();
            return true;
          }
          why = `no fallback for it: ${r.reason}`;
        }
        return this.stop(this.fault('error', this.internalError(), why));
      }
      case Exit.FailEntry:
        return this.stop(this.fault('error', 'VM entry failure', `hardware reason 0x${run.u64(RunOff.failEntryReason).toString(16)}`));
      default:
        return this.stop(this.fault('error', `unexpected ${exitName(reason)}`, 'nodevisor does not handle this exit'));
    }
  }

  /**
   * After an event was (or may have been) injected by ioctl: the run page's
   * copy from this exit is stale (must not be written back over it), and
   * so is ready_for_interrupt_injection - nothing else may be injected on
   * this entry, or KVM keeps only one of the two.
   */
  private eventInjected(): void {
    if (this.c.syncEvents) this.refreshSyncedEvents();
    this.u8[RunOff.readyForInjection] = 0;
  }

  private refreshSyncedEvents(): void {
    const events = this.c.vcpu.getEvents();
    this.u8.set(new Uint8Array(events.buffer, events.byteOffset, events.byteLength), RunOff.syncEvents);
  }

  /** The instruction bytes KVM reported with an emulation failure, if it did. */
  private kvmInstructionBytes(): Uint8Array | null {
    if (this.u32[RunOff.internalSuberror >> 2] !== 1 || (this.u32[RunOff.emulationFlags >> 2]! & 1) === 0) return null;
    return this.u8.slice(RunOff.insnBytes, RunOff.insnBytes + Math.min(15, this.u8[RunOff.insnSize]!));
  }

  private internalError(): string {
    const sub = this.u32[RunOff.internalSuberror >> 2]!;
    const what = sub === 1 ? 'emulation failure' : sub === 2 ? 'simultaneous exceptions' : sub === 3 ? 'event delivery failed' : `internal error ${sub}`;
    return `KVM ${what}`;
  }

  /** A stop reason whose first line says what, where and why, followed by the guest's state. */
  private fault(kind: 'triple-fault' | 'error', what: string, why: string): StopReason {
    return this.report(kind, `${what} on vCPU ${this.c.index} at RIP 0x${syncedRegs(this.c.run).rip.toString(16)}: ${why}`);
  }

  /** A stop reason: `headline`, then the instruction and the registers. */
  private report(kind: 'triple-fault' | 'error', headline: string): StopReason {
    const { vcpu, memory, index, run } = this.c;
    const regs = syncedRegs(run);
    let detail: string;
    try {
      const sregs = vcpu.getSregs();
      const bytes = this.kvmInstructionBytes() ?? instructionBytes(vcpu, memory, regs, sregs);
      const text = bytes.length ? `\ninstruction: ${disassemble(bytes, cpuModeOf(sregs), regs.rip)}` : '';
      detail = `${headline}\ninstruction bytes: ${formatBytes(bytes)}${text}\n${formatRegisters(regs, sregs)}`;
    } catch (e) {
      detail = `${headline}\n${formatRegisters(regs)}\n(special registers unavailable: ${(e as Error).message})`;
    }
    return { kind, vcpu: index, detail };
  }

  private stop(reason: StopReason): false {
    this.c.vm.requestStop(reason);
    return false;
  }

  /** Out of the guest, with no timer armed, until the VM is resumed (or stopped). */
  private holdForPause(): void {
    const { control, index, interrupts, stats } = this.c;
    const t0 = monotonicClock.nowNs();
    this.completePendingOperation();
    stats[Stat.PausedSinceNs] = t0;
    interrupts.pause?.();
    this.c.onPause?.();
    control.parkWhilePaused(index);
    stats[Stat.PausedSinceNs] = 0;
    if (control.stopRequested) return;
    this.c.onResume?.();
    interrupts.resume?.();
    stats[Stat.PausedNs]! += monotonicClock.nowNs() - t0;
  }

  /**
   * KVM finishes an exit's operation (the MMIO read's register load, the
   * instruction an emulation was in the middle of) only at the next
   * KVM_RUN, and keeps what is pending where no ioctl shows it. Before the
   * vCPU holds still for a pause - and a snapshot reads its state - it
   * enters once with immediate_exit set: KVM completes the operation and
   * returns without running a guest instruction.
   */
  private completePendingOperation(): void {
    this.u8[RunOff.immediateExit] = 1;
    native.run(this.c.slot);
    this.u8[RunOff.immediateExit] = 0;
  }

  /** Parks (HLT, or waiting for SIPI) until something is pending, a timer is due, or the VM stops. */
  private park(): void {
    const { control, index, interrupts, stats, haltPoll } = this.c;
    const t0 = monotonicClock.nowNs();
    stats[Stat.HaltSinceNs] = t0;
    // Poll once, at the start of the halt: a wake-up that comes later than
    // the window finds the thread asleep.
    let pollNs = haltPoll?.windowNs ?? 0;
    for (;;) {
      control.setState(index, VcpuState.Halted);
      const seen = control.wakeSnapshot(index);
      if (control.stopRequested || control.pauseRequested || interrupts.hasPending()) break;
      const ms = interrupts.msUntilTimer();
      if (ms > 0) {
        if (pollNs > 0) this.pollForWake(seen, Math.min(pollNs, ms * 1e6));
        else control.park(index, seen, ms);
        pollNs = 0;
      }
      interrupts.poll();
    }
    control.setState(index, VcpuState.InVmm);
    const t1 = monotonicClock.nowNs();
    haltPoll?.afterIdle(t1 - t0);
    stats[Stat.HaltSinceNs] = 0;
    stats[Stat.HaltNs]! += t1 - t0;
  }

  /**
   * Polls for up to `ns` while the wake word still reads `seen`. Every
   * waker bumps that word before it would notify a sleeper, so a wake-up
   * during the poll is seen here without the sleep and wake-up in the kernel.
   */
  private pollForWake(seen: number, ns: number): void {
    const { control, index, stats } = this.c;
    const t0 = monotonicClock.nowNs();
    const woke = pollUntil(t0 + ns, () => control.wakeSnapshot(index) !== seen);
    stats[Stat.HaltPollNs]! += monotonicClock.nowNs() - t0;
    if (woke) stats[Stat.HaltPollWakes]! += 1;
  }
}

function spin(ns: number): void {
  const until = monotonicClock.nowNs() + ns;
  while (monotonicClock.nowNs() < until) {
    // a deliberately slow VMM (test knob)
  }
}
