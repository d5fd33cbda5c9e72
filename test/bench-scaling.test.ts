import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scalingSuite, vcpuCounts, wantsWorkload } from '../src/bench/scaling.js';
import { runKey, scalingMetrics } from '../src/bench/scaling-metrics.js';
import { runScalingGuest, calibratedTscHz, type GuestRun, type ScalingWorkload } from '../src/bench/scaling-guest.js';
import { tscFrequency } from '../src/bench/scaling-tsc.js';
import type { Metric, SuiteResult } from '../src/bench/types.js';

const WORKLOADS: ScalingWorkload[] = ['compute', 'memory', 'contention', 'ipi'];

function byId(metrics: Metric[]): Map<string, Metric> {
  return new Map(metrics.map((m) => [m.id, m]));
}

/** A guest run whose vCPUs each did `ops` in `seconds` at a 1 GHz TSC. */
function fakeRun(workload: ScalingWorkload, vcpus: number, ops: number, seconds = 0.25): GuestRun {
  const records = Array.from({ length: vcpus }, () => ({ ops, tscTicks: seconds * 1e9, timerTicks: 250, ipisTaken: 0 }));
  return { workload, vcpus, records, calibration: { tscTicks: 1e9, pmTicks: 3_579_545, bracketTicks: 1 } };
}

describe('scaling suite: planning and arithmetic', () => {
  it('runs powers of two up to maxVcpus, and maxVcpus itself', () => {
    expect(vcpuCounts(1)).to.deep.equal([1]);
    expect(vcpuCounts(2)).to.deep.equal([1, 2]);
    expect(vcpuCounts(6)).to.deep.equal([1, 2, 4, 6]);
    expect(vcpuCounts(8)).to.deep.equal([1, 2, 4, 8]);
    expect(() => vcpuCounts(0)).to.throw(/positive integer/);
  });

  it('selects workloads by metric id or dotted prefix', () => {
    expect(wantsWorkload(undefined, 'ipi')).to.equal(true);
    expect(wantsWorkload(['scaling'], 'ipi')).to.equal(true);
    expect(wantsWorkload(['scaling.compute'], 'compute')).to.equal(true);
    expect(wantsWorkload(['scaling.compute.efficiency-2'], 'compute')).to.equal(true);
    expect(wantsWorkload(['scaling.compute'], 'contention')).to.equal(false);
    expect(wantsWorkload(['micro'], 'compute')).to.equal(false);
  });

  it('sums per-vCPU rates, and divides by n times the same repetition\'s 1-vCPU rate for efficiency', () => {
    const guest = new Map([
      [runKey('compute', 1), [fakeRun('compute', 1, 100e6), fakeRun('compute', 1, 120e6)]],
      [runKey('compute', 2), [fakeRun('compute', 2, 99e6), fakeRun('compute', 2, 88e6)]],
    ]);
    const host = new Map([
      [runKey('compute', 1), [[{ ops: 110e6, ns: 0.25e9 }], [{ ops: 110e6, ns: 0.25e9 }]]],
      [runKey('compute', 2), [[{ ops: 110e6, ns: 0.25e9 }, { ops: 99e6, ns: 0.25e9 }], [{ ops: 110e6, ns: 0.25e9 }, { ops: 99e6, ns: 0.25e9 }]]],
    ]);
    const m = byId(scalingMetrics({ workloads: ['compute'], counts: [1, 2], guest, host, tscHz: 1e9, context: { irqchip: 'user' } }));
    const close = (xs: number[], ys: number[]) => xs.forEach((x, i) => expect(x).to.be.closeTo(ys[i]!, 1e-9 * Math.abs(ys[i]!)));
    close(m.get('scaling.compute.vcpus-1')!.samples, [400e6, 480e6]);
    close(m.get('scaling.compute.vcpus-2')!.samples, [792e6, 704e6]);
    // Each repetition against its own 1-vCPU run: 792 / (2 x 400) and 704 / (2 x 480).
    expect(m.has('scaling.compute.efficiency-1')).to.equal(false);
    close(m.get('scaling.compute.efficiency-2')!.samples, [0.99, 704 / 960]);
    close(m.get('scaling.compute.host-efficiency-2')!.samples, [0.95, 0.95]);
    close(m.get('scaling.compute.efficiency-vs-host-2')!.samples, [0.99 / 0.95, 704 / 960 / 0.95]);
    expect(m.get('scaling.compute.efficiency-vs-host-2')!.params).to.include({ target: 0.95, workload: 'compute', vcpus: 2, ideal: 1 });
    expect(m.get('scaling.compute.vcpus-2')!.params).to.include({ family: 'scaling.compute', kind: 'throughput', irqchip: 'user' });
  });

  it('reports memory in MiB/s and leaves the reference out for ipi', () => {
    const guest = new Map([
      [runKey('memory', 1), [fakeRun('memory', 1, 2 ** 30)]],
      [runKey('ipi', 1), [fakeRun('ipi', 1, 2500)]],
    ]);
    const m = byId(scalingMetrics({ workloads: ['memory', 'ipi'], counts: [1], guest, host: new Map(), tscHz: 1e9, context: {} }));
    expect(m.get('scaling.memory.vcpus-1')!.unit).to.equal('MiB/s');
    expect(m.get('scaling.memory.vcpus-1')!.samples[0]).to.be.closeTo(4096, 1e-6);
    expect(m.get('scaling.ipi.vcpus-1')).to.include({ unit: 'IPIs/s' });
    expect([...m.keys()].filter((id) => id.includes('host'))).to.deep.equal([]);
  });

  it('takes the TSC frequency from sysfs, else from the PM-timer calibrations, and prefers a measurement that disagrees', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scaling-tsc-'));
    try {
      const cal = (mhz: number) => ({ tscTicks: mhz * 1e6 * 0.25, pmTicks: 3_579_545 * 0.25, bracketTicks: 1000 });
      expect(calibratedTscHz(cal(2000))).to.be.closeTo(2e9, 1);
      const missing = join(dir, 'absent');
      const measured = tscFrequency([cal(2000), cal(2002), cal(3000)], missing);
      expect(measured.source).to.equal('pm-timer');
      expect(measured.hz).to.be.closeTo(2002e6, 1);
      expect(() => tscFrequency([], missing)).to.throw(/no TSC frequency/);
      const khz = join(dir, 'tsc_freq_khz');
      writeFileSync(khz, '2001000\n');
      expect(tscFrequency([cal(2000)], khz)).to.deep.equal({ hz: 2001e6, source: 'sysfs' });
      expect(tscFrequency([], khz)).to.deep.equal({ hz: 2001e6, source: 'sysfs' });
      const scaled = tscFrequency([cal(1000)], khz);
      expect(scaled.source).to.equal('pm-timer');
      expect(scaled.hz).to.be.closeTo(1000e6, 1);
      expect(scaled.note).to.match(/using the measurement/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scaling suite under KVM', function () {
  this.timeout(120000);
  let result: SuiteResult;
  const progress: { done: number; total: number; label: string }[] = [];

  before(async () => {
    result = await scalingSuite.run({
      repetitions: 1,
      maxVcpus: 2,
      progress: (done, total, label) => progress.push({ done, total, label }),
      log: () => {},
    });
  });

  it('measures every workload at 1 and 2 vCPUs with plausible, finite, non-zero throughput', () => {
    const m = byId(result.metrics);
    const plausible: Record<ScalingWorkload, [number, number]> = {
      compute: [1e6, 1e11],
      memory: [10, 1e7],
      contention: [1e4, 1e11],
      ipi: [10, 1e8],
    };
    for (const w of WORKLOADS) {
      for (const n of [1, 2]) {
        const metric = m.get(`scaling.${w}.vcpus-${n}`);
        expect(metric, `scaling.${w}.vcpus-${n}`).to.not.equal(undefined);
        expect(metric!.samples).to.have.length(1);
        const [lo, hi] = plausible[w];
        for (const s of metric!.samples) {
          expect(Number.isFinite(s), `${metric!.id} = ${s}`).to.equal(true);
          expect(s, metric!.id).to.be.within(lo, hi);
        }
        expect(metric!.better).to.equal('higher');
      }
      const eff = m.get(`scaling.${w}.efficiency-2`)!;
      expect(eff.unit).to.equal('ratio');
      expect(eff.samples.every((s) => Number.isFinite(s) && s > 0), eff.id).to.equal(true);
    }
  });

  it('reports compute efficiency at 2 vCPUs and the host-thread reference for the ring-3 workloads', () => {
    const m = byId(result.metrics);
    expect(m.get('scaling.compute.efficiency-2')!.samples[0]).to.be.greaterThan(0);
    for (const w of ['compute', 'memory', 'contention']) {
      expect(m.get(`scaling.${w}.host-threads-1`)!.samples[0]).to.be.greaterThan(0);
      for (const kind of ['host-threads', 'host-efficiency', 'efficiency-vs-host']) {
        const metric = m.get(`scaling.${w}.${kind}-2`)!;
        expect(metric, `scaling.${w}.${kind}-2`).to.not.equal(undefined);
        expect(metric.samples.every((s) => Number.isFinite(s) && s > 0), metric.id).to.equal(true);
      }
    }
    expect([...m.keys()].filter((id) => id.startsWith('scaling.ipi.') && id.includes('host'))).to.deep.equal([]);
    expect(result.notes.some((n) => /guest TSC [\d.]+ MHz/.test(n))).to.equal(true);
  });

  it('labels every metric with the params that charts and comparisons need', () => {
    expect(result.suite).to.equal('scaling');
    for (const m of result.metrics) {
      expect(m.id).to.match(/^scaling\.(compute|memory|contention|ipi)\.[a-z-]+-\d+$/);
      expect(m.description.length).to.be.greaterThan(10);
      expect(m.tolerance).to.be.within(0.01, 0.5);
      expect(m.params, m.id).to.include({ irqchip: 'user' });
      expect(m.params!.workload).to.equal(m.id.split('.')[1]);
      expect(m.params!.vcpus).to.equal(Number(/(\d+)$/.exec(m.id)![1]));
      expect(m.params!.family).to.be.a('string');
      expect(m.params!.tscMHz).to.be.within(100, 10000);
    }
  });

  it('reports progress for every run, ending complete', () => {
    const total = progress[0]!.total;
    expect(total).to.equal(2 * (4 + 3)); // 2 counts x (4 guest workloads + 3 host references)
    expect(progress[progress.length - 1]).to.include({ done: total, total });
    expect(progress.some((p) => /ipi: guest, 2 vCPUs/.test(p.label))).to.equal(true);
  });

  it('keeps timer interrupts firing on every vCPU through the window and calibrates the TSC against the PM timer', async () => {
    const run = await runScalingGuest('memory', 2);
    for (const r of run.records) {
      expect(r.timerTicks).to.be.greaterThan(10);
      expect(r.ops).to.be.greaterThan(0);
    }
    expect(run.calibration.bracketTicks).to.be.lessThan(run.calibration.tscTicks / 100);
    expect(calibratedTscHz(run.calibration)).to.be.within(1e8, 1e10);
  });

  it('runs only what `only` selects and passes test knobs to the VM (a delayed IPI path is slower)', async () => {
    const delayed = await scalingSuite.run({ repetitions: 1, maxVcpus: 1, only: ['scaling.ipi.vcpus-1'], progress: () => {}, log: () => {}, testKnobs: { ipiDelayUs: 300 } });
    expect(delayed.metrics.map((m) => m.id)).to.deep.equal(['scaling.ipi.vcpus-1']);
    const normal = byId(result.metrics).get('scaling.ipi.vcpus-1')!.samples[0]!;
    // 300 us per delivery against ~100 us per round without: about 4x fewer; assert only 1.5x.
    expect(delayed.metrics[0]!.samples[0]!).to.be.lessThan(normal / 1.5);
  });
});
