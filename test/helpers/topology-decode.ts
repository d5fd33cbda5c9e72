/**
 * Reads a CPU's place in the topology back out of CPUID the way Linux 6.12
 * does (arch/x86/kernel/cpu/topology_common.c, topology_ext.c,
 * topology_amd.c; LLC IDs from cacheinfo.c), so tests can check that what
 * nodevisor writes means what it intends on Intel and on AMD guests.
 */
import type { CpuidEntry } from '../../src/kvm/structs.js';

export interface Regs {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}
export type CpuidFn = (leaf: number, subleaf: number) => Regs;

export interface DecodedTopology {
  vendor: string;
  /** Which leaves set the shifts: '0x1f', '0xb', 'legacy' (1 + 4) or '0x80000008'. */
  source: string;
  apicId: number;
  smtShift: number;
  /** APIC ID bits below the package number. */
  packageShift: number;
  packageId: number;
  coreId: number;
  threadId: number;
  /** APIC ID bits that the last-level cache's sharers differ in. */
  llcShift: number;
  /** APIC ID bits that the L1 data cache's sharers differ in. */
  l1Shift: number;
}

const countOrder = (n: number): number => (n <= 1 ? 0 : 32 - Math.clz32(n - 1));

/** What the guest's CPUID instruction returns for a KVM_SET_CPUID2 table (KVM's kvm_cpuid(), without the max-leaf redirection). */
export function cpuidFromTable(table: readonly CpuidEntry[]): CpuidFn {
  return (leaf, subleaf) => {
    const e = table.find((x) => x.function === leaf && (x.index === subleaf || !(x.flags & 1)));
    if (e) return { eax: e.eax >>> 0, ebx: e.ebx >>> 0, ecx: e.ecx >>> 0, edx: e.edx >>> 0 };
    // KVM: for 0BH/1FH, CL and the x2APIC ID pass through when subleaf 1 exists.
    const one = leaf === 0xb || leaf === 0x1f ? table.find((x) => x.function === leaf && x.index === 1) : undefined;
    return one ? { eax: 0, ebx: 0, ecx: subleaf & 0xff, edx: one.edx >>> 0 } : { eax: 0, ebx: 0, ecx: 0, edx: 0 };
  };
}

function vendorOf(cpuid: CpuidFn): string {
  const l0 = cpuid(0, 0);
  const b = Buffer.alloc(12);
  b.writeUInt32LE(l0.ebx, 0);
  b.writeUInt32LE(l0.edx, 4);
  b.writeUInt32LE(l0.ecx, 8);
  return b.toString('latin1');
}

/** Linux's parse_topology_leaf(): SMT and core-level shifts from 0BH/1FH, or null if subleaf 0 is invalid. */
function extLeaf(cpuid: CpuidFn, leaf: number): { smt: number; core: number; apicId: number } | null {
  let smt: number | null = null;
  let core: number | null = null;
  let apicId = 0;
  for (let sub = 0; ; sub++) {
    const r = cpuid(leaf, sub);
    const type = (r.ecx >>> 8) & 0xff;
    if ((r.ebx & 0xffff) === 0 || type === 0) break;
    if (sub === 0) apicId = r.edx;
    const shift = r.eax & 0x1f;
    // Unknown types above the core level only move the package further up.
    if (type === 1) smt = core = shift;
    else core = shift;
  }
  return smt === null ? null : { smt, core: core!, apicId };
}

/** The APIC ID shift of the highest-level cache in leaf 4 or 8000001DH, and of L1 data. */
function cacheShifts(cpuid: CpuidFn, leaf: number): { llc: number; l1: number } {
  let llc = 0;
  let l1 = 0;
  let best = 0;
  for (let sub = 0; sub < 16; sub++) {
    const eax = cpuid(leaf, sub).eax;
    const type = eax & 0x1f;
    if (type === 0) break;
    const level = (eax >>> 5) & 7;
    const shift = countOrder(((eax >>> 14) & 0xfff) + 1);
    if (level === 1 && type === 1) l1 = shift;
    if (level >= best) {
      best = level;
      llc = shift;
    }
  }
  return { llc, l1 };
}

export function decodeTopology(cpuid: CpuidFn): DecodedTopology {
  const vendor = vendorOf(cpuid);
  const amd = vendor === 'AuthenticAMD' || vendor === 'HygonGenuine';
  const maxBasic = cpuid(0, 0).eax;
  const maxExt = cpuid(0x80000000, 0).eax;
  const l1 = cpuid(1, 0);
  let apicId = l1.ebx >>> 24;
  let smt = 0;
  let core = 0;
  let source = '';
  const ext = (maxBasic >= 0x1f ? extLeaf(cpuid, 0x1f) : null) ?? (maxBasic >= 0xb ? extLeaf(cpuid, 0xb) : null);
  if (ext) {
    ({ smt, core, apicId } = ext);
    source = maxBasic >= 0x1f && extLeaf(cpuid, 0x1f) ? '0x1f' : '0xb';
  } else if (!amd) {
    // parse_legacy(): cores from leaf 4, threads from leaf 1's count when HTT.
    const cores = maxBasic >= 4 && (cpuid(4, 0).eax & 0x1f) !== 0 ? (cpuid(4, 0).eax >>> 26) + 1 : 1;
    core = countOrder(cores);
    if (l1.edx & (1 << 28)) {
      smt = countOrder((l1.ebx >>> 16) & 0xff) - core;
      core += smt;
    }
    source = 'legacy';
  }
  if (amd) {
    if (!ext && maxExt >= 0x80000008) {
      const ecx = cpuid(0x80000008, 0).ecx;
      core = (ecx >>> 12) & 0xf || countOrder((ecx & 0xff) + 1);
      smt = 0;
      source = '0x80000008';
    }
    const topoext = (cpuid(0x80000001, 0).ecx & (1 << 22)) !== 0;
    if (topoext && !ext) {
      const r = cpuid(0x8000001e, 0);
      apicId = r.eax;
      smt = countOrder(((r.ebx >>> 8) & 0xff) + 1);
    }
  }
  const caches = amd ? cacheShifts(cpuid, 0x8000001d) : cacheShifts(cpuid, 4);
  return {
    vendor,
    source,
    apicId,
    smtShift: smt,
    packageShift: core,
    packageId: Math.floor(apicId / 2 ** core),
    coreId: (apicId % 2 ** core) >>> smt,
    threadId: apicId % 2 ** smt,
    llcShift: caches.llc,
    l1Shift: caches.l1,
  };
}
