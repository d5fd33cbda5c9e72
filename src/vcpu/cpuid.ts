import type { CpuidEntry } from '../kvm/structs.js';
import type { CpuLayout } from './topology.js';

export type IrqchipMode = 'user' | 'split' | 'kernel';

export interface CpuidPolicy {
  vcpu: number;
  /** The VM's topology and APIC IDs; this vCPU's ID is `layout.apicId(vcpu)`. */
  layout: CpuLayout;
  /** Our LAPIC model serves this vCPU (irqchip `user`): CPUID offers only what it implements. */
  userLapic: boolean;
  /** The host is a software-virtualising KVM (see host-kvm notes). */
  softwareVirt: boolean;
  /** Our LAPIC can take x2APIC MSR accesses (userspace MSR exits work). */
  x2apic: boolean;
  /** Our LAPIC can run the TSC-deadline timer (it has a guest TSC source). */
  tscDeadline?: boolean;
  /** Our LAPIC offers paravirtual EOI (the guest's MSR_KVM_PV_EOI_EN writes reach it). */
  pvEoi?: boolean;
}

const LEAF1_ECX_CX16 = 1 << 13;
const LEAF1_ECX_X2APIC = 1 << 21;
const LEAF1_ECX_TSC_DEADLINE = 1 << 24;
const LEAF1_ECX_HYPERVISOR = 1 << 31;
const LEAF1_EDX_HTT = 1 << 28;

const KVM_FEATURE_PV_EOI = 1 << 6;
const KVM_FEATURE_PV_UNHALT = 1 << 7;
const KVM_FEATURE_PV_SEND_IPI = 1 << 11;
const KVM_FEATURE_PV_SCHED_YIELD = 1 << 13;
const KVM_FEATURE_ASYNC_PF_INT = 1 << 14;
const KVM_FEATURE_ASYNC_PF = 1 << 4;

/** kvm_cpuid_entry2.flags: the entry applies to one ECX index only. */
const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;

/** Extended topology enumeration leaves (Intel 0BH and its V2, 1FH), same format. */
const EXT_TOPOLOGY_LEAVES = new Set([0xb, 0x1f]);
const LEVEL_SMT = 1;
const LEVEL_CORE = 2;

/**
 * The CPUID table one vCPU sees: KVM's supported leaves, with this vCPU's
 * APIC ID and the VM's topology, and with features hidden that the
 * configuration cannot honour.
 *
 * Topology (see topology.ts for the APIC ID layout). KVM hands the VMM no
 * usable topology - leaves 0BH/1FH come with subleaf 0 only and zeroed,
 * 8000001EH zeroed, 80000008H.ECX with the host's core count - so every
 * leaf a guest derives topology from is written here, consistently:
 * - 1: the initial APIC ID; HTT and the addressable IDs per package;
 * - 4 (Intel) and 8000001DH (AMD): which logical processors share each
 *   cache - L1 and L2 the threads of a core, L3 and beyond the package -
 *   and (leaf 4) the addressable core IDs per package;
 * - 0BH/1FH: an SMT level and a core level, whatever subleaves KVM gave;
 * - AMD/Hygon only: 80000008H.ECX (threads per package, APIC ID bits per
 *   package) and 8000001EH (extended APIC ID, core, threads per core, node).
 * Linux 6.x reads 1FH or 0BH first on Intel and 0BH, then 80000008H and
 * 8000001EH on AMD; older kernels and other guests the legacy leaves.
 */
export function vcpuCpuid(supported: readonly CpuidEntry[], p: CpuidPolicy): CpuidEntry[] {
  const amd = isAmdLike(supported);
  const out: CpuidEntry[] = [];
  for (const src of supported) {
    if (EXT_TOPOLOGY_LEAVES.has(src.function)) {
      // All subleaves are ours: emit them where the leaf's first entry was.
      if (!out.some((e) => e.function === src.function)) out.push(...extendedTopology(src, p));
      continue;
    }
    out.push(adjust({ ...src }, p, amd));
  }
  return out;
}

function adjust(e: CpuidEntry, p: CpuidPolicy, amd: boolean): CpuidEntry {
  const { layout } = p;
  const apicId = layout.apicId(p.vcpu);
  switch (e.function) {
    case 1: {
      // Addressable logical IDs per package: a power of two, so that its
      // log2 is the package shift (Linux's legacy parser relies on it).
      const perPackage = Math.min(2 ** layout.packageShift, 255);
      e.ebx = (e.ebx & 0x0000ffff) | (perPackage << 16) | ((apicId & 0xff) << 24);
      e.edx = layout.packageShift > 0 ? e.edx | LEAF1_EDX_HTT : e.edx & ~LEAF1_EDX_HTT;
      e.ecx |= LEAF1_ECX_HYPERVISOR;
      // Our userspace LAPIC can only offer x2APIC and the TSC-deadline
      // timer where MSR writes and reads both reach the VMM, and the
      // deadline timer also needs the guest's TSC.
      if (p.userLapic && !p.x2apic) e.ecx &= ~(LEAF1_ECX_X2APIC | LEAF1_ECX_TSC_DEADLINE);
      if (p.userLapic && !p.tscDeadline) e.ecx &= ~LEAF1_ECX_TSC_DEADLINE;
      // cmpxchg16b is an emulation failure in ring 0 on software-virtualising hosts.
      if (p.softwareVirt) e.ecx &= ~LEAF1_ECX_CX16;
      break;
    }
    case 4:
      // EAX[31:26]: addressable core IDs per package - 1 (6 bits).
      if (cacheType(e) !== 0) e.eax = (cacheSharing(e, layout) & 0x03ffffff) | (Math.min(2 ** layout.coreBits - 1, 63) << 26);
      break;
    case 0x8000001d:
      if (cacheType(e) !== 0) e.eax = cacheSharing(e, layout);
      break;
    case 0x80000008:
      // AMD: ECX[15:12] APIC ID bits per package, ECX[7:0] threads per
      // package - 1. Reserved on Intel.
      if (amd) e.ecx = (e.ecx & ~0xf0ff) | (Math.min(layout.packageShift, 15) << 12) | (Math.min(layout.threadsPerPackage, 256) - 1);
      break;
    case 0x8000001e: {
      // AMD: EAX extended APIC ID; EBX[15:8] threads per core - 1, EBX[7:0]
      // core ID; ECX[10:8] nodes per package - 1 (one), ECX[7:0] node ID:
      // one node per socket.
      if (!amd) break;
      const at = layout.position(p.vcpu);
      e.eax = apicId;
      e.ebx = (e.ebx & ~0xffff) | ((Math.min(layout.topology.threads, 256) - 1) << 8) | (at.core & 0xff);
      e.ecx = (e.ecx & ~0x7ff) | (at.socket & 0xff);
      e.edx = 0;
      break;
    }
    case 0x40000001: {
      let hide = 0;
      if (p.userLapic) hide |= KVM_FEATURE_PV_UNHALT | KVM_FEATURE_PV_SEND_IPI | KVM_FEATURE_ASYNC_PF_INT | KVM_FEATURE_ASYNC_PF;
      // Ours where its MSR reaches us; KVM's own PV EOI needs KVM's LAPIC.
      if (p.userLapic) e.eax = p.pvEoi ? e.eax | KVM_FEATURE_PV_EOI : e.eax & ~KVM_FEATURE_PV_EOI;
      // vmcall never completes in ring 0 on software-virtualising hosts.
      if (p.softwareVirt) hide |= KVM_FEATURE_PV_UNHALT | KVM_FEATURE_PV_SEND_IPI | KVM_FEATURE_PV_SCHED_YIELD;
      e.eax &= ~hide;
      break;
    }
  }
  return e;
}

/** "AuthenticAMD" or "HygonGenuine" in leaf 0: the vendors whose guests read AMD's topology leaves. */
function isAmdLike(supported: readonly CpuidEntry[]): boolean {
  const l0 = supported.find((e) => e.function === 0 && e.index === 0);
  if (!l0) return false;
  const vendor = Buffer.alloc(12);
  vendor.writeUInt32LE(l0.ebx >>> 0, 0);
  vendor.writeUInt32LE(l0.edx >>> 0, 4);
  vendor.writeUInt32LE(l0.ecx >>> 0, 8);
  const name = vendor.toString('latin1');
  return name === 'AuthenticAMD' || name === 'HygonGenuine';
}

/** Leaf 4 / 8000001DH EAX[4:0]: 0 means no cache (the end of the list). */
const cacheType = (e: CpuidEntry): number => e.eax & 0x1f;

/**
 * EAX with bits 25:14 - addressable IDs of the logical processors sharing
 * this cache, minus 1 - set for our topology: levels 1 and 2 (EAX[7:5])
 * belong to a core, higher levels to the package. Powers of two, so that
 * the guest's shift of the APIC ID lands on a core or package boundary.
 */
function cacheSharing(e: CpuidEntry, layout: CpuLayout): number {
  const level = (e.eax >>> 5) & 7;
  const bits = level <= 2 ? layout.threadBits : layout.packageShift;
  return (e.eax & ~(0xfff << 14)) | ((Math.min(2 ** bits, 4096) - 1) << 14);
}

/**
 * Leaf 0BH/1FH for this vCPU, from the supported entry `src`: subleaf 0
 * the SMT level (threads of a core), subleaf 1 the core level (the
 * package's logical processors), subleaf 2 the invalid level that ends the
 * list. EAX is the APIC ID shift to the next level's ID, EBX the logical
 * processors at the level, ECX the level number and type, EDX the x2APIC ID.
 */
function extendedTopology(src: CpuidEntry, p: CpuidPolicy): CpuidEntry[] {
  const { layout } = p;
  const apicId = layout.apicId(p.vcpu);
  const flags = src.flags | KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
  const sub = (index: number, eax: number, ebx: number, type: number): CpuidEntry => ({ function: src.function, index, flags, eax, ebx, ecx: (type << 8) | index, edx: apicId });
  return [
    sub(0, layout.threadBits, layout.topology.threads, LEVEL_SMT),
    sub(1, layout.packageShift, Math.min(layout.threadsPerPackage, 0xffff), LEVEL_CORE),
    sub(2, 0, 0, 0),
  ];
}
