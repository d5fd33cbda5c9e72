import { expect } from 'chai';
import { reportJson } from '../src/bench/report.js';
import { runBenchmark } from '../src/bench/runner.js';
import { validateReport } from '../src/bench/schema.js';
import type { Metric, SuiteResult } from '../src/bench/types.js';
import { BENCH_IO_POLL_NS, runVirtioBlkBench, type BlkBenchParams } from '../src/bench/virtio-blk.js';
import { blkBenchImage, blockSequence, blockSequenceHash, type BlkWorkload } from '../src/bench/virtio-blk-guest.js';
import { ioUringAvailability } from '../src/kvm/io-uring.js';

describe('virtio-blk suite: request sequences', () => {
  const w = (pattern: BlkWorkload['pattern'], count: number): BlkWorkload => ({ pattern, qd: 1, count, requestBytes: 4096 });

  it('reads sequentially, wrapping at the end of the image', () => {
    expect(Array.from(blockSequence(w('seqread', 7), 3))).to.deep.equal([0, 1, 2, 0, 1, 2, 0]);
    // The warm-up requests come first, and the timed ones continue the same sequence.
    expect(Array.from(blockSequence({ ...w('seqread', 4), warmup: 3 }, 3))).to.deep.equal([0, 1, 2, 0, 1, 2, 0]);
  });

  it('spreads random reads over the whole image, the same sequence every time', () => {
    const blocks = 16384;
    const a = blockSequence(w('randread', 20000), blocks);
    expect(Array.from(a)).to.deep.equal(Array.from(blockSequence(w('randread', 20000), blocks)));
    expect(a.every((b) => b < blocks)).to.equal(true);
    // 20000 draws over 16384 blocks reach about 1 - e^-1.22 = 70% of them; a stuck or short-period generator does not.
    expect(new Set(a).size).to.be.within(0.65 * blocks, 0.75 * blocks);
    expect(Math.min(...a)).to.be.below(blocks / 100);
    expect(Math.max(...a)).to.be.above(blocks - blocks / 100);
    expect(blockSequenceHash(a)).to.not.equal(blockSequenceHash(blockSequence(w('seqread', 20000), blocks)));
  });

  it('refuses workloads the guest cannot run', () => {
    expect(() => blkBenchImage({ ...w('randread', 10), qd: 43 })).to.throw(/queue depth/);
    expect(() => blkBenchImage({ ...w('randread', 10), requestBytes: 512 })).to.throw(/multiple of 4 KiB/);
    expect(() => blkBenchImage(w('randread', 0))).to.throw(/request count/);
    expect(() => blkBenchImage({ ...w('randread', 10), warmup: -1 })).to.throw(/warm-up request count/);
  });
});

describe('virtio-blk suite under KVM', function () {
  this.timeout(120_000);
  const params: BlkBenchParams = {
    imageBytes: 4 << 20,
    modes: ['user', 'split'],
    exitNotify: ['user'],
    noIoPoll: ['user'],
    syncAio: ['user'],
    workloads: [
      { pattern: 'randread', qd: 1, count: 200, requestBytes: 4096 },
      { pattern: 'randread', qd: 8, count: 400, warmup: 200, requestBytes: 4096 },
      { pattern: 'seqread', qd: 4, count: 96, requestBytes: 64 * 1024 },
    ],
  };
  const progress: { done: number; total: number }[] = [];
  let result: SuiteResult;
  let byId: Map<string, Metric>;

  before(async () => {
    result = await runVirtioBlkBench({ repetitions: 2, maxVcpus: 1, progress: (done, total) => progress.push({ done, total }), log: () => {} }, params);
    byId = new Map(result.metrics.map((m) => [m.id, m]));
  });

  it('reports guest rates per irqchip mode, the host reference and their ratio for every workload', () => {
    const expected: string[] = [];
    for (const c of ['randread-4k.qd1', 'randread-4k.qd8', 'seqread-64k.qd4']) {
      expected.push(`virtio-blk.${c}.host`);
      for (const m of ['user', 'split']) expected.push(`virtio-blk.${c}.${m}`, `virtio-blk.${c}.${m}.ratio-vs-host`);
      expected.push(`virtio-blk.${c}.user.exit-notify`, `virtio-blk.${c}.user.ioeventfd-gain`, `virtio-blk.${c}.user.aio-sync`, `virtio-blk.${c}.user.io_uring-gain`);
      expected.push(`virtio-blk.${c}.user.no-io-poll`, `virtio-blk.${c}.user.io-poll-gain`);
    }
    expect(result.suite).to.equal('virtio-blk');
    expect([...byId.keys()].sort()).to.deep.equal(expected.sort());
  });

  it('measures finite, positive samples, one per repetition, in the unit of each workload', () => {
    for (const m of result.metrics) {
      expect(m.samples, m.id).to.have.length(2);
      expect(m.samples.every((s) => Number.isFinite(s) && s > 0), `${m.id}: ${m.samples}`).to.equal(true);
      expect(m.better, m.id).to.equal('higher');
      expect(m.tolerance, m.id).to.be.within(0.01, 0.5);
      expect(m.description.length, m.id).to.be.greaterThan(20);
      expect(m.unit, m.id).to.equal(/ratio-vs-host|ioeventfd-gain|io_uring-gain|io-poll-gain/.test(m.id) ? 'ratio' : m.id.includes('randread') ? 'IOPS' : 'MiB/s');
      expect(m.params!.qd, m.id).to.equal(Number(/\.qd(\d+)/.exec(m.id)![1]));
    }
  });

  it('pairs each ratio with the same repetition of guest and host', () => {
    for (const c of ['randread-4k.qd1', 'randread-4k.qd8', 'seqread-64k.qd4']) {
      const host = byId.get(`virtio-blk.${c}.host`)!.samples;
      for (const m of ['user', 'split']) {
        const guest = byId.get(`virtio-blk.${c}.${m}`)!;
        const ratio = byId.get(`virtio-blk.${c}.${m}.ratio-vs-host`)!;
        expect(guest.params).to.include({ irqchip: m });
        ratio.samples.forEach((r, k) => expect(r, `${ratio.id} repetition ${k}`).to.be.closeTo(guest.samples[k]! / host[k]!, 1e-9 * r));
        // A polling I/O thread may catch every timed request with the driver told not to notify (0 is the best case):
        // then its poll wakes are what served them.
        const { notifiesPerRequest, pollWakesPerRequest } = guest.params! as { notifiesPerRequest: number; pollWakesPerRequest: number };
        expect(notifiesPerRequest, `${guest.id}: at most one notify per request`).to.be.within(0, 1);
        expect(notifiesPerRequest + pollWakesPerRequest, `${guest.id}: requests arrive by notify or by poll`).to.be.above(0);
        expect(guest.params!.tscMHz, guest.id).to.be.within(100, 10_000);
      }
    }
    // One request at a time and an I/O thread that sleeps between them: every request is its own notify.
    expect(byId.get('virtio-blk.randread-4k.qd1.user.no-io-poll')!.params!.notifiesPerRequest).to.equal(1);
  });

  it('measures the I/O thread with its polling off too: polling catches requests without a notify, and the gain is paired per repetition', () => {
    for (const c of ['randread-4k.qd1', 'randread-4k.qd8', 'seqread-64k.qd4']) {
      const on = byId.get(`virtio-blk.${c}.user`)!;
      const off = byId.get(`virtio-blk.${c}.user.no-io-poll`)!;
      const gain = byId.get(`virtio-blk.${c}.user.io-poll-gain`)!;
      expect(on.params).to.include({ ioPollNs: BENCH_IO_POLL_NS });
      expect(off.params).to.include({ irqchip: 'user', ioeventfd: 1, ioPollNs: 0, pollWakesPerRequest: 0 });
      // Without polling every request batch is announced: at least one notify, at most one per request.
      expect(off.params!.notifiesPerRequest, off.id).to.be.within(0.001, 1);
      gain.samples.forEach((g, k) => expect(g, `${gain.id} repetition ${k}`).to.be.closeTo(on.samples[k]! / off.samples[k]!, 1e-9 * g));
    }
    // At queue depth 1 the guest's next request comes microseconds after the last completion: the poll catches it.
    const qd1 = byId.get('virtio-blk.randread-4k.qd1.user')!.params!;
    expect(qd1.pollWakesPerRequest).to.be.above(0);
    expect(qd1.notifiesPerRequest).to.be.below(1);
    expect(byId.get('virtio-blk.randread-4k.qd8.user')!.params).to.include({ warmupRequests: 200, requests: 400 });
  });

  it('measures the exit path with ioeventfds off and pairs the gain per repetition', () => {
    for (const c of ['randread-4k.qd1', 'randread-4k.qd8', 'seqread-64k.qd4']) {
      const on = byId.get(`virtio-blk.${c}.user`)!;
      const off = byId.get(`virtio-blk.${c}.user.exit-notify`)!;
      const gain = byId.get(`virtio-blk.${c}.user.ioeventfd-gain`)!;
      expect(on.params).to.include({ ioeventfd: 1 });
      expect(off.params).to.include({ irqchip: 'user', ioeventfd: 0 });
      gain.samples.forEach((g, k) => expect(g, `${gain.id} repetition ${k}`).to.be.closeTo(on.samples[k]! / off.samples[k]!, 1e-9 * g));
    }
  });

  it('measures the synchronous path too, says which aio ran, and pairs the io_uring gain per repetition', () => {
    const uring = ioUringAvailability().available;
    for (const c of ['randread-4k.qd1', 'randread-4k.qd8', 'seqread-64k.qd4']) {
      const byDefault = byId.get(`virtio-blk.${c}.user`)!;
      const sync = byId.get(`virtio-blk.${c}.user.aio-sync`)!;
      const gain = byId.get(`virtio-blk.${c}.user.io_uring-gain`)!;
      expect(byDefault.params).to.include({ aio: uring ? 'io_uring' : 'sync' });
      expect(byId.get(`virtio-blk.${c}.split`)!.params).to.include({ aio: uring ? 'io_uring' : 'sync' });
      expect(sync.params).to.include({ irqchip: 'user', ioeventfd: 1, aio: 'sync' });
      gain.samples.forEach((g, k) => expect(g, `${gain.id} repetition ${k}`).to.be.closeTo(byDefault.samples[k]! / sync.samples[k]!, 1e-9 * g));
    }
    expect(result.notes.some((n) => (uring ? /through io_uring by default/ : /io_uring is unavailable here/).test(n))).to.equal(true);
  });

  it('reports progress for every run, ending complete, and notes how the guest TSC was calibrated', () => {
    const total = 2 * 3 * 6; // repetitions x workloads x (host + 2 modes + user without ioeventfds + user without polling + user with aio=sync)
    expect(progress[0]!.total).to.equal(total);
    expect(progress[progress.length - 1]).to.deep.equal({ done: total, total });
    expect(result.notes.some((n) => /guest TSC [\d.]+ MHz/.test(n))).to.equal(true);
  });

  it('runs only what --only selects (a pattern covers the metrics below it), through the benchmark runner, into a valid report', async () => {
    const report = await runBenchmark({ suites: ['virtio-blk'], repetitions: 1, only: ['virtio-blk.randread-4k.qd1.user'] });
    const suite = report.suites[0]!;
    expect(suite.error, suite.error).to.equal(undefined);
    expect(suite.metrics.map((m) => m.id)).to.deep.equal([
      'virtio-blk.randread-4k.qd1.user',
      'virtio-blk.randread-4k.qd1.user.ratio-vs-host',
      'virtio-blk.randread-4k.qd1.user.exit-notify',
      'virtio-blk.randread-4k.qd1.user.ioeventfd-gain',
      'virtio-blk.randread-4k.qd1.user.no-io-poll',
      'virtio-blk.randread-4k.qd1.user.io-poll-gain',
      'virtio-blk.randread-4k.qd1.user.aio-sync',
      'virtio-blk.randread-4k.qd1.user.io_uring-gain',
    ]);
    expect(validateReport(JSON.parse(reportJson(report)))).to.deep.equal([]);
  });
});
