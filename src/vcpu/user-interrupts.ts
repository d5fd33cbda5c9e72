import { k } from '../kvm/addon.js';
import { eventsOff } from '../kvm/structs.js';
import type { KvmVcpu } from '../kvm/vcpu-fd.js';
import type { Lapic } from '../irqchip/lapic.js';
import { LapicEvent, isLapicMsr } from '../irqchip/lapic.js';
import type { DualPic } from '../irqchip/pic.js';
import type { Clock } from '../sync/clock.js';
import { Stat } from './control.js';
import { bootRegs, bootSregs } from './boot-state.js';
import type { VcpuInterrupts } from './interrupts.js';
import { RunOff, type RunPage } from './run-page.js';

export interface UserInterruptsContext {
  /** Arms this vCPU's deadline kick (the addon's per-thread timer); 0 disarms. */
  setTimer(deadlineNs: number): void;
  vcpu: KvmVcpu;
  lapic: Lapic;
  pic: DualPic;
  clock: Clock;
  stats: Float64Array;
  run: RunPage;
  /** Start parked until INIT-SIPI (an AP under an OS that boots its APs). */
  waitForSipi: boolean;
  /** KVM refreshes the run page's vcpu events at every exit (KVM_SYNC_X86_EVENTS is valid). */
  syncEvents: boolean;
}

const EV = RunOff.syncEvents;
const EV_INTERRUPT_INJECTED = eventsOff('interrupt_injected');
const EV_INTERRUPT_NR = eventsOff('interrupt_nr');
const EV_INTERRUPT_SOFT = eventsOff('interrupt_soft');
const EV_NMI_PENDING = eventsOff('nmi_pending');
const EV_EXCEPTION_INJECTED = eventsOff('exception_injected');
const EV_FLAGS = eventsOff('flags');
const NMI_PENDING_VALID = k('KVM_VCPUEVENT_VALID_NMI_PENDING');
const SYNC_EVENTS = k('KVM_SYNC_X86_EVENTS');

/**
 * `user` irqchip mode: our LAPIC decides what the vCPU takes. Pending
 * vectors are injected with KVM_INTERRUPT once the guest can take them
 * (IF set, no interrupt shadow); otherwise KVM is asked for an exit when it
 * can. INIT parks the vCPU until a SIPI restarts it in real mode.
 */
export class UserInterrupts implements VcpuInterrupts {
  readonly haltInKernel = false;
  private waitingForSipi: boolean;
  private events = 0;
  private armed = Infinity;
  private cr8 = 0;
  /** `lapic.attention()` at the last full check, and whether nothing was pending then. */
  private attention = -1;
  private idle = false;
  private readonly u8: Uint8Array;

  constructor(private readonly c: UserInterruptsContext) {
    this.waitingForSipi = c.waitForSipi;
    this.u8 = c.run.u8;
  }

  private collectEvents(): number {
    const taken = this.c.lapic.takeEvents();
    if (taken) this.events |= taken;
    return this.events;
  }

  hasPending(): boolean {
    const ev = this.collectEvents();
    if (this.waitingForSipi) return (ev & (LapicEvent.INIT | LapicEvent.SIPI)) !== 0;
    if (ev) return true;
    // With IF clear only NMI/INIT/SIPI end a HLT, as on hardware.
    return this.u8[RunOff.ifFlag] !== 0 && this.c.lapic.hasPendingInterrupt();
  }

  msUntilTimer(): number {
    const d = this.c.lapic.nextDeadlineNs();
    return d === Infinity ? Infinity : (d - this.c.clock.nowNs()) / 1e6;
  }

  poll(): void {
    const d = this.c.lapic.nextDeadlineNs();
    if (d !== Infinity && d <= this.c.clock.nowNs()) this.c.lapic.pollTimer();
  }

  afterRun(run: RunPage): void {
    // An EOI the guest did through its PV EOI word, before anything looks at the APIC.
    if (this.c.lapic.syncPvEoiAfterExit()) this.c.stats[Stat.PvEois]! += 1;
    const cr8 = run.u8[RunOff.cr8]! & 0xf;
    if (cr8 !== this.cr8) {
      this.cr8 = cr8;
      this.c.lapic.setCr8(cr8);
    }
  }

  beforeRun(run: RunPage): boolean {
    const { lapic } = this.c;
    // Fast path, most exits: the APIC has not moved since the last full check
    // and had nothing to deliver, and no armed timer is due (its POSIX timer
    // kicks us out of KVM_RUN at the deadline; the attention counter does not
    // move for that, hence the clock check).
    const attention = lapic.attention();
    if (attention === this.attention && this.idle && (this.armed === Infinity || this.c.clock.nowNs() < this.armed)) return true;
    this.attention = attention;
    this.idle = false;
    if (this.collectEvents()) this.handleEvents();
    if (this.waitingForSipi) return false;
    this.poll();
    this.armTimer();
    // KVM loads CR8 from the run page on every entry when the LAPIC is ours.
    this.cr8 = lapic.cr8();
    run.u8[RunOff.cr8] = this.cr8;
    const u8 = this.u8;
    if (lapic.hasPendingInterrupt()) {
      if (u8[RunOff.readyForInjection] && u8[RunOff.ifFlag] && !this.eventInFlight()) {
        let vector: number;
        if (lapic.extIntPending()) {
          vector = this.c.pic.acknowledge();
          lapic.acknowledgeExtInt();
        } else {
          vector = lapic.acknowledge();
        }
        this.inject(vector);
        this.c.stats[Stat.Injections]! += 1;
        // The guest cannot take another until this one is in; ask to hear when it can.
        u8[RunOff.requestInterruptWindow] = lapic.hasPendingInterrupt() ? 1 : 0;
      } else {
        u8[RunOff.requestInterruptWindow] = 1;
      }
    } else {
      u8[RunOff.requestInterruptWindow] = 0;
      this.idle = this.events === 0;
    }
    // Last, once this entry's injection is decided. The fast path above
    // needs no such step: with the APIC unchanged, so is the decision.
    lapic.syncPvEoiBeforeEntry();
    return true;
  }

  /**
   * RDMSR/WRMSR exits for the APIC's MSRs (x2APIC, APIC base, TSC deadline),
   * routed to us by the MSR filter. An MSR the APIC refuses raises #GP.
   */
  msr(run: RunPage, write: boolean, index: number): boolean {
    if (!isLapicMsr(index)) return false;
    const { lapic } = this.c;
    const v = run.view;
    if (write) {
      const ok = lapic.writeMsr(index, v.getBigUint64(RunOff.msrData, true));
      run.u8[RunOff.msrError] = ok ? 0 : 1;
    } else {
      const value = lapic.readMsr(index);
      if (value === undefined) run.u8[RunOff.msrError] = 1;
      else {
        run.u8[RunOff.msrError] = 0;
        v.setBigUint64(RunOff.msrData, value, true);
      }
    }
    return true;
  }

  pause(): void {
    // What this thread took from the APIC but has not acted on goes back
    // there, and whether it waits for a SIPI goes where a snapshot sees it.
    this.c.lapic.returnEvents(this.events);
    this.events = 0;
    this.c.stats[Stat.WaitingForSipi] = this.waitingForSipi ? 1 : 0;
    this.c.setTimer(0);
    // NaN never equals a deadline: the first entry after the pause re-arms.
    this.armed = NaN;
    this.idle = false;
  }

  resume(): void {
    this.armed = NaN;
  }

  /** Arms the addon's per-thread timer so a vCPU inside KVM_RUN comes out for its LAPIC timer. */
  private armTimer(): void {
    const d = this.c.lapic.nextDeadlineNs();
    if (d === this.armed) return;
    this.armed = d;
    this.c.setTimer(d === Infinity ? 0 : d);
  }

  private handleEvents(): void {
    const ev = this.events;
    this.events = 0;
    const { lapic, vcpu } = this.c;
    if (ev & LapicEvent.INIT) {
      // INIT: the APIC and the CPU return to their INIT state and wait for a SIPI (SDM 8.4, 11.4.7.3).
      lapic.resetForInit();
      this.waitingForSipi = true;
    }
    if (ev & LapicEvent.SIPI && this.waitingForSipi) {
      const vector = lapic.sipiVector();
      vcpu.setSregs(bootSregs(vcpu.getSregs(), 'real', vector << 8));
      vcpu.setRegs(bootRegs('real', vector << 12, 0, 0));
      vcpu.resetFpu();
      this.waitingForSipi = false;
    }
    if (ev & LapicEvent.NMI && !this.waitingForSipi) this.nmi();
  }

  /**
   * Queues external interrupt `vector`. With KVM_SYNC_X86_EVENTS the event
   * goes into the run page, which KVM refreshed at the last exit and applies
   * at the next KVM_RUN: no ioctl of its own (a vCPU ioctl is ~10 us on the
   * development hosts). Otherwise KVM_INTERRUPT.
   */
  private inject(vector: number): void {
    if (!this.c.syncEvents) return this.c.vcpu.interrupt(vector);
    const u8 = this.u8;
    u8[EV + EV_INTERRUPT_INJECTED] = 1;
    u8[EV + EV_INTERRUPT_NR] = vector;
    u8[EV + EV_INTERRUPT_SOFT] = 0;
    this.markEventsDirty();
  }

  /** Makes an NMI pending, through the run page like `inject` (a KVM_NMI ioctl there would be overwritten). */
  private nmi(): void {
    if (!this.c.syncEvents) return this.c.vcpu.nmi();
    const v = this.c.run.view;
    this.u8[EV + EV_NMI_PENDING] = 1;
    v.setUint32(EV + EV_FLAGS, v.getUint32(EV + EV_FLAGS, true) | NMI_PENDING_VALID, true);
    this.markEventsDirty();
  }

  /** An exception or interrupt already being injected (per the run page's synced events). */
  private eventInFlight(): boolean {
    if (!this.c.syncEvents) return false;
    const u8 = this.u8;
    return u8[EV + EV_INTERRUPT_INJECTED] !== 0 || u8[EV + EV_EXCEPTION_INJECTED] !== 0;
  }

  private markEventsDirty(): void {
    const at = RunOff.dirtyRegs;
    this.u8[at] = this.u8[at]! | SYNC_EVENTS;
  }
}
