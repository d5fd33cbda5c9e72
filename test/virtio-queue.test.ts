import { expect } from 'chai';
import { SplitVirtqueue, VirtqueueError, vringNeedEvent } from '../src/virtio/queue.js';
import { AVAIL, DESC, Driver, RAM, SIZE, USED } from './helpers/virtq-driver.js';
import { readChain, writeChain } from '../src/virtio/chain-io.js';
import { VirtqDesc, VIRTQ_AVAIL_F_NO_INTERRUPT } from '../src/virtio/constants.js';

function expectQueueError(fn: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a VirtqueueError').to.be.instanceOf(VirtqueueError);
  expect((caught as Error).message).to.match(pattern);
}

describe('split virtqueue (model)', () => {
  it('returns nothing while the queue is disabled or empty', () => {
    const d = new Driver();
    expect(d.pop()).to.equal(null);
    const off = new SplitVirtqueue(SplitVirtqueue.allocate(8), d.ram);
    expect(off.withLock(() => off.pop())).to.equal(null);
  });

  it('follows a chained request: readable header, writable data and status', () => {
    const d = new Driver();
    d.desc(DESC, 0, { addr: 0x4000, len: 16, flags: VirtqDesc.Next, next: 5 });
    d.desc(DESC, 5, { addr: 0x5000, len: 512, flags: VirtqDesc.Next | VirtqDesc.Write, next: 2 });
    d.desc(DESC, 2, { addr: 0x6000, len: 1, flags: VirtqDesc.Write });
    d.offer(0);
    const c = d.pop()!;
    expect(c.head).to.equal(0);
    expect(c.readable).to.deep.equal([{ addr: 0x4000, len: 16 }]);
    expect(c.writable).to.deep.equal([
      { addr: 0x5000, len: 512 },
      { addr: 0x6000, len: 1 },
    ]);
    expect(c.readableLength).to.equal(16);
    expect(c.writableLength).to.equal(513);
    expect(d.pop()).to.equal(null);
  });

  it('publishes used elements and the used index', () => {
    const d = new Driver();
    d.desc(DESC, 3, { addr: 0x4000, len: 8, flags: VirtqDesc.Write });
    d.offer(3);
    const c = d.pop()!;
    d.q.withLock(() => d.q.push(c.head, 8));
    expect(d.usedIdx()).to.equal(1);
    expect(d.usedElem(0)).to.deep.equal({ id: 3, len: 8 });
  });

  it('follows an indirect table when negotiated', () => {
    const d = new Driver({ indirect: true });
    const table = 0x7000;
    d.desc(table, 0, { addr: 0x4000, len: 16, flags: VirtqDesc.Next, next: 1 });
    d.desc(table, 1, { addr: 0x5000, len: 4096, flags: VirtqDesc.Next | VirtqDesc.Write, next: 2 });
    d.desc(table, 2, { addr: 0x6000, len: 1, flags: VirtqDesc.Write });
    d.desc(DESC, 1, { addr: table, len: 48, flags: VirtqDesc.Indirect });
    d.offer(1);
    const c = d.pop()!;
    expect(c.head).to.equal(1);
    expect(c.readable.map((b) => b.addr)).to.deep.equal([0x4000]);
    expect(c.writable.map((b) => b.addr)).to.deep.equal([0x5000, 0x6000]);
  });

  it('handles avail and used indices that wrap past 65535', () => {
    const d = new Driver();
    d.desc(DESC, 0, { addr: 0x4000, len: 4, flags: VirtqDesc.Write });
    // Start both sides just below the wrap, as after 65534 requests.
    const start = 0xfffe;
    d.setAvailIdx(start);
    // Drain to `start` by making the device believe it consumed as much.
    for (let i = 0; i < 3; i++) {
      d.mem.writeU16(AVAIL + 4 + 2 * ((start + i) % SIZE), 0);
    }
    // Fast-forward the device's private indices through its own pops.
    const q = d.q;
    for (let n = 0; n < start; n += SIZE) {
      const batch = Math.min(SIZE, start - n);
      d.mem.writeU16(AVAIL + 2, (n + batch) & 0xffff);
      for (let i = 0; i < batch; i++) q.withLock(() => q.push(q.pop()!.head, 0));
    }
    d.setAvailIdx(start + 3); // 0x0001 after wrapping
    const heads: number[] = [];
    for (let c = d.pop(); c; c = d.pop()) {
      heads.push(c.head);
      q.withLock(() => q.push(c!.head, 4));
    }
    expect(heads).to.have.length(3);
    expect(d.mem.readU16(AVAIL + 2)).to.equal(1);
    expect(d.usedIdx()).to.equal(1);
  });

  it('copies data in and out of chains that straddle RAM regions', () => {
    const d = new Driver({ regions: [{ gpa: 0, size: 0x10000 }, { gpa: 0x10000, size: 0x10000 }] });
    d.desc(DESC, 0, { addr: 0xfff0, len: 0x20, flags: VirtqDesc.Write });
    d.offer(0);
    const c = d.pop()!;
    const data = Uint8Array.from({ length: 0x20 }, (_, i) => i + 1);
    expect(writeChain(d.ram, c.writable, 0, data)).to.equal(0x20);
    expect(Array.from(readChain(d.ram, c.writable, 0, 0x20))).to.deep.equal(Array.from(data));
    expect(d.mem.readU8(0x10000)).to.equal(17);
  });

  describe('interrupt suppression', () => {
    it('honours VIRTQ_AVAIL_F_NO_INTERRUPT without event idx', () => {
      const d = new Driver();
      expect(d.q.withLock(() => d.q.needsInterrupt())).to.equal(true);
      d.mem.writeU16(AVAIL, VIRTQ_AVAIL_F_NO_INTERRUPT);
      expect(d.q.withLock(() => d.q.needsInterrupt())).to.equal(false);
    });

    it('interrupts only when used_event is crossed with event idx', () => {
      const d = new Driver({ eventIdx: true });
      d.desc(DESC, 0, { addr: 0x4000, len: 4, flags: VirtqDesc.Write });
      const complete = (): boolean =>
        d.q.withLock(() => {
          const c = d.q.pop()!;
          d.q.push(c.head, 4);
          return d.q.needsInterrupt();
        });
      // used_event (avail ring slot `size`) = 0: interrupt when used idx moves past 0.
      d.mem.writeU16(AVAIL + 4 + 2 * SIZE, 0);
      d.offer(0);
      expect(complete()).to.equal(true); // the first decision always interrupts
      d.mem.writeU16(AVAIL + 4 + 2 * SIZE, 3); // wake me when used idx passes 3
      d.offer(0);
      expect(complete()).to.equal(false); // used 2
      d.offer(0);
      expect(complete()).to.equal(false); // used 3
      d.offer(0);
      expect(complete()).to.equal(true); // used 4: crossed 3
    });

    it('publishes avail_event so the driver notifies for the next buffer', () => {
      const d = new Driver({ eventIdx: true });
      d.desc(DESC, 0, { addr: 0x4000, len: 4, flags: VirtqDesc.Write });
      d.offer(0);
      d.offer(0);
      d.pop();
      expect(d.mem.readU16(USED + 4 + 8 * SIZE)).to.equal(1);
      d.pop();
      expect(d.pop()).to.equal(null);
      expect(d.mem.readU16(USED + 4 + 8 * SIZE)).to.equal(2);
    });

    it('implements vring_need_event across the 16-bit wrap', () => {
      expect(vringNeedEvent(0xffff, 0x0001, 0xfffe)).to.equal(true);
      expect(vringNeedEvent(0x0005, 0x0001, 0xfffe)).to.equal(false);
      expect(vringNeedEvent(10, 11, 10)).to.equal(true);
      expect(vringNeedEvent(10, 10, 9)).to.equal(false);
    });
  });

  describe('malformed rings and chains are rejected, never followed', () => {
    it('a chain that loops', () => {
      const d = new Driver();
      d.desc(DESC, 0, { addr: 0x4000, len: 4, flags: VirtqDesc.Next, next: 1 });
      d.desc(DESC, 1, { addr: 0x4000, len: 4, flags: VirtqDesc.Next, next: 0 });
      d.offer(0);
      expectQueueError(() => d.pop(), /loop/);
    });

    it('a descriptor that points to itself', () => {
      const d = new Driver();
      d.desc(DESC, 4, { addr: 0x4000, len: 4, flags: VirtqDesc.Next, next: 4 });
      d.offer(4);
      expectQueueError(() => d.pop(), /loop/);
    });

    it('a loop inside an indirect table', () => {
      const d = new Driver({ indirect: true });
      d.desc(0x7000, 0, { addr: 0x4000, len: 4, flags: VirtqDesc.Next, next: 1 });
      d.desc(0x7000, 1, { addr: 0x4000, len: 4, flags: VirtqDesc.Next, next: 0 });
      d.desc(DESC, 0, { addr: 0x7000, len: 32, flags: VirtqDesc.Indirect });
      d.offer(0);
      expectQueueError(() => d.pop(), /loop/);
    });

    it('a head or next index outside the table', () => {
      const d = new Driver();
      d.offer(SIZE);
      expectQueueError(() => d.pop(), /head 8 is outside/);
      const e = new Driver();
      e.desc(DESC, 0, { addr: 0x4000, len: 4, flags: VirtqDesc.Next, next: 200 });
      e.offer(0);
      expectQueueError(() => e.pop(), /next 200 is outside/);
    });

    it('buffers outside guest RAM, including 64-bit addresses', () => {
      for (const addr of [RAM - 2, 0x80000000, 0xffffffff_fffff000n, 2n ** 53n]) {
        const d = new Driver();
        d.desc(DESC, 0, { addr, len: 16, flags: VirtqDesc.Write });
        d.offer(0);
        expectQueueError(() => d.pop(), /not guest RAM/);
      }
    });

    it('a chain whose lengths add up to 4 GiB or more, before any buffer is looked at', () => {
      const d = new Driver();
      d.desc(DESC, 0, { addr: 0x4000, len: 0xfffffff0, flags: VirtqDesc.Next, next: 1 });
      d.desc(DESC, 1, { addr: 0x4000, len: 0x10 });
      d.offer(0);
      expectQueueError(() => d.pop(), /4 GiB/);
      const e = new Driver({ indirect: true });
      for (let i = 0; i < 3; i++) e.desc(0x7000, i, { addr: 0, len: 0x60000000, flags: i < 2 ? VirtqDesc.Next : 0, next: i + 1 });
      e.desc(DESC, 0, { addr: 0x7000, len: 48, flags: VirtqDesc.Indirect });
      e.offer(0);
      expectQueueError(() => e.pop(), /4 GiB/);
    });

    it('rings that are not wholly in guest RAM, or misaligned, when the driver enables the queue (which stays off)', () => {
      // Each ring's whole extent counts: used_event after the avail ring and avail_event after the used ring too.
      const cases: Array<{ desc?: number; descHi?: number; avail?: number; used?: number; error: RegExp }> = [
        { desc: 0, descHi: 1, error: /descriptor table at 0x100000000 .* is not in guest RAM/ },
        { desc: RAM - 16 * SIZE + 16, error: /descriptor table .* is not in guest RAM/ },
        { avail: RAM - 2, error: /avail ring .* is not in guest RAM/ },
        { avail: RAM - (4 + 2 * SIZE), error: /avail ring at 0xffec \(0x16 bytes for 8 entries\) is not in guest RAM/ }, // only used_event is outside
        { used: 0xfee00000, error: /used ring at 0xfee00000 .* is not in guest RAM/ }, // the LAPIC page
        { used: RAM - 8, error: /used ring .* is not in guest RAM/ }, // straddles the end
        { used: RAM - (4 + 8 * SIZE), error: /used ring .* is not in guest RAM/ }, // only avail_event is outside
        { desc: DESC + 8, error: /descriptor table at 0x1008 .* is not 16-byte aligned/ },
        { avail: AVAIL + 1, error: /avail ring .* is not 2-byte aligned/ },
        { used: USED + 2, error: /used ring .* is not 4-byte aligned/ },
      ];
      for (const c of cases) {
        const d = new Driver();
        d.q.reset();
        d.q.setRegister('descLo', c.desc ?? DESC);
        d.q.setRegister('descHi', c.descHi ?? 0);
        d.q.setRegister('driverLo', c.avail ?? AVAIL);
        d.q.setRegister('deviceLo', c.used ?? USED);
        expectQueueError(() => d.q.setRegister('ready', 1), c.error);
        expect(d.q.ready, String(c.error)).to.equal(false);
        d.offer(0);
        expect(d.pop(), 'a disabled queue serves nothing').to.equal(null);
      }
      // Rings that end exactly at the end of RAM, and across a region boundary, are fine.
      const end = new Driver();
      end.q.reset();
      end.q.setRegister('driverLo', RAM - (6 + 2 * SIZE));
      end.q.setRegister('deviceLo', RAM - (6 + 8 * SIZE) - 2);
      end.q.setRegister('ready', 1);
      expect(end.q.ready).to.equal(true);
      const split = new Driver({ regions: [{ gpa: 0, size: USED + 0x20 }, { gpa: USED + 0x20, size: RAM - USED - 0x20 }] });
      expect(split.q.ready).to.equal(true);
    });

    it('an avail index more than a queue ahead', () => {
      const d = new Driver();
      d.setAvailIdx(SIZE + 1);
      expectQueueError(() => d.pop(), /made 9 buffers available on a queue of 8/);
    });

    it('indirect descriptors that are not negotiated, nested, chained or badly sized', () => {
      const cases: Array<{ indirect: boolean; setup: (d: Driver) => void; error: RegExp }> = [
        { indirect: false, setup: (d) => d.desc(DESC, 0, { addr: 0x7000, len: 16, flags: VirtqDesc.Indirect }), error: /without VIRTIO_F_INDIRECT_DESC/ },
        {
          indirect: true,
          setup: (d) => {
            d.desc(0x7000, 0, { addr: 0x7800, len: 16, flags: VirtqDesc.Indirect });
            d.desc(DESC, 0, { addr: 0x7000, len: 16, flags: VirtqDesc.Indirect });
          },
          error: /another indirect table/,
        },
        { indirect: true, setup: (d) => d.desc(DESC, 0, { addr: 0x7000, len: 16, flags: VirtqDesc.Indirect | VirtqDesc.Next, next: 1 }), error: /also has NEXT/ },
        { indirect: true, setup: (d) => d.desc(DESC, 0, { addr: 0x7000, len: 20, flags: VirtqDesc.Indirect }), error: /not a nonzero multiple of 16/ },
        { indirect: true, setup: (d) => d.desc(DESC, 0, { addr: 0x7000, len: 0, flags: VirtqDesc.Indirect }), error: /not a nonzero multiple of 16/ },
        { indirect: true, setup: (d) => d.desc(DESC, 0, { addr: RAM - 16, len: 32, flags: VirtqDesc.Indirect }), error: /indirect table .* is not guest RAM/ },
        { indirect: true, setup: (d) => d.desc(DESC, 0, { addr: 0, len: 16 * 2048, flags: VirtqDesc.Indirect }), error: /exceeds 1024/ },
      ];
      for (const c of cases) {
        const d = new Driver({ indirect: c.indirect });
        c.setup(d);
        d.offer(0);
        expectQueueError(() => d.pop(), c.error);
      }
    });

    it('a device-readable buffer after a device-writable one', () => {
      const d = new Driver();
      d.desc(DESC, 0, { addr: 0x4000, len: 4, flags: VirtqDesc.Write | VirtqDesc.Next, next: 1 });
      d.desc(DESC, 1, { addr: 0x5000, len: 4 });
      d.offer(0);
      expectQueueError(() => d.pop(), /readable descriptor follows a device-writable/);
    });

    it('does not consume a rejected chain or touch guest memory outside the rings', () => {
      const d = new Driver();
      d.desc(DESC, 0, { addr: 0x4000, len: 4, flags: VirtqDesc.Next, next: 0 });
      d.offer(0);
      const before = d.mem.read(0, RAM);
      expectQueueError(() => d.pop(), /loop/);
      expect(Buffer.from(d.mem.read(0, RAM)).equals(Buffer.from(before))).to.equal(true);
      expectQueueError(() => d.pop(), /loop/);
    });
  });

  it('resets to a disabled queue of the maximum size', () => {
    const d = new Driver();
    d.q.setRegister('size', 4);
    expect(d.q.register('size')).to.equal(SIZE); // ignored while enabled
    d.q.reset();
    expect(d.q.ready).to.equal(false);
    d.q.setRegister('size', 3); // not a power of two: ignored
    expect(d.q.register('size')).to.equal(SIZE);
    d.q.setRegister('size', 4);
    expect(d.q.register('size')).to.equal(4);
    expect(d.q.vector).to.equal(0xffff);
  });
});
