import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runBenchmark } from '../src/bench/runner.js';
import { compareAb } from '../src/bench/ab.js';
import { InitTranscript, parseMetricLine, parseMetricLines } from '../src/bench/linux-protocol.js';
import { linuxKey, linuxMetrics } from '../src/bench/linux-metrics.js';
import { builtinWorkload, userWorkload } from '../src/bench/linux-workloads.js';
import { linuxOptions, LinuxUsageError } from '../src/bench/linux-cli.js';
import { guestCompiler } from '../src/images/guest-programs.js';
import { parseReport } from '../src/bench/schema.js';
import { reportJson } from '../src/bench/report.js';
import type { BenchReport, MetricReport } from '../src/bench/report-types.js';
import { PACKAGE_ROOT } from '../src/guests/build.js';
import { testKernelOrSkip } from './helpers/linux.js';

const m = (name: string, value: number, unit = 'Mops/s', better: 'higher' | 'lower' = 'higher') => ({ name, value, unit, better });

describe('bench linux: the console protocol', () => {
  it('parses metric lines and rejects malformed ones', () => {
    expect(parseMetricLine('metric throughput 12.5 Mops/s higher')).to.deep.equal(m('throughput', 12.5));
    expect(parseMetricLine('metric round-trip 3e2 us lower\r')).to.deep.equal(m('round-trip', 300, 'us', 'lower'));
    for (const bad of ['metric x NaN u higher', 'metric x 1 u sideways', 'metric x 1 higher', 'metrics x 1 u higher', 'metric a/b 1 u higher', '[  1.0] metric x 1 u higher']) {
      expect(parseMetricLine(bad), bad).to.equal(null);
    }
    expect(parseMetricLines('noise\nmetric a 1 u higher\nmetric b 2 v lower\n')).to.have.length(2);
  });

  it("follows /init's transcript: CPUs, each command's metrics and status, its own exit status, across split chunks", () => {
    const t = new InitTranscript();
    const text = [
      '[    1.0] Run /init as init process',
      'nodevisor-init: 2 CPUs online',
      'nodevisor-init: run 1: /bin/nvbench',
      'metric throughput 10 Mops/s higher',
      '[    2.0] some kernel message',
      'nodevisor-init: run 1 exited with status 0',
      'nodevisor-init: run 2: /bin/mine',
      'metric widgets 3 w higher',
      'nodevisor-init: run 2 exited with status 4',
      'nodevisor-init: exit status 4',
      '',
    ].join('\r\n');
    for (let i = 0; i < text.length; i += 7) t.push(text.slice(i, i + 7));
    expect(t.cpusOnline).to.equal(2);
    expect(t.initExitStatus).to.equal(4);
    expect(t.commands).to.deep.equal([
      { index: 1, program: '/bin/nvbench', status: 0, metrics: [m('throughput', 10)] },
      { index: 2, program: '/bin/mine', status: 4, metrics: [m('widgets', 3, 'w')] },
    ]);
  });
});

describe('bench linux: metrics from samples', () => {
  const compute = builtinWorkload('compute', 1, '/nvbench');
  const pingpong = builtinWorkload('pingpong', 1, '/nvbench');
  const metrics = linuxMetrics({
    counts: [1, 2],
    workloads: [compute, pingpong],
    guest: new Map([
      [linuxKey('compute', 1), [[m('throughput', 100), m('threads', 1, 'threads')], [m('throughput', 110)]]],
      [linuxKey('compute', 2), [[m('throughput', 180)], [m('throughput', 198)]]],
      [linuxKey('pingpong', 1), [[m('round-trip', 50, 'us', 'lower')], [m('round-trip', 60, 'us', 'lower')]]],
      [linuxKey('pingpong', 2), [[m('round-trip', 200, 'us', 'lower')], [m('round-trip', 220, 'us', 'lower')]]],
    ]),
    host: new Map([
      [linuxKey('compute', 1), [[m('throughput', 125)], [m('throughput', 110)]]],
      [linuxKey('compute', 2), [[m('throughput', 250)], [m('throughput', 220)]]],
      [linuxKey('pingpong', 1), [[m('round-trip', 5, 'us', 'lower')], [m('round-trip', 6, 'us', 'lower')]]],
      [linuxKey('pingpong', 2), [[m('round-trip', 20, 'us', 'lower')], [m('round-trip', 22, 'us', 'lower')]]],
    ]),
    boot: new Map([[1, [9, 10]], [2, [11, 12]]]),
    context: { irqchip: 'user' },
  });
  const byId = new Map(metrics.map((x) => [x.id, x]));

  it('names metrics linux.<workload>.<measure>-<vcpus>, with boot times', () => {
    expect(byId.get('linux.boot.init-2')!.samples).to.deep.equal([11, 12]);
    expect(byId.get('linux.compute.throughput-2')!.samples).to.deep.equal([180, 198]);
    expect(byId.get('linux.compute.throughput-2')!.params).to.include({ vcpus: 2, irqchip: 'user', workload: 'compute' });
    expect(byId.get('linux.compute.host-throughput-1')!.samples).to.deep.equal([125, 110]);
    // Only a built-in's primary measure is reported.
    expect(byId.has('linux.compute.threads-1')).to.equal(false);
  });

  it('pairs each repetition with its host sample: guest/host for throughput, host/guest for latency', () => {
    expect(byId.get('linux.compute.vs-host-1')!.samples).to.deep.equal([0.8, 1]);
    expect(byId.get('linux.pingpong.vs-host-2')!.samples).to.deep.equal([0.1, 0.1]);
    expect(byId.get('linux.pingpong.vs-host-2')!.better).to.equal('higher');
    expect(byId.get('linux.pingpong.round-trip-2')!.better).to.equal('lower');
  });

  it('derives compute scaling efficiency for guest and host, and their ratio', () => {
    expect(byId.get('linux.compute.efficiency-2')!.samples).to.deep.equal([0.9, 0.9]);
    expect(byId.get('linux.compute.host-efficiency-2')!.samples).to.deep.equal([1, 1]);
    expect(byId.get('linux.compute.efficiency-vs-host-2')!.samples).to.deep.equal([0.9, 0.9]);
    expect(byId.get('linux.compute.efficiency-vs-host-2')!.params).to.include({ target: 0.95 });
    expect(byId.has('linux.compute.efficiency-1')).to.equal(false);
  });

  it('reports every measure of a user workload, with its own unit and direction, and no host ratio', () => {
    const user = userWorkload('/x/mine', ['7']);
    expect(user.guestCommand).to.equal('mine 7');
    const out = linuxMetrics({ counts: [1], workloads: [user], guest: new Map([[linuxKey('mine', 1), [[m('answer', 42, 'w'), m('latency', 3, 'us', 'lower')]]]]), host: new Map(), boot: new Map(), context: {} });
    expect(out.map((x) => [x.id, x.unit, x.better])).to.deep.equal([
      ['linux.mine.answer-1', 'w', 'higher'],
      ['linux.mine.latency-1', 'us', 'lower'],
    ]);
  });
});

describe('bench linux: command-line options', () => {
  const parse = (values: Record<string, string | string[]>, tokens: { kind: string; name?: string; value?: string }[] = [], suites = ['linux']) => linuxOptions(values, tokens, suites);

  it('takes A/B settings, workloads with their own arguments, and the run settings', () => {
    const o = parse(
      { kernel: '/k', seconds: '0.5', irqchip: 'split', 'halt-poll-ns': '0', 'ab-kernel': '/k2', ab: ['irqchip=kernel', 'memory=512M', 'cmdline-append=nosmt', 'halt-poll-ns=200000', 'io-poll-ns=0'], workload: ['/a', '/b'], 'workload-arg': ['1', '2'] },
      [
        { kind: 'option', name: 'workload', value: '/a' },
        { kind: 'option', name: 'workload-arg', value: '1' },
        { kind: 'option', name: 'workload', value: '/b' },
        { kind: 'option', name: 'workload-arg', value: '2' },
      ],
    );
    expect(o).to.deep.equal({
      kernel: '/k',
      irqchip: 'split',
      haltPollNs: 0,
      seconds: 0.5,
      workloads: [{ program: '/a', args: ['1'] }, { program: '/b', args: ['2'] }],
      ab: { kernel: '/k2', irqchip: 'kernel', memory: '512M', cmdlineAppend: 'nosmt', haltPollNs: 200000, ioPollNs: 0 },
    });
  });

  it('refuses misuse with a message that says what to do', () => {
    expect(() => parse({ seconds: '1' }, [], ['micro'])).to.throw(LinuxUsageError, /option of the linux suite/);
    expect(() => parse({ ab: ['irqchip=weird'] })).to.throw(LinuxUsageError, /irqchip must be one of user, split, kernel/);
    expect(() => parse({ ab: ['color=blue'] })).to.throw(LinuxUsageError, /unknown setting "color"/);
    expect(() => parse({ ab: ['irqchip'] })).to.throw(LinuxUsageError, /KEY=VALUE/);
    expect(() => parse({ ab: ['halt-poll-ns=-5'] })).to.throw(LinuxUsageError, /halt-poll-ns must be a whole number of ns/);
    expect(() => parse({ ab: ['io-poll-ns=20000000'] })).to.throw(LinuxUsageError, /io-poll-ns must be a whole number of ns/);
    expect(() => parse({ seconds: '0' })).to.throw(LinuxUsageError, /--seconds/);
    expect(() => parse({ 'workload-arg': ['x'] }, [{ kind: 'option', name: 'workload-arg', value: 'x' }])).to.throw(LinuxUsageError, /must follow/);
    expect(parse({})).to.equal(undefined);
  });
});

function ids(report: BenchReport): Map<string, MetricReport> {
  return new Map(report.suites.flatMap((s) => s.metrics).map((x) => [x.id, x]));
}

describe('nodevisor bench linux (under KVM)', function () {
  this.timeout(900000);
  const quick = { seconds: 0.3, memory: '128M' };

  it('produces every metric at 1 and 2 vCPUs, and a report that reads back', async function () {
    testKernelOrSkip(this);
    const report = await runBenchmark({ suites: ['linux'], repetitions: 1, maxVcpus: 2, linux: quick });
    const suite = report.suites[0]!;
    expect(suite.error, suite.error).to.equal(undefined);
    const got = ids(report);
    const want = ['linux.boot.init-1', 'linux.boot.init-2', 'linux.compute.efficiency-2', 'linux.compute.host-efficiency-2', 'linux.compute.efficiency-vs-host-2'];
    for (const [w, measure] of [['compute', 'throughput'], ['pingpong', 'round-trip'], ['lock', 'throughput'], ['fork', 'rate'], ['disk', 'read']]) {
      for (const n of [1, 2]) want.push(`linux.${w}.${measure}-${n}`, `linux.${w}.host-${measure}-${n}`, `linux.${w}.vs-host-${n}`);
    }
    for (const id of want) expect(got.has(id), id).to.equal(true);
    for (const x of got.values()) expect(x.summary.median, x.id).to.be.greaterThan(0);
    expect(parseReport(reportJson(report)).suites[0]!.metrics).to.have.length(got.size);
  });

  it("turns a user workload's metric lines into report metrics", async function () {
    testKernelOrSkip(this);
    const dir = mkdtempSync(join(tmpdir(), 'nodevisor-user-workload-'));
    try {
      const program = join(dir, 'widgets');
      execFileSync(guestCompiler(), ['-static', '-O2', '-o', program, join(PACKAGE_ROOT, 'test', 'guests', 'linux', 'user-metric.c')]);
      const report = await runBenchmark({ suites: ['linux'], repetitions: 1, maxVcpus: 1, linux: { ...quick, workloads: [{ program, args: ['42'] }] } });
      expect(report.suites[0]!.error, report.suites[0]!.error).to.equal(undefined);
      const got = ids(report);
      expect(got.get('linux.widgets.answer-1')).to.include({ unit: 'widgets', better: 'higher' });
      expect(got.get('linux.widgets.answer-1')!.samples).to.deep.equal([42]);
      expect(got.get('linux.widgets.vcpus-seen-1')!.samples).to.deep.equal([1]);
      expect(got.get('linux.widgets.latency-1')!.better).to.equal('lower');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports no regression for an A/B run of the same kernel twice', async function () {
    const kernel = testKernelOrSkip(this);
    const report = await runBenchmark({ suites: ['linux'], repetitions: 2, maxVcpus: 1, only: ['linux.compute', 'linux.boot'], linux: { ...quick, ab: { kernel } } });
    expect(report.suites[0]!.error, report.suites[0]!.error).to.equal(undefined);
    expect(report.ab!.baseline[0]!.metrics.map((x) => x.id)).to.deep.equal(report.suites[0]!.metrics.map((x) => x.id));
    const c = report.comparison!;
    expect(c.counts.regressed, JSON.stringify(c.metrics.filter((x) => x.verdict === 'regressed'))).to.equal(0);
    expect(c.exitStatus).to.equal(0);
    expect(compareAb(report).counts.regressed).to.equal(0);
  });

  it('reports a regression when B is deliberately slowed (kicks out of KVM_RUN delayed)', async function () {
    testKernelOrSkip(this);
    const report = await runBenchmark({ suites: ['linux'], repetitions: 2, maxVcpus: 1, only: ['linux.compute'], linux: { ...quick, ab: { testKnobs: { kickDelayUs: 1500 } } } });
    expect(report.suites[0]!.error, report.suites[0]!.error).to.equal(undefined);
    const verdict = report.comparison!.metrics.find((x) => x.id === 'linux.compute.throughput-1')!;
    expect(verdict.verdict, verdict.reason).to.equal('regressed');
    expect(report.comparison!.exitStatus).to.equal(1);
  });
});
