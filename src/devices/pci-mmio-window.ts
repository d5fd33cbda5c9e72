import type { AccessSize, BusDevice } from './device.js';
import { PciCommand, type PciConfigSpace } from './pci-config.js';

/**
 * The part of the PCI hole where memory BARs live. The VMM attaches this
 * window once on each thread's bus and routes every access to whichever
 * function's BAR currently decodes it, so a guest that moves a BAR (as
 * Linux may) needs no re-attachment. With no firmware to assign BARs, the
 * VMM pre-programs them inside the window (`PCI_MMIO_BASE` upwards) with
 * memory decoding on, so guests without PCI enumeration can use them.
 */
export const PCI_MMIO_BASE = 0xc0000000;
/** Ends where the IOAPIC page starts. */
export const PCI_MMIO_END = 0xfec00000;

interface Window {
  readonly config: PciConfigSpace;
  readonly bar: number;
  readonly size: number;
  readonly device: BusDevice;
}

export class PciMmioWindow implements BusDevice {
  readonly name = 'pci-mmio';
  private readonly windows: Window[] = [];

  /** Routes BAR `bar` of `config` (a memory BAR of `size` bytes) to `device`. */
  add(config: PciConfigSpace, bar: number, size: number, device: BusDevice): void {
    this.windows.push({ config, bar, size, device });
  }

  read(offset: number, size: AccessSize, vcpu: number): number {
    const hit = this.find(PCI_MMIO_BASE + offset, size);
    return hit ? hit.window.device.read(hit.offset, size, vcpu) : size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
  }

  write(offset: number, size: AccessSize, value: number, vcpu: number): void {
    const hit = this.find(PCI_MMIO_BASE + offset, size);
    if (hit) hit.window.device.write(hit.offset, size, value, vcpu);
  }

  private find(address: number, size: number): { window: Window; offset: number } | undefined {
    for (const w of this.windows) {
      const base = w.config.barAddress(w.bar);
      if (base === undefined || address < base || address + size > base + w.size) continue;
      if (!(w.config.command() & PciCommand.Memory)) continue;
      return { window: w, offset: address - base };
    }
    return undefined;
  }
}
