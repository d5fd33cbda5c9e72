import { SEGMENT_NAMES, type Segment, type Sregs } from '../../src/kvm/structs.js';

export const ZERO_SEGMENT: Segment = { base: 0n, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };

/** Roughly what KVM_GET_SREGS says for a fresh vCPU, with zeroed segments. */
export function freshSregs(): Sregs {
  const s = {} as Sregs;
  for (const n of SEGMENT_NAMES) s[n] = { ...ZERO_SEGMENT };
  s.gdt = { base: 0n, limit: 0xffff };
  s.idt = { base: 0n, limit: 0xffff };
  s.cr0 = 0x60000010n;
  s.cr2 = 0n;
  s.cr3 = 0n;
  s.cr4 = 0n;
  s.cr8 = 0n;
  s.efer = 0n;
  s.apic_base = 0xfee00900n;
  s.interrupt_bitmap = [0n, 0n, 0n, 0n];
  return s;
}
