import { native, k, layoutOf } from '../kvm/addon.js';
import { encodeMsi } from '../irqchip/msi.js';
import type { ApicBus, ApicMessage } from '../irqchip/types.js';

const MSI = layoutOf('kvm_msi');

/**
 * Delivers interrupt messages to KVM's in-kernel LAPICs as MSIs (split
 * irqchip mode): how our IOAPIC reaches the vCPUs when the LAPICs are KVM's.
 */
export class MsiApicBus implements ApicBus {
  private readonly arg = new DataView(new ArrayBuffer(MSI.size));
  private readonly request = k('KVM_SIGNAL_MSI');

  constructor(private readonly vmFd: number) {}

  deliver(msg: ApicMessage): void {
    const m = encodeMsi({
      vector: msg.vector,
      dest: msg.dest,
      logical: msg.logical,
      deliveryMode: msg.deliveryMode,
      levelTriggered: msg.levelTriggered,
      assert: msg.assert,
    });
    this.arg.setUint32(MSI.address_lo!, m.addressLo, true);
    this.arg.setUint32(MSI.address_hi!, m.addressHi, true);
    this.arg.setUint32(MSI.data!, m.data, true);
    native.ioctl(this.vmFd, this.request, this.arg);
  }
}
