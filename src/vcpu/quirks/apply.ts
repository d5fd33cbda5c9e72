import type { KvmVcpu } from '../../kvm/vcpu-fd.js';
import type { Regs, Sregs } from '../../kvm/structs.js';
import { eventsOff } from '../../kvm/structs.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { handleEmulationFailure, fetchInstructionBytes, type QuirkAction } from './fallbacks.js';

/** The current privilege level: KVM defines it by SS.DPL once protected mode is on. */
export const cplOf = (s: Sregs): number => ((s.cr0 & 1n) !== 0n ? s.ss.dpl : 0);

/** What `recoverEmulationFailure` did, for the stats and for the stop report if it could not. */
export type Recovery = { recovered: true; what: string } | { recovered: false; reason: string; disassembly: string };

/**
 * Software-virtualising hosts only: KVM's instruction emulator fails on
 * instructions a Linux kernel executes in ring 0 (host-kvm notes). Decode
 * the instruction and carry it out ourselves: deliver int3/int n as the
 * guest's own interrupt, emulate popcnt/cmpxchg16b, skip fwait. Everything
 * here is off the hot path: it runs a dozen times per boot.
 */
export function recoverEmulationFailure(vcpu: KvmVcpu, mem: GuestMemory, regs: Regs, kvmBytes: Uint8Array | null): Recovery {
  const sregs = vcpu.getSregs();
  const cpl = cplOf(sregs);
  let bytes: Uint8Array;
  try {
    bytes = kvmBytes ?? fetchInstructionBytes(mem, sregs, regs.rip, cpl);
  } catch (e) {
    return { recovered: false, reason: `cannot read the instruction at RIP: ${(e as Error).message}`, disassembly: '' };
  }
  const action: QuirkAction = handleEmulationFailure(bytes, regs, sregs, mem, cpl);
  switch (action.kind) {
    case 'emulated':
      if (action.sregs) vcpu.setSregs({ ...sregs, ...action.sregs });
      vcpu.setRegs({ ...regs, ...action.regs });
      return { recovered: true, what: action.description };
    case 'inject-exception': {
      const events = vcpu.getEvents();
      if (events.getUint8(eventsOff('interrupt_injected')) || events.getUint8(eventsOff('exception_injected'))) {
        // An event is already on its way in; it is delivered first and the
        // instruction faults again afterwards.
        return { recovered: true, what: `${action.description} (deferred behind a pending event)` };
      }
      if (action.soft) {
        // KVM_SET_VCPU_EVENTS carries no instruction length for software
        // events, so RIP is moved past the instruction first and the event
        // injected as a plain one: the CPU then pushes exactly the return
        // address. Measured on kvm_pvm: vectors below 32 (int3, into) must
        // go in as exceptions - injected as an external interrupt, #BP's
        // handler saw a frame Linux's int3 self-test rejected - while
        // `int n` for n >= 32 goes in as an interrupt.
        vcpu.setRegs({ ...regs, rip: action.rip });
        if (action.vector < 32) {
          events.setUint8(eventsOff('exception_injected'), 1);
          events.setUint8(eventsOff('exception_nr'), action.vector);
          events.setUint8(eventsOff('exception_has_error_code'), 0);
        } else {
          events.setUint8(eventsOff('interrupt_injected'), 1);
          events.setUint8(eventsOff('interrupt_nr'), action.vector);
          events.setUint8(eventsOff('interrupt_soft'), 0);
        }
      } else {
        if (action.cr2 !== undefined) vcpu.setSregs({ ...sregs, cr2: action.cr2 });
        events.setUint8(eventsOff('exception_injected'), 1);
        events.setUint8(eventsOff('exception_nr'), action.vector);
        events.setUint8(eventsOff('exception_has_error_code'), action.errorCode !== undefined ? 1 : 0);
        events.setUint32(eventsOff('exception_error_code'), action.errorCode ?? 0, true);
      }
      vcpu.setEvents(events);
      return { recovered: true, what: action.description };
    }
    case 'unhandled':
      return { recovered: false, reason: action.reason, disassembly: action.disassembly };
  }
}
