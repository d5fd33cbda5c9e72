/**
 * A vCPU's architectural state as KVM holds it, for snapshots: general and
 * special registers (by name), the FPU/XSAVE area and XCRs, every MSR KVM
 * can save, the debug registers, pending events, the MP state and, where
 * the LAPIC is KVM's, the LAPIC. Kernel structs are kept whole (base64):
 * their layout is the kernel's ABI, checked against the struct size on load.
 *
 * Restore order follows what KVM needs (and what QEMU does): registers,
 * XSAVE, XCRs, special registers, MSRs, MP state, LAPIC, events, debug
 * registers - e.g. events last, so an injected interrupt is not lost to a
 * later register write, the LAPIC after the APIC base MSR, and the
 * TSC-deadline MSR once more after the LAPIC.
 */
import type { KvmVcpu, RawStruct } from '../kvm/vcpu-fd.js';
import { REG_NAMES, SEGMENT_NAMES, type Regs, type Segment, type Sregs } from '../kvm/structs.js';

export interface VcpuArchState {
  regs: Record<string, string>;
  sregs: SavedSregs;
  /** kvm_xsave where KVM has it (KVM_CAP_XSAVE), else kvm_fpu. */
  xsave?: string;
  fpu?: string;
  xcrs?: string;
  debugregs?: string;
  events: string;
  mpState: number;
  /** KVM's LAPIC (split and kernel irqchip modes). */
  lapic?: string;
  /** [index, value as hex] of every MSR KVM would read. */
  msrs: [number, string][];
}

/** A segment register as JSON: the base as hex, the rest as KVM gives it. */
type SavedSegment = Omit<Segment, 'base'> & { base: string };

type SavedSregs = Record<string, SavedSegment | { base: string; limit: number } | string | string[]>;

export interface ArchStateOptions {
  /** MSR indices to save (KVM_GET_MSR_INDEX_LIST). */
  msrIndices: readonly number[];
  /** Save KVM's LAPIC (split/kernel modes). */
  lapic: boolean;
  xsave: boolean;
  xcrs: boolean;
  debugregs: boolean;
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;
const MSR_IA32_TSC_DEADLINE = 0x6e0;
const b64 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const DTABLES = ['gdt', 'idt'] as const;
const CONTROL = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apic_base'] as const;

export class ArchStateError extends Error {}

function saveSregs(s: Sregs): SavedSregs {
  const out: SavedSregs = {};
  for (const n of SEGMENT_NAMES) out[n] = { ...s[n], base: hex(s[n].base) };
  for (const n of DTABLES) out[n] = { base: hex(s[n].base), limit: s[n].limit };
  for (const n of CONTROL) out[n] = hex(s[n]);
  out.interrupt_bitmap = s.interrupt_bitmap.map(hex);
  return out;
}

function loadSregs(saved: SavedSregs): Sregs {
  const big = (v: unknown, what: string): bigint => {
    if (typeof v !== 'string' || !/^0x[0-9a-f]+$/i.test(v)) throw new ArchStateError(`sregs.${what} is not a hex value`);
    return BigInt(v);
  };
  const s = {} as Record<string, unknown>;
  for (const n of SEGMENT_NAMES) {
    const seg = saved[n] as SavedSegment | undefined;
    if (!seg || typeof seg !== 'object') throw new ArchStateError(`sregs.${n} is missing`);
    s[n] = { ...seg, base: big(seg.base, `${n}.base`) };
  }
  for (const n of DTABLES) {
    const t = saved[n] as { base: string; limit: number } | undefined;
    if (!t || typeof t !== 'object') throw new ArchStateError(`sregs.${n} is missing`);
    s[n] = { base: big(t.base, `${n}.base`), limit: t.limit };
  }
  for (const n of CONTROL) s[n] = big(saved[n], n);
  const bitmap = saved.interrupt_bitmap;
  if (!Array.isArray(bitmap) || bitmap.length !== 4) throw new ArchStateError('sregs.interrupt_bitmap is not 4 words');
  s.interrupt_bitmap = bitmap.map((w, i) => big(w, `interrupt_bitmap[${i}]`));
  return s as unknown as Sregs;
}

/**
 * Every MSR of `indices` that KVM reads for this vCPU. KVM_GET_MSRS stops at
 * the first MSR it refuses; those are skipped (they depend on CPU features
 * this vCPU lacks).
 */
function readMsrs(vcpu: KvmVcpu, indices: readonly number[]): [number, bigint][] {
  const out: [number, bigint][] = [];
  let rest = [...indices];
  while (rest.length) {
    const got = vcpu.getMsrs(rest);
    out.push(...got);
    rest = rest.slice(got.length + 1);
  }
  return out;
}

/** Reads the state of a vCPU that is outside KVM_RUN (paused). */
export function saveArchState(vcpu: KvmVcpu, o: ArchStateOptions): VcpuArchState {
  const regs = vcpu.getRegs();
  const raw = (s: RawStruct): string => b64(vcpu.getRaw(s));
  const state: VcpuArchState = {
    regs: Object.fromEntries(REG_NAMES.map((n) => [n, hex(regs[n])])),
    sregs: saveSregs(vcpu.getSregs()),
    events: raw('kvm_vcpu_events'),
    mpState: vcpu.getMpState(),
    msrs: readMsrs(vcpu, o.msrIndices).map(([i, v]) => [i, hex(v)]),
  };
  if (o.xsave) state.xsave = raw('kvm_xsave');
  else state.fpu = raw('kvm_fpu');
  if (o.xcrs) state.xcrs = raw('kvm_xcrs');
  if (o.debugregs) state.debugregs = raw('kvm_debugregs');
  if (o.lapic) state.lapic = raw('kvm_lapic_state');
  return state;
}

/**
 * Writes a saved state into a fresh vCPU (before its first KVM_RUN). MSRs
 * KVM refuses here are returned, not fatal: the caller decides (a host
 * without a feature the guest saw was refused earlier, from CPUID).
 */
export function loadArchState(vcpu: KvmVcpu, s: VcpuArchState): number[] {
  const regs = {} as Regs;
  for (const n of REG_NAMES) {
    const v = s.regs[n];
    if (typeof v !== 'string' || !/^0x[0-9a-f]+$/i.test(v)) throw new ArchStateError(`regs.${n} is not a hex value`);
    regs[n] = BigInt(v);
  }
  vcpu.setRegs(regs);
  if (s.xsave !== undefined) vcpu.setRaw('kvm_xsave', unb64(s.xsave));
  else if (s.fpu !== undefined) vcpu.setRaw('kvm_fpu', unb64(s.fpu));
  if (s.xcrs !== undefined) vcpu.setRaw('kvm_xcrs', unb64(s.xcrs));
  vcpu.setSregs(loadSregs(s.sregs));
  const refused: number[] = [];
  let rest = s.msrs.map(([i, v]) => [i, BigInt(v)] as const);
  while (rest.length) {
    const n = vcpu.setMsrs(rest);
    if (n >= rest.length) break;
    // KVM refuses writes to MSRs of features the guest's CPUID lacks, even
    // of the value they already hold: only a value that differs is lost.
    const [index, value] = rest[n]!;
    const now = vcpu.getMsrs([index]);
    if (now.length !== 1 || now[0]![1] !== value) refused.push(index);
    rest = rest.slice(n + 1);
  }
  vcpu.setMpState(s.mpState);
  if (s.lapic !== undefined) {
    vcpu.setRaw('kvm_lapic_state', unb64(s.lapic));
    // Loading KVM's LAPIC disarms its timer; a TSC-deadline timer is armed
    // again only by writing its MSR after it.
    const deadline = s.msrs.find(([i]) => i === MSR_IA32_TSC_DEADLINE);
    if (deadline) vcpu.setMsrs([[MSR_IA32_TSC_DEADLINE, BigInt(deadline[1])]]);
  }
  vcpu.setRaw('kvm_vcpu_events', unb64(s.events));
  if (s.debugregs !== undefined) vcpu.setRaw('kvm_debugregs', unb64(s.debugregs));
  return refused;
}
