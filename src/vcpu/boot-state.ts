import type { GuestMemory } from '../memory/guest-memory.js';
import type { Regs, Segment, Sregs } from '../kvm/structs.js';
import { REG_NAMES } from '../kvm/structs.js';
import { Cr0, Cr4, Efer } from '../kvm/x86-bits.js';

/**
 * Initial CPU state for guests the VMM loads directly: real mode, 32-bit
 * protected mode (flat segments) or 64-bit long mode (identity-mapped first
 * 4 GiB). The GDT and page tables live in a small VMM-owned area of low RAM
 * that guests loaded this way must leave alone.
 */
export type EntryMode = 'real' | 'protected' | 'long';

export const BOOT_GDT = 0x500;
export const BOOT_PML4 = 0x1000;
export const BOOT_PDPT = 0x2000;
export const BOOT_PD = 0x3000; // four page directories: 0x3000-0x6fff
/** First byte after the VMM-owned boot area. */
export const BOOT_AREA_END = 0x7000;

export const SEL_CODE64 = 0x08;
export const SEL_DATA = 0x10;
export const SEL_CODE32 = 0x18;

/**
 * Linux's boot protocol names its own selectors: __BOOT_CS 0x10 and
 * __BOOT_DS 0x18 (boot.rst, 32- and 64-bit boot protocols). Two small GDTs
 * after ours give a Linux entry exactly that: one with a 64-bit code
 * segment, one with a 32-bit one.
 */
export const LINUX_GDT64 = 0x520;
export const LINUX_GDT32 = 0x540;
export const LINUX_BOOT_CS = 0x10;
export const LINUX_BOOT_DS = 0x18;


/** GDT descriptor: flags nibble (G, D/B, L, AVL) and access byte. */
function descriptor(access: number, flags: number): bigint {
  const limit = 0xfffff;
  return (
    BigInt(limit & 0xffff) |
    (BigInt(access) << 40n) |
    (BigInt((limit >> 16) & 0xf) << 48n) |
    (BigInt(flags) << 52n)
  );
}

/** Writes the boot GDT and identity page tables into guest RAM. */
export function writeBootTables(mem: GuestMemory): void {
  mem.writeU64(BOOT_GDT, 0n);
  mem.writeU64(BOOT_GDT + SEL_CODE64, descriptor(0x9b, 0xa)); // present, code, exec/read, accessed; G, L
  mem.writeU64(BOOT_GDT + SEL_DATA, descriptor(0x93, 0xc)); // present, data, read/write, accessed; G, D
  mem.writeU64(BOOT_GDT + SEL_CODE32, descriptor(0x9b, 0xc)); // G, D
  for (const [gdt, codeFlags] of [[LINUX_GDT64, 0xa], [LINUX_GDT32, 0xc]] as const) {
    mem.writeU64(gdt, 0n);
    mem.writeU64(gdt + 8, 0n);
    mem.writeU64(gdt + LINUX_BOOT_CS, descriptor(0x9b, codeFlags));
    mem.writeU64(gdt + LINUX_BOOT_DS, descriptor(0x93, 0xc));
  }
  // Identity map 0-4 GiB with 2 MiB pages, user-accessible so that ring-3
  // payloads of our own guests can run on the same tables.
  mem.fill(BOOT_PML4, BOOT_AREA_END - BOOT_PML4);
  mem.writeU64(BOOT_PML4, BigInt(BOOT_PDPT) | 7n);
  for (let i = 0; i < 4; i++) {
    const pd = BOOT_PD + i * 0x1000;
    mem.writeU64(BOOT_PDPT + i * 8, BigInt(pd) | 7n);
    for (let j = 0; j < 512; j++) {
      mem.writeU64(pd + j * 8, (BigInt(i) << 30n) | (BigInt(j) << 21n) | 0x87n);
    }
  }
}

function segment(selector: number, type: number, bits: 16 | 32 | 64): Segment {
  const flat = bits !== 16;
  return {
    base: flat ? 0n : BigInt(selector << 4),
    limit: flat ? 0xffffffff : 0xffff,
    selector,
    type,
    present: 1,
    dpl: 0,
    db: bits === 32 || (bits === 64 && type < 8) ? 1 : 0,
    s: 1,
    l: bits === 64 && type >= 8 ? 1 : 0,
    g: flat ? 1 : 0,
    avl: 0,
    unusable: 0,
  };
}

/**
 * Adjusts `sregs` (as read from a fresh vCPU) for `mode`. `linux` selects the
 * Linux boot protocol's GDT and selectors instead of ours (protected/long).
 */
export function bootSregs(base: Sregs, mode: EntryMode, realSegment = 0, linux = false): Sregs {
  const s: Sregs = { ...base };
  if (mode === 'real') {
    s.cs = segment(realSegment, 0xb, 16);
    for (const n of ['ds', 'es', 'fs', 'gs', 'ss'] as const) s[n] = segment(0, 0x3, 16);
    s.cr0 = 0x60000010n;
    s.cr3 = 0n;
    s.cr4 = 0n;
    s.efer = 0n;
    s.gdt = { base: 0n, limit: 0xffff };
    s.idt = { base: 0n, limit: 0xffff };
    return s;
  }
  s.gdt = { base: BigInt(linux ? (mode === 'long' ? LINUX_GDT64 : LINUX_GDT32) : BOOT_GDT), limit: 4 * 8 - 1 };
  s.idt = { base: 0n, limit: 0 };
  const bits = mode === 'long' ? 64 : 32;
  const code = linux ? LINUX_BOOT_CS : mode === 'long' ? SEL_CODE64 : SEL_CODE32;
  s.cs = segment(code, 0xb, bits);
  for (const n of ['ds', 'es', 'fs', 'gs', 'ss'] as const) s[n] = segment(linux ? LINUX_BOOT_DS : SEL_DATA, 0x3, bits);
  s.tr = { ...s.tr, type: 0xb, present: 1, s: 0, unusable: 0, limit: s.tr.limit || 0x67 };
  if (mode === 'long') {
    s.cr3 = BigInt(BOOT_PML4);
    s.cr4 = Cr4.PAE;
    s.cr0 = Cr0.PE | Cr0.MP | Cr0.ET | Cr0.NE | Cr0.WP | Cr0.PG;
    s.efer = Efer.LME | Efer.LMA;
  } else {
    s.cr0 = Cr0.PE | Cr0.ET;
    s.cr4 = 0n;
    s.efer = 0n;
  }
  return s;
}

/**
 * General registers at entry. Every vCPU gets its index in RDI/EDI/DI and the
 * vCPU count in RSI, so one image can serve all of them.
 */
export function bootRegs(mode: EntryMode, entry: number, vcpu: number, count: number): Regs {
  const r = Object.fromEntries(REG_NAMES.map((n) => [n, 0n])) as Regs;
  r.rflags = 2n;
  r.rip = BigInt(mode === 'real' ? entry & 0xf : entry);
  r.rdi = BigInt(vcpu);
  r.rsi = BigInt(count);
  return r;
}
