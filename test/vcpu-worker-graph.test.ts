import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chooseThreadEntry } from '../src/vm/threads/entry.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const THREADS = join(SRC, 'vm', 'threads');
/** What the vCPU thread may load: one module a line (paths under src/, without .js; node: builtins). */
const EXPECTED = fileURLToPath(new URL('../../test/vcpu-worker-imports.txt', import.meta.url));

/** Every module a compiled module loads at run time (static imports; type-only ones are gone from tsc's output). */
function importGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string): void => {
    const name = relative(SRC, file).replace(/\.js$/, '');
    if (seen.has(name)) return;
    seen.add(name);
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.')) visit(resolve(dirname(file), spec));
      else seen.add(spec);
    }
  };
  visit(entry);
  return seen;
}

function expectedModules(): Set<string> {
  return new Set(readFileSync(EXPECTED, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
}

describe('the vCPU thread\'s module graph', function () {
  const graph = importGraph(join(THREADS, 'vcpu-worker.js'));

  it('loads no module beyond its list (test/vcpu-worker-imports.txt)', function () {
    const allowed = expectedModules();
    const added = [...graph].filter((m) => !allowed.has(m)).sort();
    // Each vCPU thread pays for every module it loads, in memory and start-up (README, Footprint).
    expect(added, `the vCPU thread now also loads:\n  ${added.join('\n  ')}\nkeep it out of the thread, or add it to test/vcpu-worker-imports.txt if it must run there`).to.deep.equal([]);
    console.log(`      vCPU thread: ${graph.size} modules (${[...graph].filter((m) => m.startsWith('node:')).join(', ')} built in)`);
  });

  it('stays below the layers that assemble VMs and serve users', function () {
    const above = [...graph].filter((m) => /^(cli|index|api|bench|gdb|top|images|guests)(\/|$)/.test(m) || /^vm\/(vm|snapshot|virtio-runtime|guest-console)$/.test(m));
    expect(above).to.deep.equal([]);
  });

  it('is what the bundle was built from, where there is a fresh bundle', function () {
    const entry = chooseThreadEntry(pathToFileURL(THREADS + '/'), 'vcpu-worker');
    if (!entry.bundled) this.skip();
    const manifest = JSON.parse(readFileSync(join(THREADS, 'vcpu-worker.bundle.json'), 'utf8')) as { inputs: string[] };
    const bundled = manifest.inputs.map((p) => relative(SRC, resolve(THREADS, p)).replace(/\.js$/, '')).sort();
    expect(bundled).to.deep.equal([...graph].filter((m) => !m.startsWith('node:')).sort());
  });
});

describe('choosing a thread\'s entry', function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-entry-'));
    writeFileSync(join(dir, 't.js'), '');
    writeFileSync(join(dir, 'dep.js'), '');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const choose = (): ReturnType<typeof chooseThreadEntry> => chooseThreadEntry(pathToFileURL(dir + '/'), 't');
  const bundle = (): void => {
    writeFileSync(join(dir, 't.bundle.cjs'), '');
    writeFileSync(join(dir, 't.bundle.json'), JSON.stringify({ entry: './t.js', inputs: ['./t.js', './dep.js'] }));
  };

  it('takes the compiled module when there is no bundle', function () {
    const e = choose();
    expect(e.bundled).to.equal(false);
    expect(e.url.pathname).to.match(/\/t\.js$/);
    expect(e.reason).to.match(/not built/);
  });

  it('takes a bundle no older than its inputs, equal time stamps included (npm packs files with one)', function () {
    bundle();
    const t = new Date('1985-10-26T08:15:00Z');
    for (const f of ['t.js', 'dep.js', 't.bundle.cjs']) utimesSync(join(dir, f), t, t);
    const e = choose();
    expect(e.bundled).to.equal(true);
    expect(e.url.pathname).to.match(/\/t\.bundle\.cjs$/);
  });

  it('passes over a bundle older than one of its inputs, or one whose input is gone', function () {
    bundle();
    const later = new Date(Date.now() + 60_000);
    utimesSync(join(dir, 'dep.js'), later, later);
    expect(choose()).to.include({ bundled: false }).and.to.have.property('reason').that.matches(/older than \.\/dep\.js/);
    rmSync(join(dir, 'dep.js'));
    expect(choose().bundled).to.equal(false);
    expect(existsSync(join(dir, 't.bundle.cjs'))).to.equal(true);
  });
});
