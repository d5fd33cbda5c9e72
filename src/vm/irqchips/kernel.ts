import { k, layoutOf, native } from '../../kvm/addon.js';
import type { KvmVm } from '../../kvm/vm-fd.js';
import { kernelInterrupts } from '../../vcpu/interrupts.js';
import { SnapshotError } from '../snapshot-manifest.js';
import { KernelIrqLines } from '../irq-lines.js';
import { KvmMsiSink } from '../msi-signal.js';
import type { Irqchip, IrqchipViews } from './types.js';

const IRQCHIP = layoutOf('kvm_irqchip');
/** KVM_GET_IRQCHIP chip ids: PIC master, PIC slave, IOAPIC. */
const KVM_CHIPS = [0, 1, 2] as const;

function kvmIrqchip(vm: KvmVm, chip: number, set?: Uint8Array): Uint8Array {
  const b = set ?? new Uint8Array(IRQCHIP.size);
  new DataView(b.buffer, b.byteOffset).setUint32(IRQCHIP.chip_id!, chip, true);
  native.ioctl(vm.fd, k(set ? 'KVM_SET_IRQCHIP' : 'KVM_GET_IRQCHIP'), b);
  return b;
}

/** `kernel`: KVM's LAPICs, IOAPIC and PICs; we only raise lines and send MSIs. */
export const kernelIrqchip: Irqchip = {
  mode: 'kernel',
  userLapic: false,
  allocate: () => ({ mode: 'kernel' }),
  createInKvm: (vm) => vm.createIrqchip(),
  views: (_state, o): IrqchipViews => ({
    lines: new KernelIrqLines(o.vmFd),
    msi: new KvmMsiSink(o.vmFd),
    attach() {},
    vcpuInterrupts: () => kernelInterrupts,
    afterRestore() {},
  }),
  save: (_state, vm) => ({ mode: 'kernel', state: {}, kvmChips: KVM_CHIPS.map((c) => Buffer.from(kvmIrqchip(vm, c)).toString('base64')) }),
  load: (_state, vm, saved) => {
    if (!Array.isArray(saved.kvmChips) || saved.kvmChips.length !== KVM_CHIPS.length) throw new SnapshotError('the snapshot lacks the kernel irqchip state');
    saved.kvmChips.forEach((b64, c) => {
      const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
      if (bytes.length !== IRQCHIP.size) throw new SnapshotError(`the saved kernel irqchip ${c} is ${bytes.length} bytes, this kernel's struct ${IRQCHIP.size}`);
      kvmIrqchip(vm, c, bytes);
    });
  },
};
