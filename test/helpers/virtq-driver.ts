import { GuestMemory } from '../../src/memory/guest-memory.js';
import { GuestRanges } from '../../src/virtio/guest-ranges.js';
import { SplitVirtqueue, type DescriptorChain } from '../../src/virtio/queue.js';

/**
 * A split virtqueue over rings built by hand in a SharedArrayBuffer, for
 * model tests: the driver side writes descriptors and the avail ring as a
 * guest driver would.
 */
export const RAM = 0x10000;
export const DESC = 0x1000;
export const AVAIL = 0x2000;
export const USED = 0x3000;
export const SIZE = 8;

export interface Desc {
  addr: number | bigint;
  len: number;
  flags?: number;
  next?: number;
}

export class Driver {
  readonly mem: GuestMemory;
  readonly ram: GuestRanges;
  readonly q: SplitVirtqueue;
  private availIdx = 0;

  constructor(options: { indirect?: boolean; eventIdx?: boolean; size?: number; regions?: Array<{ gpa: number; size: number }> } = {}) {
    const regions = options.regions ?? [{ gpa: 0, size: RAM }];
    this.mem = new GuestMemory(regions.map((r) => ({ gpa: r.gpa, buffer: new SharedArrayBuffer(r.size) })));
    this.ram = new GuestRanges(this.mem);
    this.q = new SplitVirtqueue(SplitVirtqueue.allocate(options.size ?? SIZE), this.ram);
    this.q.setRegister('descLo', DESC);
    this.q.setRegister('driverLo', AVAIL);
    this.q.setRegister('deviceLo', USED);
    this.q.setFeatures({ indirect: options.indirect ?? false, eventIdx: options.eventIdx ?? false });
    this.q.setRegister('ready', 1);
  }

  desc(table: number, i: number, d: Desc): void {
    const at = table + 16 * i;
    this.mem.writeU64(at, BigInt(d.addr));
    this.mem.writeU32(at + 8, d.len);
    this.mem.writeU16(at + 12, d.flags ?? 0);
    this.mem.writeU16(at + 14, d.next ?? 0);
  }

  /** Makes chain `head` available. */
  offer(head: number, size = SIZE): void {
    this.mem.writeU16(AVAIL + 4 + 2 * (this.availIdx % size), head);
    this.availIdx = (this.availIdx + 1) & 0xffff;
    this.mem.writeU16(AVAIL + 2, this.availIdx);
  }

  setAvailIdx(n: number): void {
    this.availIdx = n & 0xffff;
    this.mem.writeU16(AVAIL + 2, this.availIdx);
  }

  pop(): DescriptorChain | null {
    return this.q.withLock(() => this.q.pop());
  }

  usedIdx(): number {
    return this.mem.readU16(USED + 2);
  }

  usedElem(i: number, size = SIZE): { id: number; len: number } {
    const at = USED + 4 + 8 * (i % size);
    return { id: this.mem.readU32(at), len: this.mem.readU32(at + 4) };
  }
}

