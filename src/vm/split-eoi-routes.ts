import { native, k, layoutOf } from '../kvm/addon.js';
import type { AccessSize, BusDevice } from '../devices/device.js';
import type { Ioapic } from '../irqchip/ioapic.js';
import { encodeMsi } from '../irqchip/msi.js';
import { IOAPIC_PINS, IoapicMmio } from '../irqchip/ioapic.js';
import { Mutex } from '../sync/mutex.js';

const ROUTING = layoutOf('kvm_irq_routing');
const ENTRY = layoutOf('kvm_irq_routing_entry');

/**
 * Split irqchip mode: KVM's LAPICs only report EOIs (KVM_EXIT_IOAPIC_EOI)
 * for vectors it finds in level-triggered MSI routes of the IOAPIC's GSIs.
 * This wraps our IOAPIC's MMIO window and, after each guest write to the
 * data window, mirrors the redirection table into KVM's GSI routing so
 * level-triggered lines get their EOIs (and hence remote IRR clears) back.
 *
 * The table is read and pushed under one lock shared by every thread
 * (`allocateRoutesLock`): two vCPUs programming entries at once must not
 * let the older table reach KVM last.
 */
export class SplitEoiRoutes implements BusDevice {
  readonly name = 'ioapic';
  private readonly lock: Mutex;

  static allocateRoutesLock(): SharedArrayBuffer {
    return new SharedArrayBuffer(4);
  }

  constructor(
    private readonly ioapic: Ioapic,
    private readonly vmFd: number,
    routesLock: SharedArrayBuffer,
  ) {
    this.lock = new Mutex(new Int32Array(routesLock), 0);
  }

  read(offset: number, size: AccessSize, vcpu: number): number {
    return this.ioapic.read(offset, size, vcpu);
  }

  write(offset: number, size: AccessSize, value: number, vcpu: number): void {
    this.ioapic.write(offset, size, value, vcpu);
    // Only the data window changes redirection entries.
    if (offset >= IoapicMmio.Window) this.sync();
  }

  /** Pushes the routes the redirection table gives now (also after a restore). */
  sync(): void {
    this.lock.with(() => this.push());
  }

  private push(): void {
    const routes = this.ioapic
      .entries()
      .filter((e) => !e.masked && e.levelTriggered && e.deliveryMode <= 1)
      .map((e) => ({ gsi: e.pin, ...encodeMsi({ vector: e.vector, dest: e.effectiveDestination, logical: e.logical, deliveryMode: e.deliveryMode as 0 | 1, levelTriggered: true }) }));
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
