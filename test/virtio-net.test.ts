import { expect } from 'chai';
import { native, k } from '../src/kvm/addon.js';
import { GuestRanges } from '../src/virtio/guest-ranges.js';
import { VirtioStatus, VirtqDesc } from '../src/virtio/constants.js';
import { VirtqueueError } from '../src/virtio/queue.js';
import { VirtioNet, allocateVirtioNet, virtioNetType, virtioNetQueueCount, NetStatus, loadVirtioNet, saveVirtioNet } from '../src/virtio/net.js';
import { VirtioPciTransport } from '../src/virtio/pci-transport.js';
import { StateLayoutError } from '../src/sync/state-layout.js';
import { NET_HDR_SIZE, NetGso, NetHdr, NetHdrFlag, decodeNetHeader, encodeNetHeader } from '../src/virtio/net-header.js';
import { VirtioNetFeature as F, maxReceivePacket, offeredNetFeatures, receivable, tunOffloadFlags, type NetBackendCaps } from '../src/virtio/net-features.js';
import { NetReceiver, netRxFeatures, type NetPacketSource } from '../src/virtio/net-rx.js';
import { NetTransmitter, type NetPacketSink, type NetSendResult } from '../src/virtio/net-tx.js';
import { NetCtrl } from '../src/virtio/net-ctrl.js';
import { NetCtrlServer } from '../src/virtio/net-ctrl-server.js';
import { NetPairServer, type NetPairIo } from '../src/virtio/net-pair-server.js';
import { copyFromViews, copyToViews } from '../src/virtio/byte-views.js';
import { fakeVirtioFunction, ring } from './helpers/virtio-driver.js';

/**
 * Model tests of virtio-net (no KVM, no tap): feature negotiation by back
 * end, the header, receive chains (mergeable and not), transmit chains,
 * the control queue, and what a malformed chain or a lost back end does to
 * the device. The driver side is written out by hand over fake guest RAM
 * (helpers/virtio-driver.ts: 8-entry rings per queue).
 */

const MAC = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
const BUF = 0x10000;
const bit = (n: number): bigint => 1n << BigInt(n);
const VERSION_1 = { hi: 1 };

/** A virtio-net function over fake RAM, with its driver's helpers. */
function netFunction(o: { pairs?: number; caps?: NetBackendCaps } = {}) {
  const pairs = o.pairs ?? 1;
  const eventfds = Array.from({ length: virtioNetQueueCount(pairs) }, () => native.eventfd(0, k('EFD_NONBLOCK') | k('EFD_CLOEXEC')));
  const state = allocateVirtioNet({ mac: MAC, caps: o.caps ?? { offloads: true }, eventfds });
  const netLogs: string[] = [];
  const f = fakeVirtioFunction(virtioNetType(pairs), (ctx) => new VirtioNet(state, ctx, (m) => netLogs.push(m)));
  const net = f.t.model as VirtioNet;
  const ram = new GuestRanges(f.mem);
  const avail = new Map<number, number>();
  /** Makes one chain of `bufs` available on queue `q`, its descriptors from `first` on; returns the head. */
  const post = (q: number, first: number, bufs: ReadonlyArray<{ addr: number; len: number; write?: boolean }>): number => {
    const at = ring(q);
    bufs.forEach((b, i) => {
      const d = at.desc + 16 * (first + i);
      f.mem.writeU64(d, BigInt(b.addr));
      f.mem.writeU32(d + 8, b.len);
      f.mem.writeU16(d + 12, (b.write ? VirtqDesc.Write : 0) | (i < bufs.length - 1 ? VirtqDesc.Next : 0));
      f.mem.writeU16(d + 14, first + i + 1);
    });
    const idx = avail.get(q) ?? 0;
    f.mem.writeU16(at.avail + 4 + 2 * (idx % 8), first);
    f.mem.writeU16(at.avail + 2, idx + 1);
    avail.set(q, idx + 1);
    return first;
  };
  /** `features` (bit numbers) plus VERSION_1, then every queue enabled. */
  const start = (...features: number[]): void => {
    const lo = features.filter((b) => b < 32).reduce((m, b) => m | (1 << b), 0) >>> 0;
    f.bringUp({ lo, hi: VERSION_1.hi }, Array.from({ length: virtioNetQueueCount(pairs) }, (_, q) => q));
  };
  const close = (): void => eventfds.forEach((fd) => native.close(fd));
  return { ...f, pciState: f.state, state, net, ram, netLogs, post, start, close, avail };
}

type Net = ReturnType<typeof netFunction>;

/** Runs `fn` with a fresh virtio-net function (options `o`), closing its eventfds after. */
function withNet(fn: (n: Net) => void): void;
function withNet(o: Parameters<typeof netFunction>[0], fn: (n: Net) => void): void;
function withNet(a: Parameters<typeof netFunction>[0] | ((n: Net) => void), b?: (n: Net) => void): void {
  const n = netFunction(typeof a === 'function' ? {} : a);
  try {
    (typeof a === 'function' ? a : b!)(n);
  } finally {
    n.close();
  }
}

/** A header and a frame of `len` bytes of a pattern. */
function packet(len: number, header: Parameters<typeof encodeNetHeader>[0] = {}, seed = 1): Uint8Array {
  const p = new Uint8Array(NET_HDR_SIZE + len);
  p.set(encodeNetHeader(header));
  for (let i = 0; i < len; i++) p[NET_HDR_SIZE + i] = (i * 7 + seed * 13) & 0xff;
  return p;
}

/** A back end that hands out `packets` like a tap: the whole length even when the views hold less. */
class FakeSource implements NetPacketSource {
  reads = 0;
  constructor(readonly packets: Uint8Array[]) {}
  receive(views: readonly Uint8Array[]): number {
    const p = this.packets.shift();
    if (!p) return 0;
    this.reads++;
    copyToViews(views, 0, p);
    return p.length;
  }
}

class FakeSink implements NetPacketSink {
  sent: Uint8Array[] = [];
  room = Infinity;
  transmit(views: readonly Uint8Array[], length: number): NetSendResult {
    if (this.room <= 0) return 'busy';
    this.room--;
    const b = new Uint8Array(length);
    copyFromViews(views, 0, b);
    this.sent.push(b);
    return 'sent';
  }
}

describe('virtio-net features and header (model)', () => {
  it('offers MAC, link status and mergeable buffers always, the offloads only where the back end carries them, MQ with the control queue only with several pairs', () => {
    const always = bit(F.Mac) | bit(F.Status) | bit(F.MrgRxbuf);
    const offloads = [F.Csum, F.GuestCsum, F.GuestTso4, F.GuestTso6, F.GuestEcn, F.GuestUfo, F.HostTso4, F.HostTso6, F.HostEcn, F.HostUfo].reduce((m, b) => m | bit(b), 0n);
    expect(offeredNetFeatures({ offloads: false }, 1)).to.equal(always);
    expect(offeredNetFeatures({ offloads: true }, 1)).to.equal(always | offloads);
    expect(offeredNetFeatures({ offloads: false }, 4)).to.equal(always | bit(F.CtrlVq) | bit(F.Mq));
  });

  it('asks the tap for the offloads the driver accepted, and none without GUEST_CSUM (TSO and UFO need it, ECN needs TSO)', () => {
    const [csum, tso4, tso6, ecn, ufo] = ['TUN_F_CSUM', 'TUN_F_TSO4', 'TUN_F_TSO6', 'TUN_F_TSO_ECN', 'TUN_F_UFO'].map(k);
    const accepted = (...b: number[]): bigint => b.reduce((m, x) => m | bit(x), 0n);
    expect(tunOffloadFlags(accepted(F.GuestTso4, F.GuestUfo))).to.equal(0);
    expect(tunOffloadFlags(accepted(F.GuestCsum))).to.equal(csum);
    expect(tunOffloadFlags(accepted(F.GuestCsum, F.GuestTso4, F.GuestTso6, F.GuestEcn, F.GuestUfo))).to.equal(csum! | tso4! | tso6! | ecn! | ufo!);
    expect(tunOffloadFlags(accepted(F.GuestCsum, F.GuestEcn))).to.equal(csum);
  });

  it('lets through only packets whose offloads the driver accepted, and sizes receive space for GSO only when it takes GSO', () => {
    const plain = bit(F.MrgRxbuf);
    const tso = bit(F.GuestCsum) | bit(F.GuestTso4);
    expect(receivable({ flags: 0, gsoType: NetGso.None }, plain)).to.equal(true);
    expect(receivable({ flags: NetHdrFlag.NeedsCsum, gsoType: NetGso.None }, plain)).to.equal(false);
    expect(receivable({ flags: NetHdrFlag.NeedsCsum, gsoType: NetGso.TcpV4 }, tso)).to.equal(true);
    expect(receivable({ flags: NetHdrFlag.NeedsCsum, gsoType: NetGso.TcpV6 }, tso)).to.equal(false);
    expect(receivable({ flags: NetHdrFlag.NeedsCsum, gsoType: NetGso.TcpV4 | NetGso.Ecn }, tso)).to.equal(false);
    expect(receivable({ flags: NetHdrFlag.NeedsCsum, gsoType: NetGso.Udp }, tso | bit(F.GuestUfo))).to.equal(true);
    expect(receivable({ flags: 0, gsoType: NetGso.UdpL4 }, tso | bit(F.GuestUfo))).to.equal(false);
    expect(maxReceivePacket(plain)).to.equal(NET_HDR_SIZE + 18 + 1500);
    expect(maxReceivePacket(tso)).to.equal(NET_HDR_SIZE + 18 + 65535);
  });

  it('encodes and decodes the 12-byte header, little-endian, num_buffers last', () => {
    const h = { flags: NetHdrFlag.NeedsCsum, gsoType: NetGso.TcpV4, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16, numBuffers: 3 };
    const bytes = encodeNetHeader(h);
    expect(Array.from(bytes)).to.deep.equal([1, 1, 54, 0, 0xa8, 0x05, 34, 0, 16, 0, 3, 0]);
    expect(decodeNetHeader(bytes)).to.deep.equal(h);
  });
});

describe('virtio-net device (model)', () => {
  it('is device 1, class Ethernet, with its MAC, link status and queue pairs in the configuration space', () => {
    withNet({ pairs: 2 }, (n) => {
      expect(n.t.configRead(0x02, 2)).to.equal(0x1041);
      expect(n.t.configRead(0x09, 4) & 0xffffff).to.equal(0x020000);
      expect(n.r(0x12, 2), 'two pairs and the control queue').to.equal(5);
      expect(MAC.map((_, i) => n.r(0x2000 + i, 1))).to.deep.equal(MAC);
      expect(n.r(0x2006, 2)).to.equal(NetStatus.LinkUp);
      expect(n.r(0x2008, 2)).to.equal(2);
    });
  });

  it('signals a link going down as a configuration change: status reads 0, the generation moves, the config interrupt fires', () => {
    withNet((n) => {
      n.start(F.Mac, F.Status);
      const generation = n.r(0x15, 1);
      n.levels.length = 0;
      n.net.setLink(false);
      expect(n.r(0x2006, 2)).to.equal(0);
      expect(n.r(0x15, 1)).to.not.equal(generation);
      expect(n.levels, 'INTx raised for the change').to.deep.include([16, true]);
      expect(n.r(0x1000, 1) & 2, 'ISR: configuration change').to.equal(2);
      n.net.setLink(false);
      expect(n.r(0x1000, 1), 'no second change for the same state').to.equal(0);
    });
  });
});

describe('virtio-net receive (model)', () => {
  /** Eight one-descriptor receive chains of `len` bytes at BUF + i * 0x400, the ring full. */
  function postEight(n: Net, len: number): void {
    for (let i = 0; i < 8; i++) n.post(0, i, [{ addr: BUF + i * 0x400, len, write: true }]);
  }
  const usedBytes = (n: Net, head: number, len: number): Uint8Array => n.mem.read(BUF + head * 0x400, len).slice();

  it('spreads a packet over as many mergeable buffers as it needs, in order, with num_buffers in its header', () => {
    withNet((n) => {
      n.start(F.MrgRxbuf);
      postEight(n, 256);
      const rx = new NetReceiver(n.t.queues[0]!, n.ram);
      const p = packet(600);
      const r = rx.receive(new FakeSource([p]), netRxFeatures(n.net.acceptedFeatures()), 64);
      expect(r).to.include({ packets: 1, bytes: 600, dropped: 0, interrupt: true });
      expect(n.usedIdx(0)).to.equal(3);
      expect([0, 1, 2].map((i) => n.used(0, i))).to.deep.equal([[0, 256], [1, 256], [2, 100]]);
      const got = new Uint8Array([...usedBytes(n, 0, 256), ...usedBytes(n, 1, 256), ...usedBytes(n, 2, 100)]);
      expect(decodeNetHeader(got).numBuffers).to.equal(3);
      got[NetHdr.NumBuffers] = 0;
      expect(Buffer.from(got).equals(Buffer.from(p))).to.equal(true);
      // The rest stay held: the next packet starts in the next buffer once the driver has reposted the used ones.
      expect(rx.heldChains).to.equal(5);
      for (const i of [0, 1, 2]) n.post(0, i, [{ addr: BUF + i * 0x400, len: 256, write: true }]);
      rx.receive(new FakeSource([packet(100, {}, 2)]), netRxFeatures(n.net.acceptedFeatures()), 64);
      expect(n.used(0, 3)).to.deep.equal([3, NET_HDR_SIZE + 100]);
      expect(decodeNetHeader(usedBytes(n, 3, 12)).numBuffers).to.equal(1);
    });
  });

  it('reads a packet into a chain of several descriptors as one scatter list', () => {
    withNet((n) => {
      n.start();
      n.post(0, 0, [{ addr: BUF, len: 5, write: true }, { addr: BUF + 0x100, len: 30, write: true }, { addr: BUF + 0x200, len: 1600, write: true }]);
      const rx = new NetReceiver(n.t.queues[0]!, n.ram);
      const p = packet(200);
      expect(rx.receive(new FakeSource([p]), netRxFeatures(n.net.acceptedFeatures()), 64).packets).to.equal(1);
      expect(n.used(0, 0)).to.deep.equal([0, 212]);
      const got = new Uint8Array([...n.mem.read(BUF, 5), ...n.mem.read(BUF + 0x100, 30), ...n.mem.read(BUF + 0x200, 177)]);
      expect(decodeNetHeader(got).numBuffers, 'num_buffers is 1 without mergeable buffers').to.equal(1);
      got[NetHdr.NumBuffers] = 0;
      expect(Buffer.from(got).equals(Buffer.from(p))).to.equal(true);
    });
  });

  it('without mergeable buffers puts each packet in one chain, drops one that does not fit and gives that chain to the next', () => {
    withNet((n) => {
      n.start();
      postEight(n, 200);
      const rx = new NetReceiver(n.t.queues[0]!, n.ram);
      const src = new FakeSource([packet(150, {}, 1), packet(300, {}, 2), packet(100, {}, 3)]);
      const r = rx.receive(src, netRxFeatures(n.net.acceptedFeatures()), 64);
      expect(r).to.include({ packets: 2, dropped: 1 });
      expect([n.used(0, 0), n.used(0, 1)]).to.deep.equal([[0, 162], [1, 112]]);
      expect(n.mem.read(BUF + 0x400 + NET_HDR_SIZE, 4)).to.deep.equal(packet(100, {}, 3).subarray(NET_HDR_SIZE, NET_HDR_SIZE + 4));
    });
  });

  it('reads nothing from the back end while the driver has too few buffers, and asks to be notified when it adds some', () => {
    withNet((n) => {
      n.start(F.MrgRxbuf, 29);
      n.post(0, 0, [{ addr: BUF, len: 1024, write: true }]); // less than one full-size frame
      const rx = new NetReceiver(n.t.queues[0]!, n.ram);
      const src = new FakeSource([packet(60)]);
      const r = rx.receive(src, netRxFeatures(n.net.acceptedFeatures()), 64);
      expect(r).to.include({ packets: 0, starved: true });
      expect(src.reads).to.equal(0);
      expect(n.mem.readU16(ring(0).used + 4 + 8 * 8), 'avail_event: notify at the next buffer').to.equal(1);
      n.post(0, 1, [{ addr: BUF + 0x400, len: 1024, write: true }]);
      expect(rx.receive(src, netRxFeatures(n.net.acceptedFeatures()), 64)).to.include({ packets: 1 });
      expect(src.reads).to.equal(1);
    });
  });

  it('drops packets with offloads the driver refused, and clears DATA_VALID when it did not take checksum offload', () => {
    withNet((n) => {
      n.start(F.MrgRxbuf);
      postEight(n, 256);
      const rx = new NetReceiver(n.t.queues[0]!, n.ram);
      const src = new FakeSource([packet(80, { flags: NetHdrFlag.NeedsCsum, csumStart: 34, csumOffset: 6 }), packet(80, { gsoType: NetGso.TcpV4, gsoSize: 1448 }), packet(80, { flags: NetHdrFlag.DataValid })]);
      expect(rx.receive(src, netRxFeatures(n.net.acceptedFeatures()), 64)).to.include({ packets: 1, dropped: 2 });
      expect(decodeNetHeader(usedBytes(n, 0, 12)).flags).to.equal(0);
    });
  });

  it('rejects a receive chain with a device-readable buffer, or smaller than the header, as malformed', () => {
    for (const bufs of [[{ addr: BUF, len: 64 }, { addr: BUF + 0x100, len: 2000, write: true }], [{ addr: BUF, len: 11, write: true }]]) {
      withNet((n) => {
        n.start();
        n.post(0, 0, bufs);
        const rx = new NetReceiver(n.t.queues[0]!, n.ram);
        expect(() => rx.receive(new FakeSource([packet(60)]), netRxFeatures(n.net.acceptedFeatures()), 64)).to.throw(VirtqueueError);
      });
    }
  });

  it('forgets the buffers it held when the driver resets the device', () => {
    withNet((n) => {
      n.start(F.MrgRxbuf);
      postEight(n, 256);
      const rx = new NetReceiver(n.t.queues[0]!, n.ram);
      rx.receive(new FakeSource([packet(60)]), netRxFeatures(n.net.acceptedFeatures()), 64);
      expect(rx.heldChains, 'enough for a full-size frame').to.equal(6);
      n.w8(0x14, 0); // reset
      n.avail.clear();
      n.start(F.MrgRxbuf);
      for (let i = 0; i < 8; i++) n.post(0, i, [{ addr: BUF + 0x4000 + i * 0x400, len: 256, write: true }]);
      expect(rx.receive(new FakeSource([packet(60, {}, 9)]), netRxFeatures(n.net.acceptedFeatures()), 64).packets).to.equal(1);
      expect(n.usedIdx(0)).to.equal(1);
      expect(n.mem.read(BUF + 0x4000 + NET_HDR_SIZE, 4)).to.deep.equal(packet(60, {}, 9).subarray(NET_HDR_SIZE, NET_HDR_SIZE + 4));
    });
  });
});

describe('virtio-net transmit (model)', () => {
  it('sends each chain\'s readable bytes, header then frame over several descriptors, and returns the chain with length 0', () => {
    withNet((n) => {
      n.start();
      const p = packet(300);
      n.mem.write(BUF, p.subarray(0, 12));
      n.mem.write(BUF + 0x100, p.subarray(12, 100));
      n.mem.write(BUF + 0x300, p.subarray(100));
      n.post(1, 0, [{ addr: BUF, len: 12 }, { addr: BUF + 0x100, len: 88 }, { addr: BUF + 0x300, len: 212 }]);
      const sink = new FakeSink();
      const r = new NetTransmitter(n.t.queues[1]!, n.ram).transmit(sink, 64);
      expect(r).to.include({ packets: 1, bytes: 300, dropped: 0, interrupt: true, busy: false });
      expect(sink.sent.map((b) => Buffer.from(b).equals(Buffer.from(p)))).to.deep.equal([true]);
      expect(n.used(1, 0)).to.deep.equal([0, 0]);
    });
  });

  it('keeps a packet the back end has no room for and sends it first once there is room, in order', () => {
    withNet((n) => {
      n.start();
      for (let i = 0; i < 3; i++) {
        n.mem.write(BUF + i * 0x100, packet(40, {}, i));
        n.post(1, i, [{ addr: BUF + i * 0x100, len: 52 }]);
      }
      const sink = new FakeSink();
      sink.room = 1;
      const tx = new NetTransmitter(n.t.queues[1]!, n.ram);
      expect(tx.transmit(sink, 64)).to.include({ packets: 1, busy: true });
      expect(n.usedIdx(1), 'the waiting packet is not returned yet').to.equal(1);
      sink.room = Infinity;
      expect(tx.transmit(sink, 64)).to.include({ packets: 2, busy: false });
      expect(sink.sent.map((b) => b[NET_HDR_SIZE])).to.deep.equal([0, 1, 2].map((i) => packet(40, {}, i)[NET_HDR_SIZE]));
      expect(n.usedIdx(1)).to.equal(3);
    });
  });

  it('rejects a transmit chain shorter than the header as malformed', () => {
    withNet((n) => {
      n.start();
      n.post(1, 0, [{ addr: BUF, len: 8 }]);
      expect(() => new NetTransmitter(n.t.queues[1]!, n.ram).transmit(new FakeSink(), 64)).to.throw(VirtqueueError, /less than the 12-byte header/);
    });
  });
});

describe('virtio-net queue pairs, control queue and failures (model)', () => {
  /** A back end for a pair server: `packets` to receive, what was sent, and whether it is gone. */
  class FakePairIo extends FakeSink implements NetPairIo {
    readonly fd = -1;
    gone = false;
    why?: string;
    constructor(readonly packets: Uint8Array[] = []) {
      super();
    }
    receive(views: readonly Uint8Array[]): number {
      if (this.gone) return -1;
      return new FakeSource(this.packets).receive(views);
    }
  }

  it('answers VQ_PAIRS_SET within 1..max with OK and the new count, anything else with ERR; a reset goes back to one pair', () => {
    withNet({ pairs: 2 }, (n) => {
      n.start(F.CtrlVq, F.Mq);
      const ctrl = new NetCtrlServer(n.t, n.net, n.ram);
      expect(ctrl.queue).to.equal(4);
      const command = (i: number, bytes: number[]): number => {
        n.mem.write(BUF + i * 0x100, Uint8Array.from(bytes));
        n.post(4, 2 * i, [{ addr: BUF + i * 0x100, len: bytes.length }, { addr: BUF + i * 0x100 + 0x80, len: 1, write: true }]);
        ctrl.serve();
        return n.mem.readU8(BUF + i * 0x100 + 0x80);
      };
      expect(n.net.activePairs, 'multiqueue starts off').to.equal(1);
      expect(command(0, [NetCtrl.ClassMq, NetCtrl.MqVqPairsSet, 2, 0])).to.equal(NetCtrl.Ok);
      expect(n.net.activePairs).to.equal(2);
      expect(command(1, [NetCtrl.ClassMq, NetCtrl.MqVqPairsSet, 1, 0])).to.equal(NetCtrl.Ok);
      expect(n.net.activePairs).to.equal(1);
      expect(command(2, [NetCtrl.ClassMq, NetCtrl.MqVqPairsSet, 3, 0])).to.equal(NetCtrl.Err);
      expect(command(3, [NetCtrl.ClassMq, NetCtrl.MqVqPairsSet, 0, 0])).to.equal(NetCtrl.Err);
      expect(command(0, [0, 0, 1])).to.equal(NetCtrl.Err); // VIRTIO_NET_CTRL_RX is not offered
      expect(n.used(4, 0)).to.deep.equal([0, 1]);
      expect(command(1, [NetCtrl.ClassMq, NetCtrl.MqVqPairsSet, 2, 0])).to.equal(NetCtrl.Ok);
      expect(n.net.activePairs).to.equal(2);
      n.w8(0x14, 0);
      expect(n.net.activePairs, 'after a reset').to.equal(1);
    });
  });

  it('sets DEVICE_NEEDS_RESET on a malformed receive chain, logs why, and stops serving the device until it is reset', () => {
    withNet((n) => {
      n.start(F.MrgRxbuf);
      const io = new FakePairIo([packet(60)]);
      const pair = new NetPairServer(0, n.t, n.net, io, n.ram, n.state);
      n.post(0, 0, [{ addr: BUF, len: 4, write: true }]);
      pair.serve({ rx: true, tx: false });
      expect(n.t.status() & VirtioStatus.DeviceNeedsReset).to.equal(VirtioStatus.DeviceNeedsReset);
      expect(n.logs.join('\n')).to.match(/virtio-net: receive chain 0 holds 4 bytes, less than the 12-byte header; the device needs a reset/);
      expect(io.packets.length, 'nothing was taken from the back end').to.equal(1);
      expect(pair.backendEvents(1, 4), 'the back end is no longer polled').to.equal(0);
    });
  });

  it('takes the link down (a configuration change) when the back end goes away, and drops what the driver sends', () => {
    withNet((n) => {
      n.start(F.MrgRxbuf, F.Status);
      const io = new FakePairIo();
      const warnings: string[] = [];
      const pair = new NetPairServer(0, n.t, n.net, io, n.ram, n.state, (m) => warnings.push(m));
      for (let i = 0; i < 8; i++) n.post(0, i, [{ addr: BUF + i * 0x400, len: 256, write: true }]);
      io.gone = true;
      io.why = 'the tap device is gone (EBADFD)';
      pair.serve({ rx: true, tx: false });
      expect(n.net.linkUp).to.equal(false);
      expect(n.r(0x2006, 2)).to.equal(0);
      expect(warnings).to.deep.equal(['the tap device is gone (EBADFD); the link is down']);
      n.mem.write(BUF + 0x4000, packet(40));
      n.post(1, 0, [{ addr: BUF + 0x4000, len: 52 }]);
      const dropAll: NetPacketSink = { transmit: () => 'dropped' };
      Object.assign(io, { transmit: dropAll.transmit });
      pair.serve({ rx: false, tx: true });
      expect(n.usedIdx(1), 'the driver gets its buffer back').to.equal(1);
      expect(new Float64Array(n.state.stats)[2], 'counted as dropped').to.equal(1);
    });
  });
});

describe('virtio-net in a snapshot (model)', () => {
  it('gives the receive chains it holds back to the ring: the restored device fills the same buffers, in the order the driver posted them', () => {
    withNet((n) => {
      n.start(F.MrgRxbuf);
      for (let i = 0; i < 8; i++) n.post(0, i, [{ addr: BUF + i * 0x400, len: 256, write: true }]);
      const f = (): ReturnType<typeof netRxFeatures> => netRxFeatures(n.net.acceptedFeatures());
      const rx = new NetReceiver(n.t.queues[0]!, n.ram);
      expect(rx.receive(new FakeSource([packet(600)]), f(), 64).packets).to.equal(1);
      expect(rx.heldChains, 'taken for the next packet, not filled').to.equal(5);
      const saved = VirtioPciTransport.save(n.pciState);
      expect(saved.queue0!.fields).to.include({ lastAvail: 3, usedIdx: 3 });
      // The restored process: the saved state loaded, a new receiver that holds nothing.
      VirtioPciTransport.load(n.pciState, saved);
      const restored = new NetReceiver(n.t.queues[0]!, n.ram);
      // The driver reposts the three it got back; with the five given back that is room for a whole packet again.
      for (const i of [0, 1, 2]) n.post(0, i, [{ addr: BUF + i * 0x400, len: 256, write: true }]);
      expect(restored.receive(new FakeSource([packet(100, {}, 2)]), f(), 64)).to.include({ packets: 1, starved: false });
      expect(n.used(0, 3)).to.deep.equal([3, NET_HDR_SIZE + 100]);
      expect(n.mem.read(BUF + 3 * 0x400 + NET_HDR_SIZE, 4)).to.deep.equal(packet(100, {}, 2).subarray(NET_HDR_SIZE, NET_HDR_SIZE + 4));
    });
  });

  it('gives back a transmit packet its back end had no room for: the restored device sends it', () => {
    withNet((n) => {
      n.start();
      const p = packet(64, {}, 5);
      n.mem.write(BUF, p);
      n.post(1, 0, [{ addr: BUF, len: p.length }]);
      const full = new FakeSink();
      full.room = 0;
      expect(new NetTransmitter(n.t.queues[1]!, n.ram).transmit(full, 64)).to.include({ packets: 0, busy: true });
      const saved = VirtioPciTransport.save(n.pciState);
      expect(saved.queue1!.fields).to.include({ lastAvail: 0, usedIdx: 0 });
      VirtioPciTransport.load(n.pciState, saved);
      const sink = new FakeSink();
      expect(new NetTransmitter(n.t.queues[1]!, n.ram).transmit(sink, 64).packets).to.equal(1);
      expect(sink.sent.map((b) => Buffer.from(b).equals(Buffer.from(p)))).to.deep.equal([true]);
      expect(n.used(1, 0)).to.deep.equal([0, 0]);
    });
  });

  it('refuses to save a queue with a chain in service (a device that completes out of order is drained first)', () => {
    withNet((n) => {
      n.start();
      const q = n.t.queues[0]!;
      q.withLock(() => q.beginService());
      expect(() => VirtioPciTransport.save(n.pciState)).to.throw(/a queue with 1 chains in service cannot be saved/);
      q.withLock(() => q.endService());
      expect(() => VirtioPciTransport.save(n.pciState)).to.not.throw();
    });
  });

  it('saves the link status and the active queue pairs, and loads them onto a new back end, whose attached tap files stay its own', () => {
    withNet({ pairs: 2 }, (n) => {
      n.start(F.CtrlVq, F.Mq);
      expect(n.net.setActivePairs(2)).to.equal(true);
      n.net.setLink(false);
      const saved = saveVirtioNet(n.state);
      withNet({ pairs: 2 }, (fresh) => {
        const attachedBefore = new Int32Array(fresh.state.words)[3];
        loadVirtioNet(fresh.state, saved, null);
        expect(fresh.net.activePairs).to.equal(2);
        expect(fresh.net.linkUp).to.equal(false);
        expect(new Int32Array(fresh.state.words)[3], 'the attached tap files are the new back end\'s').to.equal(attachedBefore);
      });
      withNet({ pairs: 1 }, (smaller) => {
        expect(() => loadVirtioNet(smaller.state, saved, null)).to.throw(StateLayoutError, /has 2 active queue pairs, this one at most 1/);
      });
    });
  });
});
