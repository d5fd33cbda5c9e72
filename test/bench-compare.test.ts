import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareToBaseline, comparePairedMetric, compareMetric, parseTolerances, toleranceFor, comparisonExitStatus } from '../src/bench/compare.js';
import { benchCommand } from '../src/bench/cli.js';
import { REPORT_FORMAT, type BenchReport, type SuiteReport, type Verdict } from '../src/bench/report-types.js';
import { reportJson } from '../src/bench/report.js';
import { summarize } from '../src/bench/stats.js';
import { SUITES } from '../src/bench/suites.js';
import type { Better, Metric, Suite } from '../src/bench/types.js';

interface Spec {
  id: string;
  samples: number[];
  better?: Better;
  tolerance?: number;
  unit?: string;
}

function metric(s: Spec): Metric {
  return { id: s.id, description: `synthetic ${s.id}`, unit: s.unit ?? 'us', better: s.better ?? 'lower', samples: s.samples, tolerance: s.tolerance ?? 0.1 };
}

function report(specs: Spec[], o: { suites?: string[]; only?: string[]; failed?: string } = {}): BenchReport {
  const bySuite = new Map<string, SuiteReport>();
  for (const name of o.suites ?? ['micro']) bySuite.set(name, { suite: name, description: name, notes: [], metrics: [], seconds: 1 });
  for (const s of specs) {
    const suite = bySuite.get(s.id.split('.')[0]!)!;
    const m = metric(s);
    suite.metrics.push({ ...m, summary: summarize(m.samples) });
  }
  if (o.failed) Object.assign(bySuite.get(o.failed)!, { error: 'boom', metrics: [] });
  const settings: BenchReport['settings'] = { suites: [...bySuite.keys()], repetitions: 5, maxVcpus: 2 };
  if (o.only) settings.only = o.only;
  return {
    format: REPORT_FORMAT,
    metadata: { date: '2025-01-01T00:00:00.000Z', nodevisorVersion: '0.1.0', nodeVersion: 'v20.0.0', hostKernel: '6.1', cpuModel: 'test', hostCores: 2, kvm: 'hardware', platform: 'linux-x64' },
    settings,
    suites: [...bySuite.values()],
  };
}

const tight = (m: number): number[] => [m * 0.99, m, m * 1.01, m * 0.995, m * 1.005];

function verdictOf(current: Spec, baseline: Spec, tolerance = current.tolerance ?? 0.1): Verdict {
  return compareMetric(metric(current), metric(baseline), tolerance).verdict;
}

describe('bench: baseline comparison', () => {
  describe('verdicts', () => {
    it('passes an unchanged metric with low noise', () => {
      const c = compareMetric(metric({ id: 'micro.a', samples: tight(101) }), metric({ id: 'micro.a', samples: tight(100) }), 0.1);
      expect(c.verdict).to.equal('pass');
      expect(c.ratio).to.be.closeTo(1.01, 1e-9);
      expect(c.noise).to.be.closeTo(0.02, 1e-3);
    });

    it("calls a rise of a 'lower' metric a regression and a fall an improvement", () => {
      expect(verdictOf({ id: 'micro.a', samples: tight(130) }, { id: 'micro.a', samples: tight(100) })).to.equal('regressed');
      expect(verdictOf({ id: 'micro.a', samples: tight(70) }, { id: 'micro.a', samples: tight(100) })).to.equal('improved');
    });

    it("calls a fall of a 'higher' metric a regression and a rise an improvement", () => {
      expect(verdictOf({ id: 'micro.r', better: 'higher', samples: tight(80) }, { id: 'micro.r', better: 'higher', samples: tight(100) })).to.equal('regressed');
      expect(verdictOf({ id: 'micro.r', better: 'higher', samples: tight(125) }, { id: 'micro.r', better: 'higher', samples: tight(100) })).to.equal('improved');
    });

    it('is inconclusive, not regressed, when a change beyond tolerance is within the noise (bands overlap)', () => {
      const c = compareMetric(metric({ id: 'micro.a', samples: [100, 118, 125, 128, 140] }), metric({ id: 'micro.a', samples: [90, 95, 100, 110, 130] }), 0.1);
      expect(c.ratio).to.equal(1.25);
      expect(c.verdict).to.equal('inconclusive');
      expect(c.reason).to.match(/overlap/);
    });

    it('is inconclusive, not pass, when the change is within tolerance but noise exceeds the tolerance', () => {
      const c = compareMetric(metric({ id: 'micro.a', samples: [70, 90, 102, 110, 130] }), metric({ id: 'micro.a', samples: tight(100) }), 0.1);
      expect(c.ratio).to.be.closeTo(1.02, 1e-9);
      expect(c.verdict).to.equal('inconclusive');
      expect(c.reason).to.match(/noise .* exceeds the tolerance/);
      // The same noise is fine against a wider tolerance.
      expect(compareMetric(metric({ id: 'micro.a', samples: [70, 90, 102, 110, 130] }), metric({ id: 'micro.a', samples: tight(100) }), 0.7).verdict).to.equal('pass');
    });

    it('still reports a change far beyond noisy but disjoint bands', () => {
      const base = [80, 100, 120, 90, 110];
      const cur = base.map((x) => x * 3);
      expect(verdictOf({ id: 'micro.a', samples: cur }, { id: 'micro.a', samples: base })).to.equal('regressed');
    });

    it('uses p10-p90 from 10 samples, so a rare outlier does not make a metric noisy', () => {
      const base = [...Array.from({ length: 19 }, (_, i) => 99 + (i % 3)), 400];
      const c = compareMetric(metric({ id: 'micro.a', samples: tight(100) }), metric({ id: 'micro.a', samples: base }), 0.1);
      expect(c.baseline!.noise).to.be.below(0.1);
      expect(c.verdict).to.equal('pass');
      // With 5 samples min-max counts the outlier.
      const few = compareMetric(metric({ id: 'micro.a', samples: tight(100) }), metric({ id: 'micro.a', samples: [100, 101, 99, 100, 400] }), 0.1);
      expect(few.verdict).to.equal('inconclusive');
    });

    it('is inconclusive with a single sample on a side (no noise estimate)', () => {
      expect(verdictOf({ id: 'micro.a', samples: [300] }, { id: 'micro.a', samples: tight(100) })).to.equal('inconclusive');
    });

    it('is inconclusive when a metric changed unit or direction', () => {
      expect(verdictOf({ id: 'micro.a', samples: tight(100), unit: 'ms' }, { id: 'micro.a', samples: tight(100) })).to.equal('inconclusive');
    });
  });

  describe('reports', () => {
    it('marks metrics missing from the run and new in it, and counts every verdict', () => {
      const base = report([
        { id: 'micro.a', samples: tight(100) },
        { id: 'micro.b', samples: tight(100) },
        { id: 'micro.gone', samples: tight(100) },
      ]);
      const cur = report([
        { id: 'micro.a', samples: tight(100) },
        { id: 'micro.b', samples: tight(150) },
        { id: 'micro.fresh', samples: tight(5) },
      ]);
      const c = compareToBaseline(cur, base);
      const v = Object.fromEntries(c.metrics.map((m) => [m.id, m.verdict]));
      expect(v).to.deep.equal({ 'micro.a': 'pass', 'micro.b': 'regressed', 'micro.fresh': 'new', 'micro.gone': 'missing' });
      expect(c.counts).to.deep.equal({ pass: 1, regressed: 1, improved: 0, inconclusive: 0, missing: 1, new: 1 });
      expect(c.exitStatus).to.equal(1);
    });

    it('ignores baseline metrics the run did not set out to measure (other suites, --only)', () => {
      const base = report([{ id: 'micro.a', samples: tight(100) }, { id: 'micro.b', samples: tight(100) }, { id: 'scaling.x', samples: tight(1) }], { suites: ['micro', 'scaling'] });
      const cur = report([{ id: 'micro.a', samples: tight(100) }], { only: ['micro.a'] });
      const c = compareToBaseline(cur, base);
      expect(c.metrics.map((m) => `${m.id}:${m.verdict}`)).to.deep.equal(['micro.a:pass']);
    });

    it('reports the metrics of a suite that failed as missing, saying why', () => {
      const base = report([{ id: 'micro.a', samples: tight(100) }]);
      const cur = report([], { failed: 'micro' });
      const c = compareToBaseline(cur, base);
      expect(c.metrics[0]!.verdict).to.equal('missing');
      expect(c.metrics[0]!.reason).to.match(/suite micro failed/);
    });

    it('states the noise floor: median and worst metric noise', () => {
      const base = report([{ id: 'micro.a', samples: tight(100) }, { id: 'micro.b', samples: [80, 100, 120] }, { id: 'micro.c', samples: tight(10) }]);
      const cur = report([{ id: 'micro.a', samples: tight(100) }, { id: 'micro.b', samples: tight(100) }, { id: 'micro.c', samples: [9, 10, 10.5] }]);
      const c = compareToBaseline(cur, base);
      expect(c.noiseFloor!.worst).to.deep.equal({ id: 'micro.b', noise: 0.4 });
      expect(c.noiseFloor!.median).to.be.closeTo(0.15, 1e-9);
    });
  });

  describe('tolerances', () => {
    it('parses global, per-id and prefix tolerances, as fractions or percentages', () => {
      const t = parseTolerances(['0.15', 'micro.ipi-rtt=20%,micro.ipi-rtt.user=0.3']);
      expect(t.all).to.equal(0.15);
      expect([...t.byPattern]).to.deep.equal([['micro.ipi-rtt', 0.2], ['micro.ipi-rtt.user', 0.3]]);
      for (const bad of ['x', '-0.1', 'micro.a=', '=0.1', 'micro..a=0.1', '0.1.2']) expect(() => parseTolerances([bad]), bad).to.throw(/bad tolerance/);
    });

    it('applies the most specific override, then the global one, then the metric default', () => {
      const t = parseTolerances(['0.15', 'micro.ipi-rtt=0.2', 'micro.ipi-rtt.user=0.3']);
      expect(toleranceFor({ id: 'micro.ipi-rtt.user', tolerance: 0.05 }, t)).to.equal(0.3);
      expect(toleranceFor({ id: 'micro.ipi-rtt.kernel', tolerance: 0.05 }, t)).to.equal(0.2);
      expect(toleranceFor({ id: 'micro.ipi-rtt.user-vs-kernel', tolerance: 0.05 }, t)).to.equal(0.2);
      expect(toleranceFor({ id: 'micro.exit-rtt', tolerance: 0.05 }, t)).to.equal(0.15);
      expect(toleranceFor({ id: 'micro.exit-rtt', tolerance: 0.05 })).to.equal(0.05);
      expect(toleranceFor({ id: 'micro.ipi-rttx', tolerance: 0.05 }, parseTolerances(['micro.ipi-rtt=0.2']))).to.equal(0.05);
    });

    it('turns a regression into a pass when a wider tolerance is given for that metric or its prefix', () => {
      const base = report([{ id: 'micro.ipi-rtt.user', samples: tight(100) }, { id: 'micro.exit-rtt', samples: tight(100) }]);
      const cur = report([{ id: 'micro.ipi-rtt.user', samples: tight(120) }, { id: 'micro.exit-rtt', samples: tight(120) }]);
      const verdicts = (t: string[]): string[] => compareToBaseline(cur, base, { tolerances: parseTolerances(t) }).metrics.map((m) => m.verdict);
      expect(verdicts([])).to.deep.equal(['regressed', 'regressed']);
      expect(verdicts(['micro.ipi-rtt.user=0.3'])).to.deep.equal(['pass', 'regressed']);
      expect(verdicts(['micro.ipi-rtt=0.3'])).to.deep.equal(['pass', 'regressed']);
      expect(verdicts(['0.3'])).to.deep.equal(['pass', 'pass']);
      expect(verdicts(['0.3', 'micro.exit-rtt=0.1'])).to.deep.equal(['pass', 'regressed']);
    });
  });

  describe('exit status', () => {
    const counts = (o: Partial<Record<Verdict, number>>): Record<Verdict, number> => ({ pass: 0, regressed: 0, improved: 0, inconclusive: 0, missing: 0, new: 0, ...o });

    it('is 1 for a regression, with or without --strict', () => {
      expect(comparisonExitStatus(counts({ regressed: 1, inconclusive: 3 }), false)).to.equal(1);
      expect(comparisonExitStatus(counts({ regressed: 1, inconclusive: 3 }), true)).to.equal(1);
    });

    it('is 0 for inconclusive or missing metrics alone, and 2 under --strict', () => {
      for (const o of [{ inconclusive: 1 }, { missing: 1 }]) {
        expect(comparisonExitStatus(counts({ pass: 4, ...o }), false)).to.equal(0);
        expect(comparisonExitStatus(counts({ pass: 4, ...o }), true)).to.equal(2);
      }
      expect(comparisonExitStatus(counts({ pass: 4, improved: 1, new: 2 }), true)).to.equal(0);
    });

    describe('through `nodevisor bench`', () => {
      let dir: string;
      let factor = 1;
      let spread = 0.01;
      const fake: Suite = {
        name: 'fake',
        description: 'synthetic suite for CLI tests',
        async run(ctx) {
          const samples = Array.from({ length: ctx.repetitions }, (_, i) => 100 * factor * (1 + spread * (i % 2 ? 1 : -1)));
          return { suite: 'fake', notes: [], metrics: [metric({ id: 'fake.latency', samples })] };
        },
      };
      const quiet = async (args: string[]): Promise<{ status: number; out: string; err: string }> => {
        const o = process.stdout.write.bind(process.stdout);
        const e = process.stderr.write.bind(process.stderr);
        let out = '';
        let err = '';
        process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
        process.stderr.write = ((s: string) => ((err += s), true)) as typeof process.stderr.write;
        try {
          return { status: await benchCommand(args), out, err };
        } finally {
          process.stdout.write = o;
          process.stderr.write = e;
        }
      };

      before(async () => {
        dir = mkdtempSync(join(tmpdir(), 'nodevisor-bench-'));
        SUITES.set(fake.name, fake);
        factor = 1;
        spread = 0.01;
        const r = await quiet(['fake', '--repetitions', '4', '--json', join(dir, 'base.json')]);
        expect(r.status).to.equal(0);
      });
      after(() => {
        SUITES.delete(fake.name);
        rmSync(dir, { recursive: true, force: true });
      });

      it('exits 0 when nothing changed, 1 on a regression, and writes the comparison into --json', async () => {
        factor = 1;
        spread = 0.01;
        expect((await quiet(['fake', '--repetitions', '4', '--baseline', join(dir, 'base.json')])).status).to.equal(0);
        factor = 1.5;
        const r = await quiet(['fake', '--repetitions', '4', '--baseline', join(dir, 'base.json'), '--json', join(dir, 'cur.json')]);
        expect(r.status).to.equal(1);
        expect(r.out).to.match(/fake\.latency .* regressed/);
        expect(r.out).to.match(/noise floor: median/);
        const written = JSON.parse(readFileSync(join(dir, 'cur.json'), 'utf8')) as BenchReport;
        expect(written.comparison!.metrics[0]!.verdict).to.equal('regressed');
        expect((await quiet(['fake', '--repetitions', '4', '--baseline', join(dir, 'base.json'), '--tolerance', 'fake.latency=0.6'])).status).to.equal(0);
      });

      it('exits 0 on an inconclusive comparison, 2 with --strict', async () => {
        factor = 1.02;
        spread = 0.3;
        expect((await quiet(['fake', '--repetitions', '4', '--baseline', join(dir, 'base.json')])).status).to.equal(0);
        const strict = await quiet(['fake', '--repetitions', '4', '--baseline', join(dir, 'base.json'), '--strict']);
        expect(strict.status).to.equal(2);
        expect(strict.out).to.match(/inconclusive/);
      });

      it('exits 3 when a suite fails and 64 on bad usage, before running anything', async () => {
        const broken: Suite = { name: 'broken', description: 'fails', run: () => Promise.reject(new Error('no KVM here')) };
        SUITES.set(broken.name, broken);
        try {
          const r = await quiet(['broken']);
          expect(r.status).to.equal(3);
          expect(r.out).to.match(/FAILED: no KVM here/);
        } finally {
          SUITES.delete(broken.name);
        }
        writeFileSync(join(dir, 'junk.json'), '{"format": "something else"}');
        for (const args of [['nosuch'], ['--repetitions', '0'], ['--tolerance', 'x', '--baseline', join(dir, 'base.json')], ['--tolerance', '0.1'], ['--baseline', join(dir, 'missing.json')], ['--baseline', join(dir, 'junk.json')], ['--bogus'], ['--json', join(dir, 'no', 'such', 'dir', 'r.json')]]) {
          const r = await quiet(args);
          expect(r.status, args.join(' ')).to.equal(64);
          expect(r.err, args.join(' ')).to.match(/^nodevisor bench: /);
        }
      });

      it('round-trips a baseline through JSON exactly', () => {
        const r = report([{ id: 'micro.a', samples: [1.5, 2.25, 3.125] }]);
        expect(JSON.parse(reportJson(r))).to.deep.equal(r);
      });
    });
  });
});

describe('paired comparison (A/B runs)', () => {
  const metric = (samples: number[], better: 'higher' | 'lower' = 'higher') => ({ id: 'linux.compute.throughput-1', description: 'd', unit: 'Mops/s', better, samples, tolerance: 0.15 });

  it('catches a change every pair agrees on, even when load drift makes the sample bands overlap', () => {
    const a = metric([100, 60, 80]);
    const b = metric([80, 48, 64]);
    expect(compareMetric(b, a, 0.15).verdict).to.equal('inconclusive');
    const c = comparePairedMetric(b, a, 0.15);
    expect(c.verdict).to.equal('regressed');
    expect(c.ratio).to.be.closeTo(0.8, 1e-9);
    expect(c.reason).to.match(/every pair agrees/);
  });

  it('does not call a change that one disturbed pair alone makes', () => {
    const c = comparePairedMetric(metric([100, 100]), metric([100, 60]), 0.15);
    expect(c.verdict).to.equal('inconclusive');
    expect(c.reason).to.match(/not all in the same direction/);
  });

  it('passes pairs within tolerance, and reads the direction from `better`', () => {
    expect(comparePairedMetric(metric([101, 99, 100]), metric([100, 100, 100]), 0.15).verdict).to.equal('pass');
    expect(comparePairedMetric(metric([12, 12.5], 'lower'), metric([10, 10], 'lower'), 0.15).verdict).to.equal('regressed');
    expect(comparePairedMetric(metric([8, 8.4], 'lower'), metric([10, 10], 'lower'), 0.15).verdict).to.equal('improved');
  });

  it('is inconclusive with fewer than two pairs', () => {
    expect(comparePairedMetric(metric([50]), metric([100]), 0.15).verdict).to.equal('inconclusive');
  });
});
