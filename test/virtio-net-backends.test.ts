import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { native, k } from '../src/kvm/addon.js';
import { NodevisorError } from '../src/kvm/errors.js';
import { StreamPacketIo, STREAM_MAX_FRAME } from '../src/virtio/net-stream.js';
import { NET_HDR_SIZE, encodeNetHeader } from '../src/virtio/net-header.js';
import { openTap, setTapQueueAttached, TapQueueIo } from '../src/virtio/net-tap.js';
import { NetNamespace, netOrSkip, uniqueIfName } from './helpers/netns.js';

/**
 * virtio-net's back ends without a guest: QEMU's stream framing (what
 * passt speaks) over a socket pair, and tap devices (as root: opening,
 * its errors, and packets through the vnet header).
 */

/** Reads what `fd` (non-blocking) has now. */
function drain(fd: number): Buffer {
  const chunks: Buffer[] = [];
  for (;;) {
    const b = Buffer.alloc(1 << 16);
    const n = native.readv(fd, [b]);
    if (n <= 0) return Buffer.concat(chunks);
    chunks.push(b.subarray(0, n));
  }
}

function frame(len: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: len }, (_, i) => (i * 31 + seed) & 0xff));
}

const lengthPrefixed = (f: Buffer): Buffer => Buffer.concat([Buffer.from([f.length >>> 24, (f.length >>> 16) & 0xff, (f.length >>> 8) & 0xff, f.length & 0xff]), f]);

describe('virtio-net stream back end (QEMU stream framing, as passt speaks it)', () => {
  let ours: number;
  let peer: number;
  let io: StreamPacketIo;
  beforeEach(() => {
    [ours, peer] = native.socketpair();
    native.setNonBlocking(peer, true);
    io = new StreamPacketIo(ours);
  });
  afterEach(() => {
    native.close(ours);
    native.close(peer);
  });

  it('splits the peer\'s stream into frames, however it arrives, each with an all-zero virtio-net header', () => {
    const frames = [frame(60, 1), frame(1514, 2), frame(42, 3)];
    const stream = Buffer.concat(frames.map(lengthPrefixed));
    // In odd pieces: a length split across writes, a frame split across writes.
    for (const [a, b] of [[0, 3], [3, 70], [70, 900], [900, stream.length]]) native.writev(peer, [stream.subarray(a, b)]);
    const got: Buffer[] = [];
    for (;;) {
      const buf = Buffer.alloc(2000);
      const n = io.receive([buf.subarray(0, 7), buf.subarray(7)]);
      if (n <= 0) break;
      expect(buf.subarray(0, NET_HDR_SIZE).every((b) => b === 0)).to.equal(true);
      got.push(Buffer.from(buf.subarray(NET_HDR_SIZE, n)));
    }
    expect(got.map((g) => g.toString('hex'))).to.deep.equal(frames.map((f) => f.toString('hex')));
  });

  it('sends frames without their virtio-net header, each after its length, written out per batch', () => {
    const frames = [frame(60, 4), frame(1000, 5)];
    for (const f of frames) {
      const hdr = Buffer.from(encodeNetHeader({ numBuffers: 7 }));
      expect(io.transmit([hdr, f.subarray(0, 10), f.subarray(10)], NET_HDR_SIZE + f.length)).to.equal('sent');
    }
    expect(drain(peer).length, 'nothing before the flush').to.equal(0);
    io.flush();
    expect(drain(peer).toString('hex')).to.equal(Buffer.concat(frames.map(lengthPrefixed)).toString('hex'));
  });

  it('says "busy" once the peer stops reading and its socket and our buffer are full, and takes frames again after the peer reads', () => {
    const f = frame(1514, 6);
    const hdr = Buffer.alloc(NET_HDR_SIZE);
    let sent = 0;
    while (io.transmit([hdr, f], NET_HDR_SIZE + f.length) === 'sent') sent++;
    expect(sent).to.be.greaterThan(100);
    expect(io.pendingOutput).to.be.greaterThan(0);
    let got = drain(peer).length;
    io.flush();
    got += drain(peer).length;
    for (let i = 0; i < 5 && io.pendingOutput; i++) {
      io.flush();
      got += drain(peer).length;
    }
    expect(io.pendingOutput).to.equal(0);
    expect(got).to.equal(sent * (4 + f.length));
    expect(io.transmit([hdr, f], NET_HDR_SIZE + f.length)).to.equal('sent');
  });

  it('drops frames it cannot frame (shorter than an Ethernet header or longer than 64 KiB)', () => {
    const hdr = Buffer.alloc(NET_HDR_SIZE);
    expect(io.transmit([hdr, Buffer.alloc(10)], NET_HDR_SIZE + 10)).to.equal('dropped');
    const big = Buffer.alloc(STREAM_MAX_FRAME + 1);
    expect(io.transmit([hdr, big], NET_HDR_SIZE + big.length)).to.equal('dropped');
  });

  it('gives up on a peer that sends an impossible length (a stream cannot be resynchronised), saying why', () => {
    native.writev(peer, [Buffer.from([0, 0x10, 0, 0, 1, 2, 3])]);
    expect(io.receive([Buffer.alloc(2000)])).to.equal(-1);
    expect(io.gone).to.equal(true);
    expect(io.why).to.equal('the user-mode network peer failed: the peer sent a frame length of 1048576');
  });

  it('is gone, quietly, when the peer closes: its exit is reported by whoever watches it', () => {
    native.writev(peer, [lengthPrefixed(frame(60, 7))]);
    native.close(peer);
    peer = native.socketpair()[0]; // something for afterEach to close
    const buf = Buffer.alloc(2000);
    expect(io.receive([buf]), 'what was sent before the close still arrives').to.equal(NET_HDR_SIZE + 60);
    expect(io.receive([buf])).to.equal(-1);
    expect(io).to.include({ gone: true, why: '' });
    expect(io.transmit([Buffer.alloc(NET_HDR_SIZE), frame(60, 8)], NET_HDR_SIZE + 60)).to.equal('dropped');
  });
});

describe('virtio-net tap back end (needs root)', function () {
  before(function () {
    netOrSkip(this, 'namespaces');
  });

  it('creates a tap that carries packets with their virtio-net header both ways, and disappears with its last file', () => {
    const name = uniqueIfName();
    const fds = openTap(name, 1);
    try {
      const flags = Number.parseInt(execFileSync('cat', [`/sys/class/net/${name}/tun_flags`], { encoding: 'utf8' }), 16);
      expect(flags & k('IFF_VNET_HDR'), 'IFF_VNET_HDR').to.equal(k('IFF_VNET_HDR'));
      expect(flags & k('IFF_TAP')).to.equal(k('IFF_TAP'));
      const io = new TapQueueIo(fds[0]!);
      // A frame written with a header goes out (the tap is down: EIO, a drop, as on a wire without carrier).
      expect(io.transmit([Buffer.alloc(NET_HDR_SIZE), frame(60, 1)])).to.equal('dropped');
      execFileSync('ip', ['link', 'set', 'dev', name, 'up']);
      expect(io.transmit([Buffer.alloc(NET_HDR_SIZE), frame(60, 1)])).to.equal('sent');
      expect(io.receive([Buffer.alloc(2000)]), 'nothing queued for us').to.be.at.least(0);
    } finally {
      for (const fd of fds) native.close(fd);
    }
    expect(() => execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' })).to.throw();
  });

  it('says when a tap is busy, or made without multi_queue for several queue pairs', () => {
    const name = uniqueIfName();
    execFileSync('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap']);
    try {
      expect(() => openTap(name, 2)).to.throw(NodevisorError, new RegExp(`tap device ${name}: it was created without multi_queue, so it cannot carry 2 queue pairs: use queues=1, or recreate it with \`ip tuntap add ${name} mode tap multi_queue\``));
      const fds = openTap(name, 1);
      try {
        expect(() => openTap(name, 1)).to.throw(NodevisorError, /it is busy: another process has it open/);
      } finally {
        for (const fd of fds) native.close(fd);
      }
    } finally {
      execFileSync('ip', ['tuntap', 'del', 'dev', name, 'mode', 'tap']);
    }
  });

  it('sees a tap whose namespace is deleted under it as gone, saying so', async () => {
    const name = uniqueIfName();
    const fds = openTap(name, 1);
    const ns = NetNamespace.create();
    try {
      ns.adopt(name, { address: '10.79.9.1/24' });
      const io = new TapQueueIo(fds[0]!);
      expect(io.receive([Buffer.alloc(2000)]), 'nothing yet, but there').to.be.at.least(0);
      ns.delete();
      // The kernel tears a namespace down in the background: until then the tap still reads as empty.
      let r = 0;
      for (let i = 0; i < 500 && r === 0; i++) {
        r = io.receive([Buffer.alloc(2000)]);
        if (r === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      expect(r).to.equal(-1);
      expect(io.gone).to.equal(true);
      expect(io.why).to.match(/^the tap device is gone \((EBADFD|EIO|ENODEV)[^)]*\)$/);
      expect(io.transmit([Buffer.alloc(NET_HDR_SIZE), frame(60, 3)])).to.equal('dropped');
    } finally {
      ns.delete();
      for (const fd of fds) native.close(fd);
    }
  });

  it('opens one file per queue pair of a multi_queue tap, all but the first detached until the driver asks for more', () => {
    const name = uniqueIfName();
    const fds = openTap(name, 3);
    // The kernel shows a queue per attached file.
    const queues = (): string[] => readdirSync(`/sys/class/net/${name}/queues`).sort();
    try {
      expect(fds).to.have.length(3);
      expect(queues()).to.deep.equal(['rx-0', 'tx-0']);
      setTapQueueAttached(fds[1]!, true);
      setTapQueueAttached(fds[2]!, true);
      expect(queues()).to.deep.equal(['rx-0', 'rx-1', 'rx-2', 'tx-0', 'tx-1', 'tx-2']);
      setTapQueueAttached(fds[2]!, false);
      expect(queues()).to.deep.equal(['rx-0', 'rx-1', 'tx-0', 'tx-1']);
    } finally {
      for (const fd of fds) native.close(fd);
    }
  });
});
