import { expect } from 'chai';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { constants as os, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GuestMemory, GuestMemoryError } from '../src/memory/guest-memory.js';
import { GuestRanges } from '../src/virtio/guest-ranges.js';
import { executeBlkRequest, BlkRequestType, BlkStatus, SECTOR_SIZE, type BlkDisk } from '../src/virtio/blk-request.js';
import { BlkUringEngine, MAX_VIEWS_PER_OP, type BlkRing } from '../src/virtio/blk-uring.js';
import type { DescriptorChain, VirtqBuffer } from '../src/virtio/queue.js';
import { IoUring, ioUringAvailability, setupFailure, type IoUringCompletion } from '../src/kvm/io-uring.js';
import { native } from '../src/kvm/addon.js';
import { errnoCode, NodevisorError } from '../src/kvm/errors.js';
import { resolveDiskAio } from '../src/vm/disk-images.js';

/**
 * virtio-blk requests through io_uring against the synchronous path, no
 * KVM: every request runs on both, each on its own copy of the image and
 * of guest RAM, and the used lengths, every byte of RAM, every byte of the
 * image and the file errors reported must be the same. The real ring
 * covers what the kernel does (short reads at the end of a shrunk file,
 * ENOSPC, EBADF); a scripted ring covers what the kernel rarely does on
 * demand (transfers cut short, completions out of order, a full
 * completion queue).
 */

const HEADER = 0x1000;
const SEGMENTS = 0x2000;
const STATUS = 0x3000;
/** Two adjacent RAM regions, so a buffer can straddle them (as guest RAM is split every 2 GiB). */
const REGION = 0x40000;

/** One request: the header, device-readable data (writes, segments) and device-writable buffers (reads, GET_ID), then the status byte. */
interface Req {
  type: number;
  sector?: number;
  readable?: VirtqBuffer[];
  writable?: VirtqBuffer[];
  /** Leave out the status byte (a chain with nothing device-writable). */
  noStatus?: boolean;
  headerLen?: number;
  /** Written into RAM before the request (segments of discard/write-zeroes, data of writes). */
  put?: Array<[gpa: number, bytes: Uint8Array]>;
}

interface Side {
  mem: GuestMemory;
  ram: GuestRanges;
  disk: BlkDisk;
  errors: string[];
  path: string;
}

function chainOf(r: Req): DescriptorChain {
  const readable = [{ addr: HEADER, len: r.headerLen ?? 16 }, ...(r.readable ?? [])];
  const writable = [...(r.writable ?? []), ...(r.noStatus ? [] : [{ addr: STATUS, len: 1 }])];
  const sum = (a: VirtqBuffer[]): number => a.reduce((n, b) => n + b.len, 0);
  return { head: 7, readable, writable, readableLength: sum(readable), writableLength: sum(writable) };
}

function prepare(side: Side, r: Req): void {
  side.mem.writeU32(HEADER, r.type);
  side.mem.writeU32(HEADER + 4, 0);
  side.mem.writeU64(HEADER + 8, BigInt(r.sector ?? 0));
  side.mem.writeU8(STATUS, 0xee);
  for (const [gpa, bytes] of r.put ?? []) side.mem.write(gpa, bytes);
}

function segments(segs: Array<[sector: number, count: number, flags: number]>): Pick<Req, 'readable' | 'put'> {
  const b = Buffer.alloc(16 * segs.length);
  segs.forEach(([sector, count, flags], i) => {
    b.writeBigUInt64LE(BigInt(sector), 16 * i);
    b.writeUInt32LE(count, 16 * i + 8);
    b.writeUInt32LE(flags, 16 * i + 12);
  });
  return { readable: [{ addr: SEGMENTS, len: b.length }], put: [[SEGMENTS, b]] };
}

/** Deterministic bytes: what guest RAM and images start with. */
function noise(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

interface DiskSetup {
  image?: Buffer;
  readonly?: boolean;
  /** The size the guest sees, when it is not the image's (a file that shrank after it was opened). */
  size?: number;
  /** A special file to use instead of an image (/dev/full: every write fails with ENOSPC). */
  special?: string;
  /** open(2) flags for the image (default: read-write unless readonly). */
  flags?: string;
}

describe('virtio-blk through io_uring (no KVM)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nodevisor-blk-uring-'));
  const fds: number[] = [];
  let ring: IoUring | undefined;
  after(() => {
    ring?.close();
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  let sides = 0;
  function side(d: DiskSetup): Side {
    const mem = new GuestMemory([
      { gpa: 0, buffer: new SharedArrayBuffer(REGION) },
      { gpa: REGION, buffer: new SharedArrayBuffer(REGION) },
    ]);
    mem.write(0, noise(REGION, 0xa11ce));
    mem.write(REGION, noise(REGION, 0xb0b));
    const path = d.special ?? join(dir, `image-${sides++}.img`);
    const image = d.image ?? noise(64 * 1024, 0xd15c);
    if (!d.special) writeFileSync(path, image);
    const fd = openSync(path, d.flags ?? (d.readonly ? 'r' : 'r+'));
    fds.push(fd);
    return { mem, ram: new GuestRanges(mem), path, errors: [], disk: { fd, size: d.size ?? image.length, readonly: d.readonly ?? false, id: 'uring-test.img' } };
  }

  const report = (s: Side) => (what: string, e: Error) => s.errors.push(`${what}: ${errnoCode(e)}`);

  function runSync(s: Side, r: Req): number {
    prepare(s, r);
    return executeBlkRequest(s.ram, s.disk, chainOf(r), report(s));
  }

  function runUring(s: Side, r: Req, engineRing: BlkRing): number {
    prepare(s, r);
    const engine = new BlkUringEngine(engineRing, s.ram, s.disk, { onFileError: report(s) });
    engine.start(3, chainOf(r), 5);
    const done = engine.drain();
    expect(done.length, 'one request, one completion').to.equal(1);
    expect(done[0]).to.include({ queue: 3, head: 7, epoch: 5 });
    expect(engine.inFlight).to.equal(0);
    return done[0]!.used;
  }

  /** Runs `reqs` in order on both paths and expects the same results byte for byte; returns the synchronous side for further checks. */
  function expectSame(d: DiskSetup, reqs: Req[], engineRing: () => BlkRing): Side {
    const a = side(d);
    const b = side(d);
    reqs.forEach((r, i) => {
      const used = runSync(a, r);
      expect(runUring(b, r, engineRing()), `request ${i} (type ${r.type}): used length`).to.equal(used);
      expect(b.mem.readU8(STATUS), `request ${i}: status`).to.equal(a.mem.readU8(STATUS));
    });
    expect(Buffer.from(b.mem.read(0, REGION)).equals(Buffer.from(a.mem.read(0, REGION))), 'guest RAM, region 0').to.equal(true);
    expect(Buffer.from(b.mem.read(REGION, REGION)).equals(Buffer.from(a.mem.read(REGION, REGION))), 'guest RAM, region 1').to.equal(true);
    if (!d.special) expect(readFileSync(b.path).equals(readFileSync(a.path)), 'image file').to.equal(true);
    expect(b.errors, 'file errors reported').to.deep.equal(a.errors);
    return a;
  }

  const { In, Out, Flush, GetId, Discard, WriteZeroes } = BlkRequestType;
  const data = (addr: number, bytes: Uint8Array): Pick<Req, 'readable' | 'put'> => ({ readable: [{ addr, len: bytes.length }], put: [[addr, bytes]] });
  /** Requests of every kind, valid and not, that both paths must answer alike. */
  const everyKind: Array<[string, DiskSetup, Req[], ((sync: Side) => void)?]> = [
    [
      'reads: one buffer, several, unaligned ones, one across the two RAM regions, the last sector; past and across the end; not whole sectors',
      {},
      [
        { type: In, sector: 8, writable: [{ addr: 0x8000, len: 2048 }] },
        { type: In, sector: 1, writable: [{ addr: 0x9003, len: 100 }, { addr: 0xa001, len: 924 }, { addr: 0xb000, len: 512 }] },
        { type: In, sector: 20, writable: [{ addr: REGION - 0x300, len: 0x800 }] },
        { type: In, sector: 127, writable: [{ addr: 0xc000, len: 512 }] },
        { type: In, sector: 128, writable: [{ addr: 0xc000, len: 512 }] },
        { type: In, sector: 126, writable: [{ addr: 0xc000, len: 1536 }] },
        { type: In, sector: 0, writable: [{ addr: 0xc000, len: 700 }] },
        { type: In, sector: 2 ** 60, writable: [{ addr: 0xc000, len: 512 }] },
      ],
    ],
    [
      'writes, then reads of what was written; past the end; flush; GET_ID short and whole; an unknown type; headers too short; no status byte',
      {},
      [
        { type: Out, sector: 4, ...data(0x10000, noise(1536, 1)) },
        { type: Out, sector: 30, readable: [{ addr: REGION - 0x100, len: 0x300 }, { addr: 0x11000, len: 0x100 }] },
        { type: In, sector: 3, writable: [{ addr: 0x12000, len: 4096 }] },
        { type: Out, sector: 127, ...data(0x10000, noise(1024, 2)) },
        { type: Flush },
        { type: GetId, writable: [{ addr: 0x13000, len: 8 }] },
        { type: GetId, writable: [{ addr: 0x13000, len: 20 }] },
        { type: 99 },
        { type: In, headerLen: 8, writable: [{ addr: 0x14000, len: 512 }] },
        { type: Flush, noStatus: true },
      ],
    ],
    [
      'a read-only disk: reads and GET_ID work, writes, discards and write-zeroes fail, a flush is a no-op',
      { readonly: true },
      [
        { type: In, sector: 2, writable: [{ addr: 0x8000, len: 1024 }] },
        { type: Out, sector: 2, ...data(0x10000, noise(512, 3)) },
        { type: Discard, ...segments([[8, 8, 0]]) },
        { type: WriteZeroes, ...segments([[8, 8, 1]]) },
        { type: Flush },
        { type: GetId, writable: [{ addr: 0x13000, len: 20 }] },
      ],
    ],
    [
      'discard and write-zeroes, with and without UNMAP, large and small; bad flags, too many segments, a range past the end',
      { image: noise(512 * 1024, 9) },
      [
        { type: Discard, ...segments([[8, 8, 0], [64, 16, 0], [100, 0, 0]]) },
        { type: WriteZeroes, ...segments([[200, 3, 0]]) },
        { type: WriteZeroes, ...segments([[256, 8, 1]]) },
        // Larger than one chunk of zeroes (64 KiB): several writes.
        { type: WriteZeroes, ...segments([[300, 400, 0]]) },
        { type: Discard, ...segments([[300, 8, 1]]) },
        { type: WriteZeroes, ...segments([[300, 8, 2]]) },
        { type: WriteZeroes, ...segments([[300, 8, 0], [320, 8, 0]]) },
        { type: Discard, ...segments(Array.from({ length: 33 }, (_, i): [number, number, number] => [300 + i, 1, 0])) },
        { type: Discard, ...segments([[900, 8, 0], [1020, 8, 0]]) },
        { type: In, sector: 0, writable: [{ addr: 0x20000, len: 0x18000 }] },
      ],
    ],
    [
      'a file that shrank after it was opened: reads past its end bring zeroes (a short read, then none)',
      { image: noise(40 * 1024 + 100, 4), size: 64 * 1024 },
      [
        { type: In, sector: 78, writable: [{ addr: 0x8000, len: 2048 }, { addr: 0x9000, len: 2048 }] },
        { type: In, sector: 100, writable: [{ addr: 0xa000, len: 4096 }] },
        { type: In, sector: 127, writable: [{ addr: 0xb000, len: 512 }] },
      ],
      (s) => {
        const image = readFileSync(s.path);
        const first = Buffer.concat([s.mem.read(0x8000, 2048), s.mem.read(0x9000, 2048)]);
        expect(first.subarray(0, image.length - 78 * SECTOR_SIZE).equals(image.subarray(78 * SECTOR_SIZE)), 'the bytes the file still has').to.equal(true);
        expect(first.subarray(image.length - 78 * SECTOR_SIZE).every((b) => b === 0), 'zeroes after them').to.equal(true);
        expect(s.mem.readU8(STATUS)).to.equal(BlkStatus.Ok);
      },
    ],
    [
      'image file errors: every write to /dev/full fails (ENOSPC), and so do write-zeroes; its reads bring zeroes',
      { special: '/dev/full', size: 64 * 1024 },
      [
        { type: Out, sector: 4, ...data(0x10000, noise(1024, 5)) },
        { type: WriteZeroes, ...segments([[8, 8, 0]]) },
        { type: In, sector: 4, writable: [{ addr: 0x8000, len: 1024 }] },
        { type: Flush },
      ],
      (s) => expect(s.errors).to.deep.equal(['write at sector 4: ENOSPC', 'write-zeroes at sector 0: ENOSPC', 'flush at sector 0: EINVAL']),
    ],
    [
      'image file errors: an image opened write-only fails reads (EBADF) and still takes writes',
      { flags: 'w' },
      [
        { type: In, sector: 4, writable: [{ addr: 0x8000, len: 1024 }] },
        { type: Out, sector: 4, ...data(0x10000, noise(1024, 6)) },
      ],
      (s) => expect(s.errors).to.deep.equal(['read at sector 4: EBADF']),
    ],
    [
      `a read into more buffers than one operation takes (${MAX_VIEWS_PER_OP}): split across operations`,
      { image: noise(1024 * 1024, 7) },
      [{ type: In, sector: 3, writable: Array.from({ length: MAX_VIEWS_PER_OP + 100 }, (_, i) => ({ addr: 0x10000 + 0x100 * i, len: 0x100 })) }],
    ],
  ];

  describe('the kernel ring gives the synchronous path\'s results byte for byte', () => {
    before(function () {
      const u = ioUringAvailability();
      if (!u.available) {
        console.log(`      (skipped: ${u.reason})`);
        this.skip();
      }
      ring = IoUring.open(64);
    });

    for (const [name, d, reqs, check] of everyKind) it(name, () => check?.(expectSame(d, reqs, () => ring!)));

    it('keeps many requests in flight at once and finishes each with its own data', () => {
      const s = side({ image: noise(256 * 1024, 11) });
      const engine = new BlkUringEngine(ring!, s.ram, s.disk);
      const image = readFileSync(s.path);
      const sectors = Array.from({ length: 48 }, (_, i) => (i * 37) % 500);
      sectors.forEach((sector, i) => {
        const r: Req = { type: In, sector, writable: [{ addr: 0x10000 + i * 0x1000, len: 1024 }] };
        prepare(s, r);
        engine.start(0, { ...chainOf(r), writable: [{ addr: 0x10000 + i * 0x1000, len: 1024 }, { addr: 0x50000 + i, len: 1 }], writableLength: 1025, head: i }, 0);
      });
      expect(engine.inFlight).to.equal(48);
      const done = engine.drain();
      expect(done.map((c) => c.head).sort((x, y) => x - y)).to.deep.equal(sectors.map((_, i) => i));
      expect(done.every((c) => c.used === 1025)).to.equal(true);
      sectors.forEach((sector, i) => {
        expect(Buffer.from(s.mem.read(0x10000 + i * 0x1000, 1024)).equals(image.subarray(sector * SECTOR_SIZE, sector * SECTOR_SIZE + 1024)), `request ${i}`).to.equal(true);
        expect(s.mem.readU8(0x50000 + i)).to.equal(BlkStatus.Ok);
      });
    });
  });

  describe('a scripted ring: transfers cut short, completions out of order, a small completion queue', () => {
    for (const [name, d, reqs] of everyKind) {
      it(name, () => {
        const scripted: ScriptedRing[] = [];
        expectSame(d, reqs, () => {
          scripted.push(new ScriptedRing({ cqEntries: 4, sqEntries: 2, chunk: 700 }));
          return scripted.at(-1)!;
        });
        expect(Math.max(...scripted.map((r) => r.maxInKernel)), 'never more operations in the kernel than its completion queue holds').to.be.at.most(4);
      });
    }

    it('goes on with a read from where the kernel left it', () => {
      const r = new ScriptedRing({ cqEntries: 8, sqEntries: 8, chunk: 1000 });
      expectSame({}, [{ type: In, sector: 2, writable: [{ addr: 0x8000, len: 4096 }] }], () => r);
      // 4096 bytes 1000 at a time: the first operation and four continuations.
      expect(r.queuedOps).to.equal(5);
    });

    it('finishes a request that failed only when all of its operations are back (the kernel may still write into its buffers)', () => {
      const s = side({ image: noise(512 * 1024, 12) });
      const r = new ScriptedRing({ cqEntries: 64, sqEntries: 64, chunk: 1 << 20, failFirst: -5, holdBack: 1 });
      const errors: string[] = [];
      const engine = new BlkUringEngine(r, s.ram, s.disk, { onFileError: (what, e) => errors.push(`${what}: ${errnoCode(e)}`) });
      const req: Req = { type: Discard, ...segments([[0, 8, 0], [64, 8, 0]]) };
      prepare(s, req);
      engine.start(0, chainOf(req), 0);
      expect(engine.settle(), 'one operation is still out').to.deep.equal([]);
      expect(s.mem.readU8(STATUS), 'no status yet').to.equal(0xee);
      r.holdBack = 0;
      expect(engine.drain()).to.deep.equal([{ queue: 0, head: 7, epoch: 0, used: 1 }]);
      expect(s.mem.readU8(STATUS)).to.equal(BlkStatus.IoErr);
      expect(errors).to.deep.equal(['discard at sector 0: EIO']);
    });

    it('refuses a buffer outside guest RAM before the ring sees anything', () => {
      const s = side({});
      const r = new ScriptedRing({ cqEntries: 8, sqEntries: 8, chunk: 4096 });
      const engine = new BlkUringEngine(r, s.ram, s.disk);
      for (const bad of [{ addr: 2 * REGION, len: 512 }, { addr: 2 * REGION - 256, len: 512 }, { addr: 2 ** 52, len: 512 }]) {
        const req: Req = { type: In, sector: 0, writable: [bad] };
        prepare(s, req);
        expect(() => engine.start(0, chainOf(req), 0)).to.throw(GuestMemoryError);
        const write: Req = { type: Out, sector: 0, readable: [bad] };
        prepare(s, write);
        expect(() => engine.start(0, chainOf(write), 0)).to.throw(GuestMemoryError);
      }
      expect(r.queuedOps).to.equal(0);
    });
  });

  describe('when io_uring is unavailable', () => {
    it('explains io_uring_setup failures: ENOSYS, EPERM (io_uring_disabled, seccomp), others', () => {
      const err = (code: string): Error => Object.assign(new Error(`io_uring_setup: ${code}`), { code });
      expect(setupFailure(err('ENOSYS')).reason).to.match(/no io_uring.*ENOSYS/);
      expect(setupFailure(err('EPERM')).reason).to.match(/EPERM: sysctl kernel\.io_uring_disabled, or a seccomp filter/);
      expect(setupFailure(err('ENOMEM')).reason).to.match(/io_uring_setup failed \(io_uring_setup: ENOMEM\)/);
    });

    it('falls back to synchronous requests by default, refuses aio=io_uring, and honours aio=sync everywhere', () => {
      const none = () => ({ available: false as const, reason: 'the kernel has no io_uring (io_uring_setup: ENOSYS)' });
      const some = () => ({ available: true as const });
      expect(resolveDiskAio({ path: 'a.img' }, none)).to.deep.equal({ aio: 'sync', aioReason: 'the kernel has no io_uring (io_uring_setup: ENOSYS)' });
      expect(() => resolveDiskAio({ path: 'a.img', aio: 'io_uring' }, none))
        .to.throw(NodevisorError, /a\.img asks for aio=io_uring, but the kernel has no io_uring \(io_uring_setup: ENOSYS\): leave aio out \(or aio=sync\)/);
      expect(resolveDiskAio({ path: 'a.img', aio: 'sync' }, none)).to.deep.equal({ aio: 'sync', aioReason: 'aio=sync' });
      expect(resolveDiskAio({ path: 'a.img' }, some)).to.deep.equal({ aio: 'io_uring' });
      expect(resolveDiskAio({ path: 'a.img', aio: 'sync' }, some)).to.deep.equal({ aio: 'sync', aioReason: 'aio=sync' });
      expect(() => resolveDiskAio({ path: 'a.img', aio: 'posix' as 'sync' }, some)).to.throw(NodevisorError, /aio must be io_uring or sync \(got posix\)/);
    });
  });
});

/**
 * A stand-in for the kernel's ring: carries operations out with plain
 * system calls when they are reaped, newest first, moving at most `chunk`
 * bytes per read or write (so transfers come back short), holding back
 * the last `holdBack` operations, and failing the first one with
 * `failFirst` if set.
 */
class ScriptedRing implements BlkRing {
  readonly cqEntries: number;
  private readonly sqEntries: number;
  private readonly chunk: number;
  private failFirst?: number;
  holdBack: number;
  private sq: Array<{ userData: number; run: () => number }> = [];
  private kernel: Array<{ userData: number; run: () => number }> = [];
  queuedOps = 0;
  maxInKernel = 0;

  constructor(o: { cqEntries: number; sqEntries: number; chunk: number; failFirst?: number; holdBack?: number }) {
    this.cqEntries = o.cqEntries;
    this.sqEntries = o.sqEntries;
    this.chunk = o.chunk;
    this.failFirst = o.failFirst;
    this.holdBack = o.holdBack ?? 0;
  }

  private queue(userData: number, run: () => number): boolean {
    if (this.sq.length >= this.sqEntries) return false;
    this.queuedOps++;
    this.sq.push({ userData, run });
    return true;
  }

  private transfer(views: readonly Uint8Array[], offset: number, io: (v: Uint8Array, at: number) => number): number {
    let done = 0;
    for (const v of views) {
      const want = Math.min(v.length, this.chunk - done);
      if (want <= 0) break;
      const n = io(v.subarray(0, want), offset + done);
      done += n;
      if (n < want) break;
    }
    return done;
  }

  readv(fd: number, views: readonly Uint8Array[], offset: number, userData: number): boolean {
    return this.queue(userData, () => errno(() => this.transfer(views, offset, (v, at) => readSync(fd, v, 0, v.length, at))));
  }

  writev(fd: number, views: readonly Uint8Array[], offset: number, userData: number): boolean {
    return this.queue(userData, () => errno(() => this.transfer(views, offset, (v, at) => writeSync(fd, v, 0, v.length, at))));
  }

  fdatasync(fd: number, userData: number): boolean {
    return this.queue(userData, () => errno(() => (fdatasyncSync(fd), 0)));
  }

  fallocate(fd: number, mode: number, offset: number, length: number, userData: number): boolean {
    return this.queue(userData, () => errno(() => (native.fallocate(fd, mode, offset, length), 0)));
  }

  timeout(_ns: number, userData: number): boolean {
    return this.queue(userData, () => -os.errno.ETIME);
  }

  submit(waitFor = 0): number {
    const n = this.sq.length;
    this.kernel.push(...this.sq);
    this.sq = [];
    this.maxInKernel = Math.max(this.maxInKernel, this.kernel.length);
    if (waitFor > this.kernel.length - this.holdBack) throw new Error('scripted ring: a wait that would never end');
    return n;
  }

  reap(): IoUringCompletion[] {
    const ready = this.kernel.splice(0, Math.max(0, this.kernel.length - this.holdBack)).reverse();
    return ready.map((op) => {
      if (this.failFirst !== undefined) {
        const result = this.failFirst;
        this.failFirst = undefined;
        return { userData: op.userData, result };
      }
      return { userData: op.userData, result: op.run() };
    });
  }
}

/** A system call's result as the kernel's ring reports it: the value, or -errno. */
function errno(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    const n = os.errno[errnoCode(e) as keyof typeof os.errno];
    if (n === undefined) throw e;
    return -n;
  }
}

