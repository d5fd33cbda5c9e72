import { native, k, layoutOf } from '../kvm/addon.js';
import type { KvmVm } from '../kvm/vm-fd.js';
import { MSR_IA32_APIC_BASE, MSR_IA32_TSC_DEADLINE, MSR_KVM_PV_EOI_EN, MSR_X2APIC_FIRST, MSR_X2APIC_LAST } from '../irqchip/lapic-regs.js';

const FILTER = layoutOf('kvm_msr_filter');
const RANGE = layoutOf('kvm_msr_filter_range');

/**
 * MSR ranges our userspace LAPIC owns: APIC base, TSC deadline, the x2APIC
 * block. Not routed today: KVM never filters 0x800-0x8ff (kvm_msr_allowed
 * lets them through), so x2APIC through a filter cannot work (see vm.ts).
 */
export const LAPIC_MSR_RANGES: ReadonlyArray<readonly [number, number]> = [
  [MSR_IA32_APIC_BASE, 1],
  [MSR_IA32_TSC_DEADLINE, 1],
  [MSR_X2APIC_FIRST, MSR_X2APIC_LAST - MSR_X2APIC_FIRST + 1],
];

/**
 * The paravirtual EOI MSR. Without a filter, KVM with no in-kernel LAPIC
 * accepts the guest's write and does nothing with it: the guest would
 * believe PV EOI on while nobody ever arms its word.
 */
export const PV_EOI_MSR_RANGE: readonly [number, number] = [MSR_KVM_PV_EOI_EN, 1];

/**
 * Makes guest RDMSR/WRMSR of `ranges` exit to userspace (KVM_EXIT_X86_RDMSR /
 * WRMSR) instead of being handled by KVM: KVM_CAP_X86_USER_SPACE_MSR for
 * filtered MSRs, plus a default-allow filter whose ranges deny those MSRs.
 * Returns false (changing nothing) where the host lacks either capability.
 */
export function routeMsrsToUserspace(vm: KvmVm, ranges: ReadonlyArray<readonly [number, number]>): boolean {
  // KVM_CHECK_EXTENSION answers 1 for this capability, not the mask of exit reasons.
  if (!vm.check('KVM_CAP_X86_USER_SPACE_MSR') || !vm.check('KVM_CAP_X86_MSR_FILTER')) return false;
  if (ranges.length > k('KVM_MSR_FILTER_MAX_RANGES')) throw new RangeError('too many MSR filter ranges');
  vm.enableCap('KVM_CAP_X86_USER_SPACE_MSR', k('KVM_MSR_EXIT_REASON_FILTER'));
  const filter = new DataView(new ArrayBuffer(FILTER.size));
  filter.setUint32(FILTER.flags!, k('KVM_MSR_FILTER_DEFAULT_ALLOW'), true);
  // A cleared bitmap bit denies the MSR, and denied MSRs exit to us.
  const bitmaps = ranges.map(([, n]) => new Uint8Array(Math.ceil(n / 8)));
  ranges.forEach(([base, n], i) => {
    const at = FILTER.ranges! + i * RANGE.size;
    filter.setUint32(at + RANGE.flags!, k('KVM_MSR_FILTER_READ') | k('KVM_MSR_FILTER_WRITE'), true);
    filter.setUint32(at + RANGE.nmsrs!, n, true);
    filter.setUint32(at + RANGE.base!, base, true);
    filter.setBigUint64(at + RANGE.bitmap!, native.addressOf(bitmaps[i]!), true);
  });
  native.ioctl(vm.fd, k('KVM_X86_SET_MSR_FILTER'), filter);
  return true;
}
