import type { CpuidEntry } from '../kvm/structs.js';

export type IrqchipMode = 'user' | 'split' | 'kernel';

export interface CpuidPolicy {
  vcpu: number;
  apicId: number;
  vcpus: number;
  irqchip: IrqchipMode;
  /** The host is a software-virtualising KVM (see host-kvm notes). */
  softwareVirt: boolean;
  /** Our LAPIC can take x2APIC MSR accesses (userspace MSR exits work). */
  x2apic: boolean;
  /** Our LAPIC can run the TSC-deadline timer (it has a guest TSC source). */
  tscDeadline?: boolean;
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

const bitsFor = (n: number): number => (n <= 1 ? 0 : 32 - Math.clz32(n - 1));

/**
 * The CPUID table one vCPU sees: KVM's supported leaves, with this vCPU's
 * APIC ID and the VM's topology (all vCPUs are cores of one package), and
 * with features hidden that the configuration cannot honour.
 */
export function vcpuCpuid(supported: readonly CpuidEntry[], p: CpuidPolicy): CpuidEntry[] {
  const coreBits = bitsFor(p.vcpus);
  return supported.map((src) => {
    const e = { ...src };
    switch (e.function) {
      case 1: {
        e.ebx = (e.ebx & 0x0000ffff) | ((Math.min(p.vcpus, 255) & 0xff) << 16) | ((p.apicId & 0xff) << 24);
        e.edx = p.vcpus > 1 ? e.edx | LEAF1_EDX_HTT : e.edx & ~LEAF1_EDX_HTT;
        e.ecx |= LEAF1_ECX_HYPERVISOR;
        // Our userspace LAPIC can only offer x2APIC and the TSC-deadline
        // timer where MSR writes and reads both reach the VMM, and the
        // deadline timer also needs the guest's TSC.
        if (p.irqchip === 'user' && !p.x2apic) e.ecx &= ~(LEAF1_ECX_X2APIC | LEAF1_ECX_TSC_DEADLINE);
        if (p.irqchip === 'user' && !p.tscDeadline) e.ecx &= ~LEAF1_ECX_TSC_DEADLINE;
        // cmpxchg16b is an emulation failure in ring 0 on software-virtualising hosts.
        if (p.softwareVirt) e.ecx &= ~LEAF1_ECX_CX16;
        break;
      }
      case 4:
        // Cores per package - 1 in EAX[31:26]; keep the cache description.
        e.eax = (e.eax & 0x03ffffff) | ((Math.min(p.vcpus, 64) - 1) << 26);
        break;
      case 0xb:
      case 0x1f: {
        if (e.index === 0) {
          e.eax = 0;
          e.ebx = 1;
          e.ecx = (1 << 8) | 0; // level 0: SMT, one thread per core
        } else if (e.index === 1) {
          e.eax = coreBits;
          e.ebx = p.vcpus;
          e.ecx = (2 << 8) | 1; // level 1: cores
        } else {
          e.eax = 0;
          e.ebx = 0;
          e.ecx = e.index & 0xff;
        }
        e.edx = p.apicId;
        break;
      }
      case 0x40000001: {
        let hide = 0;
        if (p.irqchip === 'user') hide |= KVM_FEATURE_PV_EOI | KVM_FEATURE_PV_UNHALT | KVM_FEATURE_PV_SEND_IPI | KVM_FEATURE_ASYNC_PF_INT | KVM_FEATURE_ASYNC_PF;
        // vmcall never completes in ring 0 on software-virtualising hosts.
        if (p.softwareVirt) hide |= KVM_FEATURE_PV_UNHALT | KVM_FEATURE_PV_SEND_IPI | KVM_FEATURE_PV_SCHED_YIELD;
        e.eax &= ~hide;
        break;
      }
    }
    return e;
  });
}
