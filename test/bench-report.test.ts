import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { compareToBaseline } from '../src/bench/compare.js';
import { assertSupported, validate, type JsonSchema } from '../src/bench/json-schema.js';
import { ProgressBar } from '../src/bench/progress.js';
import { formatReport, reportJson } from '../src/bench/report.js';
import type { BenchReport } from '../src/bench/report-types.js';
import { runBenchmark } from '../src/bench/runner.js';
import { parseReport, reportSchema, validateReport } from '../src/bench/schema.js';
import { summarize } from '../src/bench/stats.js';
import { esc, renderCharts, writeCharts } from '../src/bench/svg.js';
import type { Metric, Suite } from '../src/bench/types.js';

/**
 * A strict little XML well-formedness checker: one root element, balanced
 * and properly nested tags, quoted attributes without raw '<' or '&', no
 * duplicate attributes, text without raw '<' or stray '&', comments and
 * the XML declaration. Throws with a position on the first fault.
 */
function checkXml(doc: string): { root: string; elements: number } {
  let i = 0;
  const stack: string[] = [];
  let root = '';
  let elements = 0;
  const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
  const ENTITY = /&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/y;
  const fail = (why: string): never => {
    throw new Error(`${why} at offset ${i}: ${JSON.stringify(doc.slice(Math.max(0, i - 20), i + 20))}`);
  };
  const name = (): string => {
    NAME.lastIndex = i;
    const m = NAME.exec(doc);
    if (!m) fail('expected a name');
    i += m![0].length;
    return m![0];
  };
  const space = (): number => {
    const s = i;
    while (/\s/.test(doc[i] ?? '')) i++;
    return i - s;
  };
  const checkText = (s: string, where: string): void => {
    for (let k = 0; k < s.length; k++) {
      if (s[k] === '<') fail(`raw '<' in ${where}`);
      if (s[k] === '&') {
        ENTITY.lastIndex = k;
        if (!ENTITY.exec(s)) fail(`unescaped '&' in ${where}`);
      }
    }
  };
  if (doc.startsWith('<?xml')) {
    const end = doc.indexOf('?>');
    if (end < 0) fail('unterminated XML declaration');
    i = end + 2;
  }
  while (i < doc.length) {
    if (doc.startsWith('<!--', i)) {
      const end = doc.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
    } else if (doc.startsWith('</', i)) {
      i += 2;
      const n = name();
      space();
      if (doc[i] !== '>') fail('expected > after a closing tag');
      i++;
      if (stack.pop() !== n) fail(`</${n}> does not close the open element`);
    } else if (doc[i] === '<') {
      i++;
      const n = name();
      if (stack.length === 0) {
        if (root) fail('a second root element');
        root = n;
      }
      elements++;
      const seen = new Set<string>();
      for (;;) {
        const gap = space();
        if (doc.startsWith('/>', i)) {
          i += 2;
          break;
        }
        if (doc[i] === '>') {
          i++;
          stack.push(n);
          break;
        }
        if (!gap) fail('attributes must be separated by white space');
        const a = name();
        if (seen.has(a)) fail(`duplicate attribute ${a}`);
        seen.add(a);
        space();
        if (doc[i] !== '=') fail(`attribute ${a} without a value`);
        i++;
        space();
        const q = doc[i];
        if (q !== '"' && q !== "'") fail(`attribute ${a} is not quoted`);
        const end = doc.indexOf(q!, i + 1);
        if (end < 0) fail('unterminated attribute value');
        checkText(doc.slice(i + 1, end), `attribute ${a}`);
        i = end + 1;
      }
    } else {
      const end = doc.indexOf('<', i);
      const t = doc.slice(i, end < 0 ? doc.length : end);
      if (stack.length === 0 && t.trim()) fail('text outside the root element');
      checkText(t, 'text');
      i += t.length;
    }
  }
  if (stack.length) fail(`unclosed <${stack[stack.length - 1]}>`);
  if (!root) fail('no root element');
  return { root, elements };
}

function metric(id: string, samples: number[], extra: Partial<Metric> = {}): Metric {
  return { id, description: `synthetic <${id}> & "friends"`, unit: 'us', better: 'lower', samples, tolerance: 0.2, ...extra };
}

/** A suite shaped like micro (per-mode families with distributions) and scaling (vCPU families). */
const synthetic: Suite = {
  name: 'synth',
  description: 'synthetic suite',
  async run(ctx) {
    const metrics: Metric[] = [];
    for (const [k, mode] of ['user', 'split', 'kernel'].entries()) {
      const dist = Array.from({ length: 60 }, (_, i) => 50 * (k + 1) + ((i * 37) % 17));
      metrics.push(metric(`synth.ipi-rtt.${mode}`, [50 * (k + 1), 52 * (k + 1)], { params: { irqchip: mode }, distribution: dist }));
    }
    for (const v of [1, 2, 4, 8].filter((n) => n <= ctx.maxVcpus)) {
      metrics.push(metric(`synth.storm.v${v}`, [1000 * v * 0.9, 1000 * v, 1000 * v * 0.95], { unit: 'ops/s', better: 'higher', params: { vcpus: v } }));
    }
    for (const v of [2, 4, 8].filter((n) => n <= ctx.maxVcpus)) {
      const eff = 1 - v / 40;
      metrics.push(metric(`synth.storm.efficiency-${v}`, [eff, eff * 0.98], { unit: 'ratio', better: 'higher', params: { vcpus: v, family: 'synth.storm.efficiency', ideal: 1 } }));
    }
    metrics.push(metric('synth.bad', [1, Number.NaN]));
    ctx.progress(1, 1, 'done');
    ctx.log('hello');
    return { suite: 'synth', metrics, notes: ['a note'] };
  },
};
const failing: Suite = { name: 'failing', description: 'always fails', run: () => Promise.reject(new Error('cannot open /dev/kvm')) };
const registry = new Map<string, Suite>([
  [synthetic.name, synthetic],
  [failing.name, failing],
]);

describe('bench: reports, schema and charts', () => {
  let report: BenchReport;
  const progress: string[] = [];
  const logs: string[] = [];

  before(async () => {
    report = await runBenchmark({
      suites: ['synth', 'failing'],
      repetitions: 2,
      maxVcpus: 8,
      registry,
      onProgress: (p) => progress.push(`${p.suite}:${p.done}/${p.total}`),
      onLog: (s, m) => logs.push(`${s}:${m}`),
    });
  });

  describe('runner', () => {
    it('adds machine metadata and the settings used', () => {
      const m = report.metadata;
      expect(m.hostCores).to.be.at.least(1);
      expect(m.kvm).to.be.oneOf(['hardware', 'software (kvm_pvm)']);
      expect(m.nodeVersion).to.equal(process.version);
      expect(m.nodevisorVersion).to.match(/^\d+\.\d+\.\d+/);
      expect(Date.parse(m.date)).to.be.closeTo(Date.now(), 60_000);
      expect(report.settings).to.deep.equal({ suites: ['synth', 'failing'], repetitions: 2, maxVcpus: 8 });
      expect(progress).to.deep.equal(['synth:1/1']);
      expect(logs).to.deep.equal(['synth:hello']);
    });

    it('summarises every metric, leaves out ones with unusable samples, and records suite failures', () => {
      const [synth, failed] = report.suites;
      expect(synth!.metrics.map((m) => m.id)).to.include('synth.ipi-rtt.user').and.not.include('synth.bad');
      expect(synth!.notes).to.include('a note');
      expect(synth!.notes.some((n) => /synth\.bad left out: non-finite/.test(n))).to.equal(true);
      const user = synth!.metrics.find((m) => m.id === 'synth.ipi-rtt.user')!;
      expect(user.summary).to.deep.include({ n: 2, median: 51, min: 50, max: 52, spreadKind: 'min-max' });
      expect(user.summary.spread).to.be.closeTo(2 / 51, 1e-12);
      expect(failed!.error).to.equal('cannot open /dev/kvm');
      expect(failed!.metrics).to.deep.equal([]);
    });

    it('narrows to --only ids and prefixes, and rejects unknown suites', async () => {
      const r = await runBenchmark({ suites: ['synth'], repetitions: 1, maxVcpus: 2, registry, only: ['synth.ipi-rtt.user', 'synth.storm'] });
      expect(r.suites[0]!.metrics.map((m) => m.id)).to.deep.equal(['synth.ipi-rtt.user', 'synth.storm.v1', 'synth.storm.v2', 'synth.storm.efficiency-2']);
      expect(r.settings.only).to.deep.equal(['synth.ipi-rtt.user', 'synth.storm']);
      await runBenchmark({ suites: ['nope'], registry }).then(
        () => expect.fail('an unknown suite must be refused'),
        (e: Error) => expect(e.message).to.match(/unknown benchmark suite "nope"/),
      );
    });
  });

  describe('JSON and schema', () => {
    it('the schema uses only keywords the validator implements', () => {
      expect(() => assertSupported(reportSchema)).not.to.throw();
      expect(() => assertSupported({ type: 'object', properties: { a: { oneOf: [] } as unknown as JsonSchema } })).to.throw(/oneOf/);
      expect(reportSchema.$schema).to.equal('https://json-schema.org/draft/2020-12/schema');
    });

    it('a written report, with a comparison, validates and parses back', () => {
      const withCmp: BenchReport = { ...report, comparison: compareToBaseline(report, report, { source: 'self.json' }) };
      const text = reportJson(withCmp);
      expect(validateReport(JSON.parse(text))).to.deep.equal([]);
      expect(parseReport(text)).to.deep.equal(JSON.parse(JSON.stringify(withCmp)));
      // Sample arrays stay on one line each; raw samples are all there.
      expect(text).to.match(/"samples": \[50, 52\]/);
      expect(JSON.parse(text).suites[0].metrics[0].distribution).to.have.length(60);
    });

    it('rejects broken documents, saying where', () => {
      const good = JSON.parse(reportJson(report)) as Record<string, unknown> & { suites: { metrics: Record<string, unknown>[] }[]; metadata: Record<string, unknown> };
      const broken = (f: (d: typeof good) => void): string[] => {
        const d = structuredClone(good);
        f(d);
        return validateReport(d).map((e) => `${e.path}: ${e.message}`);
      };
      expect(broken((d) => delete d.metadata.cpuModel)).to.deep.equal(['/metadata: missing required property "cpuModel"']);
      expect(broken((d) => (d.suites[0]!.metrics[0]!.samples = [1, 'two']))).to.deep.equal(['/suites/0/metrics/0/samples/1: expected number, got string']);
      expect(broken((d) => (d.suites[0]!.metrics[0]!.samples = []))).to.deep.equal(['/suites/0/metrics/0/samples: fewer than 1 items']);
      expect(broken((d) => (d.suites[0]!.metrics[0]!.better = 'faster'))[0]).to.match(/^\/suites\/0\/metrics\/0\/better: expected one of "higher", "lower"/);
      expect(broken((d) => (d.suites[0]!.metrics[0]!.id = 'has space'))[0]).to.match(/does not match/);
      expect(broken((d) => (d.metadata.date = 'yesterday'))[0]).to.match(/not an RFC 3339 date-time/);
      expect(broken((d) => (d.extra = 1))).to.deep.equal(['/extra: unexpected property "extra"']);
      expect(broken((d) => (d.suites[0]!.metrics[0]!.summary = { n: 0 })).length).to.be.greaterThan(3);
      expect(validate(reportSchema, { ...good, suites: [{ suite: 's', description: '', notes: [], metrics: [{ ...good.suites[0]!.metrics[0]!, samples: [Number.NaN] }], seconds: 1 }] })[0]!.message).to.match(/expected number, got NaN/);
      expect(() => parseReport('{"format": "nodevisor-bench-report/1"}', 'b.json')).to.throw(/b\.json does not match the report schema .*\n.*missing required property/);
      expect(() => parseReport('not json', 'b.json')).to.throw(/b\.json is not JSON/);
      expect(() => parseReport('{"format": "other/9"}', 'b.json')).to.throw(/not a nodevisor benchmark report/);
    });
  });

  describe('text report', () => {
    it('has a table per suite, failures, notes and the comparison with its noise floor', () => {
      const slower = structuredClone(report);
      const m = slower.suites[0]!.metrics.find((x) => x.id === 'synth.ipi-rtt.user')!;
      m.samples = m.samples.map((s) => s * 3);
      m.summary = summarize(m.samples);
      const cmp = compareToBaseline(slower, report);
      const text = formatReport({ ...slower, comparison: cmp });
      expect(text).to.match(/^nodevisor bench: /);
      expect(text).to.match(/metric +median +unit +spread +n +baseline +ratio +verdict/);
      expect(text).to.match(/synth\.ipi-rtt\.user +153\.0 +us +3\.9% +2 +51\.00 +3\.000 +regressed/);
      expect(text).to.match(/failing \(.* s\): always fails\n {2}FAILED: cannot open \/dev\/kvm/);
      expect(text).to.match(/- a note/);
      expect(text).to.match(/noise floor: median \d+\.\d% across compared metrics, worst/);
      expect(text).to.match(/result: REGRESSED \(exit status 1\)/);
    });
  });

  describe('SVG charts', () => {
    it('draws a scaling chart per vCPU family and a distribution chart per irqchip family', () => {
      const charts = renderCharts(report);
      expect(charts.map((c) => c.file).sort()).to.deep.equal(['distribution-synth.ipi-rtt.svg', 'scaling-synth.storm.efficiency.svg', 'scaling-synth.storm.svg']);
      for (const c of charts) {
        const xml = checkXml(c.svg);
        expect(xml.root).to.equal('svg');
        expect(xml.elements).to.be.greaterThan(20);
        expect(c.svg).to.match(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 \d+ \d+"/);
        expect(c.svg).to.include('&lt;synth.');
        expect(c.svg).to.include('&amp; &quot;friends&quot;');
      }
      const scaling = charts.find((c) => c.file.startsWith('scaling'))!.svg;
      expect(scaling).to.include('ideal: linear from 1 vCPU');
      expect(scaling).to.match(/at 8 vCPUs: \d+% of ideal/);
      const efficiency = charts.find((c) => c.file === 'scaling-synth.storm.efficiency.svg')!.svg;
      expect(efficiency).to.include('ideal: 1.00');
      expect(efficiency).to.match(/at 8 vCPUs: 79% of ideal/);
      const modes = charts.find((c) => c.file.startsWith('distribution'))!.svg;
      for (const mode of ['user', 'split', 'kernel']) expect(modes).to.include(`>${mode}</text>`);
    });

    it('writes the files into the directory, and nothing for reports without such metrics', () => {
      const dir = mkdtempSync(join(tmpdir(), 'nodevisor-svg-'));
      try {
        const files = writeCharts(report, join(dir, 'charts'));
        expect(readdirSync(join(dir, 'charts')).sort()).to.deep.equal(files.map((f) => f.split('/').pop()).sort());
        checkXml(readFileSync(files[0]!, 'utf8'));
        const plain = structuredClone(report);
        for (const s of plain.suites) for (const m of s.metrics) delete m.params;
        expect(renderCharts(plain)).to.deep.equal([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('the well-formedness checker catches what it should', () => {
      const ok = '<?xml version="1.0"?>\n<svg a="1" b=\'2\'><g><text>a &amp; b &#60;</text></g><!-- c --></svg>\n';
      expect(checkXml(ok)).to.deep.equal({ root: 'svg', elements: 3 });
      for (const bad of ['<svg><g></svg>', '<svg a=1/>', '<svg><text>a & b</text></svg>', '<svg><text>a < b</text></svg>', '<svg a="<"/>', '<svg/><svg/>', '<svg a="1" a="2"/>', '<svg>', '<svg a="1"b="2"/>']) {
        expect(() => checkXml(bad), bad).to.throw();
      }
      expect(esc(`<a href="x">&'`)).to.equal('&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
    });
  });

  describe('progress bar', () => {
    const stream = (isTTY: boolean): { s: NodeJS.WriteStream; out: string[] } => {
      const out: string[] = [];
      const s = { isTTY, columns: 60, write: (t: string) => (out.push(t), true) } as unknown as Writable as NodeJS.WriteStream;
      return { s, out };
    };

    it('draws on a terminal and clears itself', () => {
      const { s, out } = stream(true);
      const bar = new ProgressBar(s);
      bar.update({ suite: 'micro', done: 3, total: 12, label: 'micro.ipi-rtt.user (1/5)' });
      bar.log('a line');
      bar.clear();
      expect(out[0]).to.match(/^\r\x1b\[2Kmicro \[#{6}\.{18}\] 3\/12 \d+s micro\.ipi/);
      expect(out.join('')).to.include('a line\n');
      expect(out[out.length - 1]).to.equal('\r\x1b[2K');
      expect(Math.max(...out.map((l) => l.replace(/\r\x1b\[2K/, '').length))).to.be.at.most(59);
    });

    it('writes nothing but log lines when stderr is not a terminal', () => {
      const { s, out } = stream(false);
      const bar = new ProgressBar(s);
      bar.update({ suite: 'micro', done: 1, total: 2, label: 'x' });
      bar.clear();
      expect(out).to.deep.equal([]);
      bar.log('kept');
      expect(out).to.deep.equal(['kept\n']);
    });
  });
});
