import { native, k, layoutOf } from '../kvm/addon.js';
import type { IrqLines } from '../devices/device.js';

const IRQ_LEVEL = layoutOf('kvm_irq_level');

/** IRQ lines driven through KVM_IRQ_LINE into the in-kernel IOAPIC and PICs. */
export class KernelIrqLines implements IrqLines {
  private readonly arg = new DataView(new ArrayBuffer(IRQ_LEVEL.size));
  private readonly request = k('KVM_IRQ_LINE');

  constructor(private readonly vmFd: number) {}

  setLevel(gsi: number, high: boolean): void {
    this.arg.setUint32(IRQ_LEVEL.irq!, gsi, true);
    this.arg.setUint32(IRQ_LEVEL.level!, high ? 1 : 0, true);
    native.ioctl(this.vmFd, this.request, this.arg);
  }
}
