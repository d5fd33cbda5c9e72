import { native, k, layoutOf } from '../kvm/addon.js';
import { decodeMsi } from '../irqchip/msi.js';
import type { ApicBus } from '../irqchip/types.js';
import type { MsiSink } from '../devices/msi-sink.js';

const MSI = layoutOf('kvm_msi');

/** MSIs into KVM's in-kernel LAPICs (`split` and `kernel` modes): KVM_SIGNAL_MSI with the raw message. */
export class KvmMsiSink implements MsiSink {
  private readonly arg = new DataView(new ArrayBuffer(MSI.size));
  private readonly request = k('KVM_SIGNAL_MSI');

  constructor(private readonly vmFd: number) {}

  signal(addressLo: number, addressHi: number, data: number): void {
    this.arg.setUint32(MSI.address_lo!, addressLo >>> 0, true);
    this.arg.setUint32(MSI.address_hi!, addressHi >>> 0, true);
    this.arg.setUint32(MSI.data!, data >>> 0, true);
    native.ioctl(this.vmFd, this.request, this.arg);
  }
}

/**
 * MSIs into our own LAPICs (`user` mode): decoded into an APIC message and
 * delivered on the APIC bus. A message outside the APIC window is dropped,
 * as a write to nowhere would be.
 */
export class ApicBusMsiSink implements MsiSink {
  constructor(private readonly bus: ApicBus) {}

  signal(addressLo: number, addressHi: number, data: number): void {
    const msg = decodeMsi(addressLo >>> 0, addressHi >>> 0, data >>> 0);
    if (msg) this.bus.deliver(msg);
  }
}
