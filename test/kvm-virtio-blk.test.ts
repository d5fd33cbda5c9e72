import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVm, blkTestGuest, type GuestRun } from './helpers/guests.js';
import type { IrqchipMode, Vm } from '../src/index.js';
import { BlkStatus, SECTOR_SIZE } from '../src/virtio/blk-request.js';
import type { BlkAio } from '../src/virtio/blk.js';
import { ioUringAvailability } from '../src/kvm/io-uring.js';

/**
 * virtio-blk driven by our own guests (test/guests/virtio-blk*.c on
 * guests/lib/virtio.h) under real KVM, in every irqchip mode: data written
 * by the guest checked byte for byte in the image file, data the host put
 * in the image checked by the guest, error statuses, and many requests in
 * flight on one queue per vCPU or on one shared queue, completed through
 * MSI-X or INTx. Disks go through io_uring where the host has it (the
 * default); the synchronous path runs the same guests, and both must
 * leave the same bytes and report the same statuses.
 */

const RESULTS = 0x1000000;
const MODES: IrqchipMode[] = ['user', 'split', 'kernel'];
const SEED_A = 0x1234567;
const SEED_B = 0x7654321;
const SEED_W = 0xabcdef0;
const SEED_MQ = 0x5eed;
const SEEDS = { SEED_A, SEED_B, SEED_W };
/** The aio modes this host can run: the synchronous path always, io_uring where the kernel allows it. */
const AIO_MODES: BlkAio[] = ioUringAvailability().available ? ['io_uring', 'sync'] : ['sync'];
/** What the default (no aio option) gives here. */
const DEFAULT_AIO: BlkAio = AIO_MODES[0]!;

const blkGuest = blkTestGuest;

function words(vm: Vm, count: number, from = 0): Uint32Array {
  return new Uint32Array(vm.memory.read(RESULTS + from * 4, count * 4).slice().buffer);
}

/** The guests' pattern: u32 words that depend on the sector, the offset in it and a seed (virtio-blk.c's pattern()). */
function patternWord(offset: number, seed: number): number {
  return (Math.imul(Math.floor(offset / SECTOR_SIZE), 0x9e3779b1) + Math.imul(offset % SECTOR_SIZE, 0x85ebca77) + seed) >>> 0;
}

/** Bytes [offset, offset + length) of a disk holding the pattern (offset and length multiples of 4). */
function pattern(offset: number, length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i += 4) b.writeUInt32LE(patternWord(offset + i, seed), i);
  return b;
}

function fnv1a(data: Buffer, h = 0x811c9dc5): number {
  for (const byte of data) h = Math.imul(h ^ byte, 16777619) >>> 0;
  return h;
}

/** The first byte where `actual` and `expected` differ, for a readable failure. */
function firstDifference(actual: Buffer, expected: Buffer): string {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  const at = actual.findIndex((b, i) => b !== expected[i]);
  return at < 0 ? 'none' : `byte ${at} (sector ${Math.floor(at / SECTOR_SIZE)} + ${at % SECTOR_SIZE}): 0x${actual[at]!.toString(16)}, expected 0x${expected[at]!.toString(16)}`;
}

function expectSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  expect(actual.equals(expected), `${what}: first difference at ${firstDifference(actual, expected)}`).to.equal(true);
}

/** What the single-vCPU guest reports, by the R_* indices of virtio-blk.c. */
interface SingleReport {
  stage: number;
  failedLine: number;
  capacity: number;
  features: bigint;
  irqs: number;
  requests: number;
  roOffered: bigint;
  checksum: number;
  id: Buffer;
  statuses: number[];
  lengths: number[];
}

function singleReport(vm: Vm): SingleReport {
  const r = words(vm, 160);
  const requests = r[7]!;
  return {
    stage: r[0]!,
    failedLine: r[1]!,
    capacity: r[2]! + r[3]! * 2 ** 32,
    features: BigInt(r[4]!) | (BigInt(r[5]!) << 32n),
    irqs: r[6]!,
    requests,
    roOffered: BigInt(r[8]!) | (BigInt(r[9]!) << 32n),
    checksum: r[10]!,
    id: Buffer.from(r.buffer, 16 * 4, 20),
    statuses: Array.from(r.subarray(32, 32 + requests)),
    lengths: Array.from(r.subarray(96, 96 + requests)),
  };
}

function expectPassed(run: GuestRun, code: number, report: () => unknown): void {
  expect(run.result.reason, `${run.result.message}\nguest report: ${JSON.stringify(report(), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))}\nlogs: ${run.logs.join('\n')}`).to.deep.equal({ kind: 'debug-exit', code });
}

const bit = (n: number): bigint => 1n << BigInt(n);

/** struct report of virtio-blk-mq.c. */
interface MqReport {
  stage: number;
  failedLine: number;
  queues: number;
  features: bigint;
  finished: number;
  isrQueueBits: number;
  isrEmpty: number;
  cpus: Record<'submitted' | 'retired' | 'completions' | 'irqs' | 'statusErrors' | 'lengthErrors' | 'dataErrors' | 'wrongCpu' | 'notifies', number>[];
  perQueue: Record<'found' | 'bad' | 'drains', number>[];
}

function mqReport(vm: Vm, vcpus: number): MqReport {
  const r = words(vm, 96);
  const cpu = (c: number) => {
    const w = r.subarray(16 + 16 * c);
    return { submitted: w[0]!, retired: w[1]!, completions: w[2]!, irqs: w[3]!, statusErrors: w[4]!, lengthErrors: w[5]!, dataErrors: w[6]!, wrongCpu: w[7]!, notifies: w[8]! };
  };
  const queue = (q: number) => ({ found: r[80 + 4 * q]!, bad: r[81 + 4 * q]!, drains: r[82 + 4 * q]! });
  return {
    stage: r[0]!,
    failedLine: r[1]!,
    queues: r[3]!,
    features: BigInt(r[4]!) | (BigInt(r[5]!) << 32n),
    finished: r[6]!,
    isrQueueBits: r[7]!,
    isrEmpty: r[8]!,
    cpus: Array.from({ length: vcpus }, (_, c) => cpu(c)),
    perQueue: Array.from({ length: r[3]! }, (_, q) => queue(q)),
  };
}

interface MqCase {
  vcpus: number;
  /** Every vCPU on queue 0. */
  shared?: boolean;
  /** INTx instead of MSI-X. */
  intx?: boolean;
  /** Requests in flight per vCPU. */
  qd: number;
  /** Sectors each vCPU writes, then reads back. */
  perCpu: number;
}

const MQ_CASES: MqCase[] = [
  { vcpus: 2, qd: 16, perCpu: 256 },
  { vcpus: 4, qd: 16, perCpu: 256 },
  // vCPUs that do not take the queue's interrupt spin in emulated ring 0 here: fewer requests.
  { vcpus: 4, shared: true, qd: 8, perCpu: 128 },
  { vcpus: 2, intx: true, qd: 16, perCpu: 128 },
];

function mqName(c: MqCase): string {
  const how = c.intx ? 'one INTx line to vCPU 0, level-triggered' : c.shared ? 'one queue shared under a spinlock, its MSI-X vector to vCPU 0' : 'a queue and an MSI-X vector per vCPU';
  return `${c.vcpus} vCPUs x ${2 * c.perCpu} requests, up to ${c.qd} in flight each, ${how}: every completion once, data intact`;
}

describe('virtio-blk under KVM with our own guests', function () {
  this.timeout(60000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-blk-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  for (const mode of MODES) {
    describe(`irqchip "${mode}"`, () => {
      it('writes sectors, multi-descriptor and indirect chains, zeroes and the last sector; the file holds exactly that after FLUSH, through each aio path', async () => {
        const reports: unknown[] = [];
        for (const aio of AIO_MODES) {
          const sectors = 515; // not a power of two: the last sector is not where a round size would put it
          const image = join(dir, 'write.img');
          writeFileSync(image, Buffer.alloc(sectors * SECTOR_SIZE, 0xee));
          const run = await runVm({ image: blkGuest('virtio-blk', { SCENARIO: 'WRITE', ...SEEDS }), irqchip: mode, disks: [{ path: image, aio }] });
          expectPassed(run, 0x10, () => singleReport(run.vm));
          expect(run.vm.stats().virtio[0]!.requests!.aio, 'the path that ran').to.equal(aio);
          const r = singleReport(run.vm);
          expect(r.capacity).to.equal(sectors);
          expect(r.features & bit(32), 'VERSION_1').to.equal(bit(32));
          expect(r.features & bit(29), 'EVENT_IDX').to.equal(bit(29));
          const { Ok, IoErr } = BlkStatus;
          // 3 single sectors, 3-buffer chain, indirect, zeroes, last, past the end, flush.
          expect(r.statuses).to.deep.equal([Ok, Ok, Ok, Ok, Ok, Ok, Ok, IoErr, Ok]);
          expect(r.lengths, 'a write returns only its status byte').to.deep.equal(new Array(9).fill(1));
          expect(r.irqs, 'one MSI-X interrupt per request').to.equal(9);

          const expected = Buffer.alloc(sectors * SECTOR_SIZE, 0xee);
          const put = (sector: number, count: number): void => {
            pattern(sector * SECTOR_SIZE, count * SECTOR_SIZE, SEED_W).copy(expected, sector * SECTOR_SIZE);
          };
          for (const s of [1, 7, 100]) put(s, 1);
          put(16, 8);
          put(40, 4);
          expected.fill(0, 60 * SECTOR_SIZE, 68 * SECTOR_SIZE);
          put(sectors - 1, 1);
          expectSameBytes(readFileSync(image), expected, `image after the guest ran (aio=${aio})`);
          reports.push(r);
        }
        for (const r of reports.slice(1)) expect(r, `${AIO_MODES.join(' and ')}: the same report`).to.deep.equal(reports[0]);
      });

      for (const c of MQ_CASES) {
        it(`${mqName(c)}, through each aio path`, async () => {
          for (const aio of AIO_MODES) {
            const sectors = 4 * 256 + 7;
            const image = join(dir, 'mq.img');
            writeFileSync(image, Buffer.alloc(sectors * SECTOR_SIZE, 0xee));
            const defines = { QD: c.qd, PER_CPU: c.perCpu, SEED: SEED_MQ, SHARED: c.shared ? 1 : 0, INTX: c.intx ? 1 : 0 };
            const run = await runVm({ image: blkGuest('virtio-blk-mq', defines), vcpus: c.vcpus, irqchip: mode, disks: [{ path: image, aio }] });
            expectPassed(run, 0x10, () => mqReport(run.vm, c.vcpus));
            expect(run.vm.stats().virtio[0]!.requests!.aio, 'the path that ran').to.equal(aio);
            const r = mqReport(run.vm, c.vcpus);
            const n = 2 * c.perCpu;
            const total = n * c.vcpus;
            expect(r.queues).to.equal(c.shared ? 1 : c.vcpus);
            expect(r.features & bit(29), 'EVENT_IDX unless INTx').to.equal(c.intx ? 0n : bit(29));
            expect(r.finished).to.equal(c.vcpus);
            for (const [i, cpu] of r.cpus.entries()) {
              expect(cpu, `vCPU ${i}`).to.include({ submitted: n, retired: n, completions: n, statusErrors: 0, lengthErrors: 0, dataErrors: 0, wrongCpu: 0 });
              expect(cpu.notifies, `vCPU ${i} notified its queue`).to.be.within(1, n);
              // Completions are found only in interrupt handlers, on the vCPU the queue's interrupt targets:
              // at most one MSI per completion; a level line may be re-delivered once per EOI (README, host quirks).
              if (i === 0 || !(c.shared || c.intx)) expect(cpu.irqs, `vCPU ${i} interrupts`).to.be.within(1, c.intx ? 2 * total : c.shared ? total : n);
              else expect(cpu.irqs, `vCPU ${i} interrupts`).to.equal(0);
            }
            for (const q of r.perQueue) expect(q.bad, 'used ids that were not outstanding').to.equal(0);
            expect(r.perQueue.reduce((sum, q) => sum + q.found, 0)).to.equal(total);
            if (!c.shared && !c.intx) for (const [i, q] of r.perQueue.entries()) expect(q.found, `queue ${i}`).to.equal(n);
            if (c.intx) expect(r.isrQueueBits, 'handler runs that found the queue bit in the ISR').to.be.at.least(1);

            const expected = Buffer.alloc(sectors * SECTOR_SIZE, 0xee);
            pattern(0, c.vcpus * c.perCpu * SECTOR_SIZE, SEED_MQ).copy(expected);
            expectSameBytes(readFileSync(image), expected, `image after the guest ran (aio=${aio})`);
          }
        });
      }

      it('reads what the host wrote, through unaligned buffers, indirect tables and the last sector; errors past the end; GET_ID; a read-only disk refuses writes; through each aio path', async () => {
        const reports: unknown[] = [];
        for (const aio of AIO_MODES) {
          const sectors = 2051;
          const image = join(dir, 'read-me.img');
          const ro = join(dir, 'ro.img');
          const data = pattern(0, sectors * SECTOR_SIZE, SEED_A);
          const roData = pattern(0, 64 * SECTOR_SIZE, SEED_B);
          writeFileSync(image, data);
          writeFileSync(ro, roData);
          const run = await runVm({ image: blkGuest('virtio-blk', { SCENARIO: 'READ', ...SEEDS }), irqchip: mode, disks: [{ path: image, aio }, { path: ro, readonly: true, aio }] });
          expectPassed(run, 0x10, () => singleReport(run.vm));
          expect(run.vm.stats().virtio.map((v) => v.requests!.aio), 'the path that ran').to.deep.equal([aio, aio]);
          const r = singleReport(run.vm);
          expect(r.capacity).to.equal(sectors);
          expect(r.features & bit(29), 'no EVENT_IDX asked for').to.equal(0n);
          const { Ok, IoErr, Unsupported } = BlkStatus;
          // disk 0: 4 reads, past the end, across the end, unknown type, GET_ID; disk 1: read, write, flush.
          expect(r.statuses).to.deep.equal([Ok, Ok, Ok, Ok, IoErr, IoErr, Unsupported, Ok, Ok, IoErr, Ok]);
          expect(r.lengths, 'used lengths: data written plus the status byte').to.deep.equal([2049, 2049, 1537, 513, 1, 1, 1, 21, 513, 1, 1]);
          expect(r.irqs).to.equal(11);
          const ranges: [number, number][] = [[0, 4], [9, 4], [20, 3], [sectors - 1, 1]];
          let h = 0x811c9dc5;
          for (const [s, n] of ranges) h = fnv1a(data.subarray(s * SECTOR_SIZE, (s + n) * SECTOR_SIZE), h);
          expect(r.checksum.toString(16), 'checksum of what the guest read').to.equal(h.toString(16));
          expect(r.id.toString('latin1').replace(/\0+$/, '')).to.equal('read-me.img');
          expect(r.roOffered & bit(5), 'VIRTIO_BLK_F_RO offered').to.equal(bit(5));
          expectSameBytes(readFileSync(ro), roData, 'read-only image');
          expectSameBytes(readFileSync(image), data, 'image the guest only read');
          reports.push(r);
        }
        for (const r of reports.slice(1)) expect(r, `${AIO_MODES.join(' and ')}: the same report`).to.deep.equal(reports[0]);
      });
    });
  }

  // The guest keeps 16 requests outstanding on one queue of a slow disk (a 20 ms test delay per request).
  const slowDisk = [
    { aio: 'sync' as const, ioThreads: 4, maxInFlight: 4, how: 'runs the requests of one queue on several I/O threads at once, synchronously: all four took part, never more' },
    { aio: 'io_uring' as const, ioThreads: 1, maxInFlight: 16, how: 'keeps every request in flight from one I/O thread through io_uring (the delay as ring timeouts)' },
  ];
  for (const c of slowDisk) {
    it(`${c.how}, when the disk is slow`, async function () {
      if (!AIO_MODES.includes(c.aio)) this.skip();
      const image = join(dir, 'slow.img');
      const sectors = 48 + 7;
      writeFileSync(image, Buffer.alloc(sectors * SECTOR_SIZE));
      const defines = { QD: 16, PER_CPU: 48, SEED: SEED_MQ, SHARED: 0, INTX: 0 };
      const run = await runVm({ image: blkGuest('virtio-blk-mq', defines), vcpus: 1, disks: [{ path: image, aio: c.aio }], ioThreads: c.ioThreads, testKnobs: { blkDelayUs: 20_000 } });
      expectPassed(run, 0x10, () => mqReport(run.vm, 1));
      expect(mqReport(run.vm, 1).cpus[0]).to.include({ retired: 96, completions: 96, dataErrors: 0 });
      expect(run.vm.stats().virtio[0]!.requests).to.deep.include({ completed: 96, maxInFlight: c.maxInFlight, aio: c.aio });
      const expected = Buffer.alloc(sectors * SECTOR_SIZE);
      pattern(0, 48 * SECTOR_SIZE, SEED_MQ).copy(expected);
      expectSameBytes(readFileSync(image), expected, 'image after the guest ran');
    });
  }

  for (const aio of AIO_MODES) {
    it(`stops the VM with a clear error, instead of hanging the guest, when an I/O thread fails (aio=${aio})`, async () => {
      const image = join(dir, 'fail.img');
      writeFileSync(image, Buffer.alloc((2 * 64 + 7) * SECTOR_SIZE));
      const defines = { QD: 8, PER_CPU: 64, SEED: SEED_MQ, SHARED: 0, INTX: 0 };
      const run = await runVm({ image: blkGuest('virtio-blk-mq', defines), vcpus: 1, disks: [{ path: image, aio }], ioThreads: 1, testKnobs: { blkFailAfter: 10 } });
      expect(run.result.reason.kind).to.equal('error');
      expect(run.result.message).to.match(/virtio-blk I\/O thread failed: Error: failing as the blkFailAfter test knob asks/);
      expect(run.result.exitStatus).to.equal(6);
      expect(run.vm.stats().virtio[0]!.requests!.completed).to.equal(10);
    });
  }

  it(`says in its log how each disk's requests go: ${DEFAULT_AIO} by default here, synchronous with aio=sync`, async () => {
    const a = join(dir, 'a.img');
    const b = join(dir, 'b.img');
    writeFileSync(a, pattern(0, 2051 * SECTOR_SIZE, SEED_A));
    writeFileSync(b, pattern(0, 64 * SECTOR_SIZE, SEED_B));
    const run = await runVm({ image: blkGuest('virtio-blk', { SCENARIO: 'READ', ...SEEDS }), disks: [{ path: a }, { path: b, readonly: true, aio: 'sync' }], ioThreads: 2 });
    expectPassed(run, 0x10, () => singleReport(run.vm));
    const defaultLine = DEFAULT_AIO === 'io_uring' ? 'requests through io_uring' : `synchronous requests (${ioUringAvailability().available ? '' : (ioUringAvailability() as { reason: string }).reason})`;
    expect(run.logs).to.include(`virtio-blk ${a}: ${defaultLine}, 2 I/O threads`);
    expect(run.logs).to.include(`virtio-blk ${b}: synchronous requests (aio=sync), 2 I/O threads`);
    expect(run.vm.stats().virtio.map((v) => v.requests!.aio)).to.deep.equal([DEFAULT_AIO, 'sync']);
  });

  // Every notify the guests count reaches the I/O threads exactly once, through KVM's ioeventfd (no exit) or an MMIO exit.
  for (const mode of ['user', 'kernel'] as const) {
    for (const ioeventfd of [true, false]) {
      it(`takes every notification ${ioeventfd ? 'through ioeventfds, without an exit' : 'as an MMIO exit with ioeventfds off'} (irqchip "${mode}")`, async () => {
        const image = join(dir, 'notify.img');
        writeFileSync(image, Buffer.alloc((2 * 64 + 7) * SECTOR_SIZE));
        const defines = { QD: 8, PER_CPU: 64, SEED: SEED_MQ, SHARED: 0, INTX: 0 };
        const run = await runVm({ image: blkGuest('virtio-blk-mq', defines), vcpus: 2, irqchip: mode, disks: [{ path: image }], ioeventfd });
        expectPassed(run, 0x10, () => mqReport(run.vm, 2));
        const notifies = mqReport(run.vm, 2).cpus.reduce((n, c) => n + c.notifies, 0);
        expect(notifies).to.be.greaterThan(0);
        const counted = run.vm.stats().virtio[0]!.notifications;
        expect(counted).to.deep.equal(ioeventfd ? { exits: 0, ioeventfd: notifies } : { exits: notifies, ioeventfd: 0 });
      });
    }
  }
});
