/**
 * IRET in protected mode (not 64-bit mode), which KVM's instruction
 * emulator does not implement (it only returns from real-mode interrupts)
 * and fails on where it emulates ring 0 (software-virtualising hosts).
 * Boot loaders running 32-bit protected-mode code between BIOS calls
 * (SYSLINUX's core) return from every interrupt this way.
 *
 * SDM Vol. 2, IRET, protected-mode path: pop EIP, CS and EFLAGS (16 or 32
 * bits each, by operand size); to an outer privilege level also ESP and
 * SS. Task returns (NT set) and returns to virtual-8086 mode are refused,
 * as are LDT selectors: nothing that needs them has been seen to fail.
 */
import type { Regs, Segment, Sregs } from '../../kvm/structs.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { linearAddress, readVirtual } from './page-walk.js';

export type IretResult =
  | { kind: 'done'; regs: Partial<Regs>; sregs: Partial<Sregs> }
  | { kind: 'fault'; vector: number; errorCode: number }
  | { kind: 'refused'; reason: string };

const NT = 1n << 14n;
const VM = 1n << 17n;
const IF = 1n << 9n;
const IOPL = 3n << 12n;
/** What IRET may change at CPL 0 (everything but VM and the reserved bits); bit 1 always reads 1. */
const CPL0_WRITABLE = 0x3f7fd5n & ~VM;
const GP = 13;
const SS_FAULT = 12;
const NP = 11;

/** A segment register loaded from the 8-byte descriptor `d` for `selector`. */
export function segmentFromDescriptor(selector: number, d: Uint8Array): Segment {
  const lo = d[0]! | (d[1]! << 8) | ((d[6]! & 0xf) << 16);
  const g = (d[6]! >> 7) & 1;
  return {
    base: BigInt((d[2]! | (d[3]! << 8) | (d[4]! << 16) | (d[7]! << 24)) >>> 0),
    limit: g ? ((lo << 12) | 0xfff) >>> 0 : lo,
    selector,
    type: d[5]! & 0xf,
    s: (d[5]! >> 4) & 1,
    dpl: (d[5]! >> 5) & 3,
    present: (d[5]! >> 7) & 1,
    avl: (d[6]! >> 4) & 1,
    l: (d[6]! >> 5) & 1,
    db: (d[6]! >> 6) & 1,
    g,
    unusable: 0,
  };
}

export function protectedModeIret(regs: Regs, sregs: Sregs, mem: GuestMemory, cpl: number, operandSize: 16 | 32): IretResult {
  if (regs.rflags & NT) return { kind: 'refused', reason: 'iret with NT set (a task return)' };
  const width = operandSize / 8;
  const stackMask = sregs.ss.db ? 0xffff_ffffn : 0xffffn;
  const pop = (count: number): bigint[] | null => {
    const r = readVirtual(mem, sregs, cpl, linearAddress(sregs, 'ss', regs.rsp & stackMask), count * width);
    if ('fault' in r) return null;
    const v = new DataView(r.bytes.buffer);
    return Array.from({ length: count }, (_, i) => BigInt(width === 4 ? v.getUint32(i * 4, true) : v.getUint16(i * 2, true)));
  };
  const frame = pop(3);
  if (!frame) return { kind: 'refused', reason: 'the iret frame is not readable' };
  const [eip, csSel, flags] = frame.map(Number) as [number, number, number];
  if (width === 4 && BigInt(flags) & VM && cpl === 0) return { kind: 'refused', reason: 'iret to virtual-8086 mode' };
  const rpl = csSel & 3;
  if ((csSel & ~3) === 0 || rpl < cpl) return { kind: 'fault', vector: GP, errorCode: csSel & ~3 };
  const cs = descriptor(mem, sregs, csSel);
  if (typeof cs === 'string') return { kind: 'refused', reason: cs };
  if (!cs.s || !(cs.type & 8)) return { kind: 'fault', vector: GP, errorCode: csSel & ~3 };
  if (!cs.present) return { kind: 'fault', vector: NP, errorCode: csSel & ~3 };
  const out: Partial<Regs> = {};
  const seg: Partial<Sregs> = { cs };
  if (rpl === cpl) {
    out.rsp = (regs.rsp & ~stackMask) | ((regs.rsp + BigInt(3 * width)) & stackMask);
  } else {
    const outer = pop(5);
    if (!outer) return { kind: 'refused', reason: 'the iret frame is not readable' };
    const ssSel = Number(outer[4]!);
    if ((ssSel & 3) !== rpl) return { kind: 'fault', vector: GP, errorCode: ssSel & ~3 };
    const ss = descriptor(mem, sregs, ssSel);
    if (typeof ss === 'string') return { kind: 'refused', reason: ss };
    if (!ss.present) return { kind: 'fault', vector: SS_FAULT, errorCode: ssSel & ~3 };
    seg.ss = ss;
    out.rsp = outer[3]!;
    // Data segments the outer level may not use become null (SDM: "RETURN-TO-OUTER-PRIVILEGE-LEVEL").
    for (const n of ['ds', 'es', 'fs', 'gs'] as const) {
      const s = sregs[n];
      const conformingCode = (s.type & 0xc) === 0xc;
      if (s.s && !conformingCode && s.dpl < rpl) seg[n] = { ...s, selector: 0, unusable: 1, present: 0 };
    }
  }
  let writable = CPL0_WRITABLE;
  if (cpl > 0) writable &= ~IOPL;
  if (cpl > Number((regs.rflags & IOPL) >> 12n)) writable &= ~IF;
  if (width === 2) writable &= 0xffffn;
  out.rip = BigInt(eip);
  out.rflags = ((regs.rflags & ~writable) | (BigInt(flags) & writable) | 2n) & 0xffff_ffffn;
  return { kind: 'done', regs: out, sregs: seg };
}

/** The GDT descriptor for `selector`, or why it cannot be read. */
function descriptor(mem: GuestMemory, sregs: Sregs, selector: number): Segment | string {
  if (selector & 4) return `iret to an LDT selector (0x${selector.toString(16)})`;
  const index = selector & ~7;
  if (index + 7 > sregs.gdt.limit) return `selector 0x${selector.toString(16)} is beyond the GDT limit`;
  // Descriptor-table reads are supervisor accesses whatever the CPL (SDM Vol. 3 4.6).
  const r = readVirtual(mem, sregs, 0, sregs.gdt.base + BigInt(index), 8);
  if ('fault' in r) return `the GDT entry for 0x${selector.toString(16)} is not readable`;
  return segmentFromDescriptor(selector, r.bytes);
}
