import { native, k, layoutOf } from '../kvm/addon.js';
import type { IrqLines } from '../devices/device.js';
import { noIrqLines } from '../devices/device.js';

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

/** The IRQ lines devices in this thread drive, for the VM's irqchip mode. */
export function createIrqLines(cfg: { irqchip: string; vmFd: number }): IrqLines {
  if (cfg.irqchip === 'kernel') return new KernelIrqLines(cfg.vmFd);
  return noIrqLines;
}
