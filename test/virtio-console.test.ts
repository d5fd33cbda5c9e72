import { expect } from 'chai';
import { availableParallelism } from 'node:os';
import { fakeVirtioFunction, ring } from './helpers/virtio-driver.js';
import { VirtioConsole, VirtioConsoleQueue, VIRTIO_CONSOLE_TYPE, allocateVirtioConsole } from '../src/virtio/console.js';
import { VirtioConsolePump } from '../src/virtio/console-pump.js';
import { until } from './helpers/until.js';
import { VirtioStatus, VirtqDesc } from '../src/virtio/constants.js';

/** Model tests of virtio-console and its main-thread pump (no KVM). */
const RX = VirtioConsoleQueue.Receive;
const TX = VirtioConsoleQueue.Transmit;
const DATA = 0x10000;


function setup(output: (chunk: Buffer) => Promise<void> | void) {
  const f = fakeVirtioFunction(VIRTIO_CONSOLE_TYPE, (ctx) => new VirtioConsole(allocateVirtioConsole(), ctx));
  const pump = new VirtioConsolePump(f.t.model as VirtioConsole, output);
  const transmit = (head: number, text: string): void => {
    f.mem.write(DATA + head * 0x100, Buffer.from(text, 'latin1'));
    f.offer(head, DATA + head * 0x100, text.length, 0, TX);
  };
  const postReceive = (head: number, len: number): void => f.offer(head, DATA + 0x1000 + head * 0x100, len, VirtqDesc.Write, RX);
  const received = (head: number, len: number): string => Buffer.from(f.mem.read(DATA + 0x1000 + head * 0x100, len)).toString('latin1');
  return { ...f, pump, transmit, postReceive, received };
}

describe('virtio-console (model)', () => {
  it('is device 3 with a receive and a transmit queue, no features of its own and one port', () => {
    const { t, r, w32 } = setup(() => {});
    expect(t.configRead(0x02, 2)).to.equal(0x1043);
    expect(t.configRead(0x09, 4) & 0xffffff).to.equal(0x078000);
    expect(r(0x12, 2)).to.equal(2); // num_queues
    w32(0x00, 0);
    expect(r(0x04)).to.equal((1 << 28) | (1 << 29)); // bits 0-31: only the transport's ring features
    expect(r(0x2000 + 8)).to.equal(1); // max_nr_ports
  });

  it('passes transmitted buffers on in order and returns each to the driver', async () => {
    const out: string[] = [];
    const c = setup((b) => void out.push(b.toString('latin1')));
    c.bringUp({ lo: 0, hi: 1 }, [RX, TX]);
    c.transmit(0, 'hello, ');
    c.transmit(1, 'world\n');
    await until(() => out.join('') === 'hello, world\n', 'the output', 2000);
    expect(c.usedIdx(TX)).to.equal(2);
    expect(c.used(TX, 0)).to.deep.equal([0, 0]);
    expect(c.used(TX, 1)).to.deep.equal([1, 0]);
    expect(c.levels.length).to.be.greaterThan(0); // INTx: used buffers signalled
    expect(c.pump.bytesOut).to.equal(13);
    c.pump.close();
  });

  it('takes no more transmit buffers while the output has not caught up', async () => {
    const out: string[] = [];
    let release!: () => void;
    const c = setup((b) => {
      out.push(b.toString('latin1'));
      return new Promise<void>((r) => (release = r));
    });
    c.bringUp({ lo: 0, hi: 1 }, [RX, TX]);
    c.transmit(0, 'first');
    await until(() => out.length === 1, 'the first chunk', 2000);
    c.transmit(1, 'second');
    await new Promise((r) => setTimeout(r, 30));
    expect(out).to.deep.equal(['first']);
    expect(c.usedIdx(TX)).to.equal(1); // the guest's second buffer is still the device's
    release();
    await until(() => out.length === 2, 'the second chunk', 2000);
    expect(out[1]).to.equal('second');
    release();
    c.pump.close();
  });

  it('holds input until the driver posts receive buffers, then fills them without dropping a byte', async () => {
    const c = setup(() => {});
    c.pump.send(Buffer.from('typed early'));
    expect(c.pump.heldInput).to.equal(11);
    c.bringUp({ lo: 0, hi: 1 }, [RX, TX]);
    c.postReceive(0, 4);
    await until(() => c.usedIdx(RX) === 1, 'the first receive buffer', 2000);
    expect(c.used(RX, 0)).to.deep.equal([0, 4]);
    expect(c.received(0, 4)).to.equal('type');
    expect(c.pump.heldInput).to.equal(7);
    c.postReceive(1, 64);
    await until(() => c.usedIdx(RX) === 2, 'the second receive buffer', 2000);
    expect(c.used(RX, 1)).to.deep.equal([1, 7]);
    expect(c.received(1, 7)).to.equal('d early');
    expect(c.pump.heldInput).to.equal(0);
    // With buffers posted and idle, input goes straight in.
    c.postReceive(2, 64);
    c.pump.send(Buffer.from('x'));
    expect(c.used(RX, 2)).to.deep.equal([2, 1]);
    expect(c.pump.bytesIn).to.equal(12);
    c.pump.close();
  });

  it('marks the device DEVICE_NEEDS_RESET on a malformed transmit chain and passes nothing on', async () => {
    const out: Buffer[] = [];
    const c = setup((b) => void out.push(b));
    c.bringUp({ lo: 0, hi: 1 }, [RX, TX]);
    c.offer(0, 0x7fff0000, 16, 0, TX); // outside guest RAM
    await until(() => (c.r(0x14, 1) & VirtioStatus.DeviceNeedsReset) !== 0, 'the device to fail', 2000);
    expect(out).to.deep.equal([]);
    expect(c.usedIdx(TX)).to.equal(0);
    expect(c.logs.join()).to.match(/guest RAM|outside|range/i);
    c.pump.close();
  });

  it('passes on what is left when closed, without waiting for the pump', () => {
    const out: string[] = [];
    const c = setup((b) => void out.push(b.toString('latin1')));
    c.bringUp({ lo: 0, hi: 1 }, [RX, TX]);
    // Written straight into the rings, no notify: only close() can see it.
    c.mem.write(DATA, Buffer.from('last words'));
    const at = ring(TX);
    c.mem.writeU64(at.desc, BigInt(DATA));
    c.mem.writeU32(at.desc + 8, 10);
    c.mem.writeU16(at.avail + 4, 0);
    c.mem.writeU16(at.avail + 2, 1);
    c.pump.close();
    expect(out).to.deep.equal(['last words']);
  });
});

describe('virtio VM options', () => {
  it('rejects an unknown console kind with a clear error', async () => {
    const { createVm, NodevisorError } = await import('../src/index.js');
    expect(() => createVm({ console: 'hvc' as never })).to.throw(NodevisorError, /unknown console "hvc": use one of serial, virtio/);
  });

  it('rejects an I/O thread count outside 1-16, and defaults to one fewer than the CPUs, 1 to 4', async () => {
    const { createVm, NodevisorError } = await import('../src/index.js');
    for (const n of [0, 17, 1.5]) expect(() => createVm({ ioThreads: n })).to.throw(NodevisorError, /ioThreads must be an integer from 1 to 16/);
    expect(createVm({ ioThreads: 16 }).ioThreads).to.equal(16);
    expect(createVm().ioThreads).to.equal(Math.min(4, Math.max(1, availableParallelism() - 1)));
  });
});
