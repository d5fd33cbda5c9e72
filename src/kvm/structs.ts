import { layoutOf, off } from './addon.js';

/** General-purpose registers (struct kvm_regs), in the kernel's order. */
export const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
export type RegName = (typeof REG_NAMES)[number];
export type Regs = Record<RegName, bigint>;

export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  type: number;
  present: number;
  dpl: number;
  db: number;
  s: number;
  l: number;
  g: number;
  avl: number;
  unusable: number;
}

export interface DTable {
  base: bigint;
  limit: number;
}

export const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export type SegmentName = (typeof SEGMENT_NAMES)[number];

export type Sregs = Record<SegmentName, Segment> & {
  gdt: DTable;
  idt: DTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apic_base: bigint;
  interrupt_bitmap: [bigint, bigint, bigint, bigint];
};

export const REGS_SIZE = layoutOf('kvm_regs').size;
export const SREGS_SIZE = layoutOf('kvm_sregs').size;

export function decodeRegs(view: DataView, base = 0): Regs {
  const r = {} as Regs;
  REG_NAMES.forEach((n, i) => (r[n] = view.getBigUint64(base + i * 8, true)));
  return r;
}

export function encodeRegs(view: DataView, regs: Regs, base = 0): void {
  REG_NAMES.forEach((n, i) => view.setBigUint64(base + i * 8, BigInt.asUintN(64, regs[n]), true));
}

const SEG = layoutOf('kvm_segment');
const SEG_BYTES = ['type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const;

function decodeSegment(v: DataView, at: number): Segment {
  const s: Segment = {
    base: v.getBigUint64(at + SEG.base!, true),
    limit: v.getUint32(at + SEG.limit!, true),
    selector: v.getUint16(at + SEG.selector!, true),
  } as Segment;
  for (const f of SEG_BYTES) s[f] = v.getUint8(at + SEG[f]!);
  return s;
}

function encodeSegment(v: DataView, at: number, s: Segment): void {
  v.setBigUint64(at + SEG.base!, s.base, true);
  v.setUint32(at + SEG.limit!, s.limit >>> 0, true);
  v.setUint16(at + SEG.selector!, s.selector, true);
  for (const f of SEG_BYTES) v.setUint8(at + SEG[f]!, s[f]);
}

const SR = layoutOf('kvm_sregs');
const DT = layoutOf('kvm_dtable');
const CRS = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apic_base'] as const;

export function decodeSregs(v: DataView, base = 0): Sregs {
  const s = {} as Sregs;
  for (const n of SEGMENT_NAMES) s[n] = decodeSegment(v, base + SR[n]!);
  for (const n of ['gdt', 'idt'] as const) {
    s[n] = { base: v.getBigUint64(base + SR[n]! + DT.base!, true), limit: v.getUint16(base + SR[n]! + DT.limit!, true) };
  }
  for (const n of CRS) s[n] = v.getBigUint64(base + SR[n]!, true);
  const ib = base + SR.interrupt_bitmap!;
  s.interrupt_bitmap = [0, 1, 2, 3].map((i) => v.getBigUint64(ib + i * 8, true)) as Sregs['interrupt_bitmap'];
  return s;
}

export function encodeSregs(v: DataView, s: Sregs, base = 0): void {
  for (const n of SEGMENT_NAMES) encodeSegment(v, base + SR[n]!, s[n]);
  for (const n of ['gdt', 'idt'] as const) {
    v.setBigUint64(base + SR[n]! + DT.base!, s[n].base, true);
    v.setUint16(base + SR[n]! + DT.limit!, s[n].limit, true);
  }
  for (const n of CRS) v.setBigUint64(base + SR[n]!, BigInt.asUintN(64, s[n]), true);
  const ib = base + SR.interrupt_bitmap!;
  s.interrupt_bitmap.forEach((w, i) => v.setBigUint64(ib + i * 8, w, true));
}

/** One CPUID leaf as KVM_GET_SUPPORTED_CPUID / KVM_SET_CPUID2 carry it. */
export interface CpuidEntry {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

const CPUID2 = layoutOf('kvm_cpuid2');
const CPUID_ENTRY = layoutOf('kvm_cpuid_entry2');
const CPUID_FIELDS = ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const;

export function cpuidBuffer(capacity: number): Uint8Array {
  const b = new Uint8Array(CPUID2.size + capacity * CPUID_ENTRY.size);
  new DataView(b.buffer).setUint32(CPUID2.nent!, capacity, true);
  return b;
}

export function decodeCpuid(b: Uint8Array): CpuidEntry[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint32(CPUID2.nent!, true);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = CPUID2.entries! + i * CPUID_ENTRY.size;
    const e = {} as CpuidEntry;
    for (const f of CPUID_FIELDS) e[f] = v.getUint32(at + CPUID_ENTRY[f]!, true);
    out.push(e);
  }
  return out;
}

export function encodeCpuid(entries: readonly CpuidEntry[]): Uint8Array {
  const b = cpuidBuffer(entries.length);
  const v = new DataView(b.buffer);
  entries.forEach((e, i) => {
    const at = CPUID2.entries! + i * CPUID_ENTRY.size;
    for (const f of CPUID_FIELDS) v.setUint32(at + CPUID_ENTRY[f]!, e[f] >>> 0, true);
  });
  return b;
}

/** Builds a struct kvm_msrs for `entries` (index -> value). */
export function encodeMsrs(entries: ReadonlyArray<readonly [number, bigint]>): Uint8Array {
  const hdr = layoutOf('kvm_msrs');
  const ent = layoutOf('kvm_msr_entry');
  const b = new Uint8Array(hdr.size + entries.length * ent.size);
  const v = new DataView(b.buffer);
  v.setUint32(hdr.nmsrs!, entries.length, true);
  entries.forEach(([index, data], i) => {
    const at = hdr.entries! + i * ent.size;
    v.setUint32(at + ent.index!, index, true);
    v.setBigUint64(at + ent.data!, BigInt.asUintN(64, data), true);
  });
  return b;
}

export function decodeMsrs(b: Uint8Array, count: number): Array<[number, bigint]> {
  const hdr = layoutOf('kvm_msrs');
  const ent = layoutOf('kvm_msr_entry');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Array<[number, bigint]> = [];
  for (let i = 0; i < count; i++) {
    const at = hdr.entries! + i * ent.size;
    out.push([v.getUint32(at + ent.index!, true), v.getBigUint64(at + ent.data!, true)]);
  }
  return out;
}

/** Offset of a field in struct kvm_vcpu_events. */
export const eventsOff = (field: string): number => off('kvm_vcpu_events', field);
