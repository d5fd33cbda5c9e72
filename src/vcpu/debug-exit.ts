import { layoutOf } from '../kvm/addon.js';
import { eventsOff } from '../kvm/structs.js';
import type { KvmVcpu } from '../kvm/vcpu-fd.js';
import type { VmControlBlock } from './control.js';
import type { DebugBlock } from './debug-block.js';
import type { RunPage } from './run-page.js';

const RUN = layoutOf('kvm_run');
const BP_VECTOR = 3;
const INT3 = 0xcc;

/** A debug event on one vCPU, as the main thread hears of it. */
export interface DebugStopEvent {
  vcpu: number;
  /** 1 (#DB: single-step or a debug-register hit) or 3 (#BP: a software breakpoint). */
  exception: number;
  /** The linear address of the instruction the vCPU stopped at. */
  pc: bigint;
  /** DR6 for #DB: which debug register fired (bits 0-3), single-step (bit 14). */
  dr6: bigint;
}

/**
 * Debug events on a vCPU thread: KVM_EXIT_DEBUG (single-step, hardware
 * breakpoints, and `int3` where KVM intercepts #BP for us) and `int3`
 * emulation failures at the debugger's breakpoints (software-virtualising
 * hosts, where ring-0 `int3` never reaches KVM as #BP). Either stops the
 * whole VM: this vCPU asks every vCPU to park, and the main thread (told
 * through `report`, not a per-exit path) completes the pause and tells the
 * debugger.
 */
export class DebugExits {
  constructor(
    private readonly c: {
      index: number;
      vcpu: KvmVcpu;
      control: VmControlBlock;
      block: DebugBlock;
      report: (e: DebugStopEvent) => void;
    },
  ) {}

  /**
   * KVM_EXIT_DEBUG. Returns 'reinjected' when it was the guest's own `int3`
   * (not one of ours), which then goes to the guest as the #BP it is.
   */
  onDebugExit(run: RunPage): 'stopped' | 'reinjected' {
    const v = run.view;
    const exception = v.getUint32(RUN.debug_exception!, true);
    const pc = v.getBigUint64(RUN.debug_pc!, true);
    if (exception === BP_VECTOR && !this.c.block.hasBreakpoint(pc)) {
      this.reinjectBreakpoint();
      return 'reinjected';
    }
    this.stop({ vcpu: this.c.index, exception, pc, dr6: exception === BP_VECTOR ? 0n : v.getBigUint64(RUN.debug_dr6!, true) });
    return 'stopped';
  }

  /**
   * An emulation failure on `bytes` at `rip`: true (and the VM stopping)
   * when it is an `int3` the debugger placed. 64-bit and flat guests only:
   * RIP is the linear address there.
   */
  onEmulationFailure(bytes: Uint8Array | null, rip: bigint): boolean {
    if (!bytes || bytes[0] !== INT3 || this.c.block.breakpointCount === 0 || !this.c.block.hasBreakpoint(rip)) return false;
    this.stop({ vcpu: this.c.index, exception: BP_VECTOR, pc: rip, dr6: 0n });
    return true;
  }

  private stop(e: DebugStopEvent): void {
    // Only the first event since the debugger resumed is reported; others
    // recur when their vCPU runs again (the breakpoint is still there).
    if (this.c.block.claimStop(this.c.index)) this.c.report(e);
    this.c.control.requestPause();
  }

  /** The #BP KVM intercepted goes to the guest (KVM supplies the instruction length of a #BP). */
  private reinjectBreakpoint(): void {
    const events = this.c.vcpu.getEvents();
    events.setUint8(eventsOff('exception_injected'), 1);
    events.setUint8(eventsOff('exception_nr'), BP_VECTOR);
    events.setUint8(eventsOff('exception_has_error_code'), 0);
    this.c.vcpu.setEvents(events);
  }
}
