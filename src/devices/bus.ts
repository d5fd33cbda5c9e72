import type { AccessSize, BusDevice } from './device.js';

export type AddressSpace = 'pio' | 'mmio';

/** Called for an access no device claims; real hardware ignores it. */
export type UnhandledAccess = (space: AddressSpace, address: number, size: number, write: boolean) => void;

interface Range {
  base: number;
  end: number;
  device: BusDevice;
}

/**
 * Routes port and MMIO accesses to devices by range, with offsets relative
 * to each device's base. Reads nobody claims return all ones, as an
 * unterminated ISA/PCI bus does. Port lookup is one array index (every port
 * maps to a range number); MMIO is a binary search over few ranges.
 */
export class Bus {
  private readonly ports = new Uint32Array(0x10000);
  private readonly pioRanges: Range[] = [{ base: 0, end: 0, device: null as unknown as BusDevice }];
  private mmioRanges: Range[] = [];

  constructor(private readonly unhandled: UnhandledAccess = () => {}) {}

  attachPio(base: number, length: number, device: BusDevice): void {
    if (base < 0 || length <= 0 || base + length > 0x10000) throw new RangeError(`${device.name}: port range 0x${base.toString(16)}+${length} is outside the 64 KiB port space`);
    for (let p = base; p < base + length; p++) {
      if (this.ports[p] !== 0) throw new RangeError(`${device.name}: port 0x${p.toString(16)} already belongs to ${this.pioRanges[this.ports[p]!]!.device.name}`);
    }
    const index = this.pioRanges.push({ base, end: base + length, device }) - 1;
    this.ports.fill(index, base, base + length);
  }

  attachMmio(base: number, length: number, device: BusDevice): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(length) || base < 0 || length <= 0) {
      throw new RangeError(`${device.name}: MMIO range 0x${base.toString(16)}+${length} is not a valid address range`);
    }
    const end = base + length;
    const clash = this.mmioRanges.find((r) => base < r.end && r.base < end);
    if (clash) throw new RangeError(`${device.name}: MMIO range 0x${base.toString(16)}+0x${length.toString(16)} overlaps ${clash.device.name}`);
    this.mmioRanges = [...this.mmioRanges, { base, end, device }].sort((a, b) => a.base - b.base);
  }

  /** The name of the device at a port or MMIO address, or "unclaimed" (for exit profiles). */
  nameAt(space: AddressSpace, address: number): string {
    const r = space === 'pio' ? this.pioRanges[this.ports[address & 0xffff]!]! : this.findMmio(address);
    return r === undefined || r.end === 0 ? 'unclaimed' : r.device.name;
  }

  pioRead(port: number, size: AccessSize, vcpu: number): number {
    const r = this.pioRanges[this.ports[port]!]!;
    if (r.end === 0 || port + size > r.end) {
      this.unhandled('pio', port, size, false);
      return ones(size);
    }
    return r.device.read(port - r.base, size, vcpu);
  }

  pioWrite(port: number, size: AccessSize, value: number, vcpu: number): void {
    const r = this.pioRanges[this.ports[port]!]!;
    if (r.end === 0 || port + size > r.end) {
      this.unhandled('pio', port, size, true);
      return;
    }
    r.device.write(port - r.base, size, value, vcpu);
  }

  private findMmio(addr: number): Range | undefined {
    const a = this.mmioRanges;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = a[mid]!;
      if (addr < r.base) hi = mid - 1;
      else if (addr >= r.end) lo = mid + 1;
      else return r;
    }
    return undefined;
  }

  mmioRead(addr: number, size: AccessSize, vcpu: number): number {
    const r = this.findMmio(addr);
    if (!r || addr + size > r.end) {
      this.unhandled('mmio', addr, size, false);
      return ones(size);
    }
    return r.device.read(addr - r.base, size, vcpu);
  }

  mmioWrite(addr: number, size: AccessSize, value: number, vcpu: number): void {
    const r = this.findMmio(addr);
    if (!r || addr + size > r.end) {
      this.unhandled('mmio', addr, size, true);
      return;
    }
    r.device.write(addr - r.base, size, value, vcpu);
  }
}

function ones(size: number): number {
  return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
}
