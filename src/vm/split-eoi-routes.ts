import { native, k, layoutOf } from '../kvm/addon.js';
import type { AccessSize, BusDevice } from '../devices/device.js';
import type { Ioapic } from '../irqchip/ioapic.js';
import { encodeMsi } from '../irqchip/msi.js';
import { IOAPIC_PINS } from '../irqchip/ioapic.js';

const ROUTING = layoutOf('kvm_irq_routing');
const ENTRY = layoutOf('kvm_irq_routing_entry');

/**
 * Split irqchip mode: KVM's LAPICs only report EOIs (KVM_EXIT_IOAPIC_EOI)
 * for vectors it finds in level-triggered MSI routes of the IOAPIC's GSIs.
 * This wraps our IOAPIC's MMIO window and, after each guest write, mirrors
 * the redirection table into KVM's GSI routing so level-triggered lines
 * get their EOIs (and hence remote IRR clears) back.
 */
export class SplitEoiRoutes implements BusDevice {
  readonly name = 'ioapic';
  private last = '';

  constructor(
    private readonly ioapic: Ioapic,
    private readonly vmFd: number,
  ) {}

  read(offset: number, size: AccessSize, vcpu: number): number {
    return this.ioapic.read(offset, size, vcpu);
  }

  write(offset: number, size: AccessSize, value: number, vcpu: number): void {
    this.ioapic.write(offset, size, value, vcpu);
    this.sync();
  }

  /** Pushes the routes to KVM if the redirection table changed them. */
  sync(): void {
    const routes = this.ioapic
      .entries()
      .filter((e) => !e.masked && e.levelTriggered && e.deliveryMode <= 1)
      .map((e) => ({ gsi: e.pin, ...encodeMsi({ vector: e.vector, dest: e.effectiveDestination, logical: e.logical, deliveryMode: e.deliveryMode as 0 | 1, levelTriggered: true }) }));
    const key = JSON.stringify(routes);
    if (key === this.last) return;
    this.last = key;
    const b = new DataView(new ArrayBuffer(ROUTING.size + IOAPIC_PINS * ENTRY.size));
    b.setUint32(ROUTING.nr!, routes.length, true);
    routes.forEach((r, i) => {
      const at = ROUTING.entries! + i * ENTRY.size;
      b.setUint32(at + ENTRY.gsi!, r.gsi, true);
      b.setUint32(at + ENTRY.type!, k('KVM_IRQ_ROUTING_MSI'), true);
      b.setUint32(at + ENTRY.msi_address_lo!, r.addressLo, true);
      b.setUint32(at + ENTRY.msi_address_hi!, r.addressHi, true);
      b.setUint32(at + ENTRY.msi_data!, r.data, true);
    });
    native.ioctl(this.vmFd, k('KVM_SET_GSI_ROUTING'), b);
  }
}
