import { expect } from 'chai';
import { EventEmitter } from 'node:events';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer } from '../src/api/server.js';
import { ApiClient } from '../src/api/client.js';
import { COMMANDS, unescape } from '../src/api/commands.js';
import { PROTOCOL_VERSION, type ApiVm } from '../src/api/protocol.js';
import type { VmResult } from '../src/vm/vm.js';
import type { VmStats } from '../src/vm/vcpu-stats.js';
import type { ExitProfileEntry } from '../src/vcpu/exit-profile.js';

/** A VM as the API sees it, recording what it is asked. */
class FakeVm extends EventEmitter {
  vcpus = 2;
  memorySize = 64 << 20;
  irqchip = 'user' as const;
  runState: 'new' | 'starting' | 'running' | 'paused' | 'stopped' = 'running';
  pauseDelayMs = 0;
  calls: string[] = [];
  input: Buffer[] = [];

  profile: ExitProfileEntry[] | null = null;

  stats(): VmStats {
    return { irqchip: 'user', vcpus: [], console: { bytesOut: 0, bytesIn: 0 }, virtio: [] };
  }
  exitProfile(): ExitProfileEntry[] | null {
    return this.profile;
  }
  async pause(): Promise<void> {
    this.calls.push('pause');
    if (this.runState === 'stopped') throw Object.assign(new (await import('../src/kvm/errors.js')).NodevisorError('ESTATE', 'cannot pause a VM that is stopped'));
    await new Promise((r) => setTimeout(r, this.pauseDelayMs));
    this.runState = 'paused';
  }
  async resume(): Promise<void> {
    this.calls.push('resume');
    this.runState = 'running';
  }
  async stop(): Promise<VmResult> {
    this.calls.push('stop');
    this.runState = 'stopped';
    const r: VmResult = { reason: { kind: 'stopped' }, exitStatus: 8, message: 'the VM was stopped by the host' };
    this.emit('stop', r);
    return r;
  }
  powerButton(): void {
    this.calls.push('power-button');
  }
  sendConsoleInput(b: Uint8Array): void {
    this.input.push(Buffer.from(b));
  }
}

/** A raw line-oriented connection, for what ApiClient would never send. */
class Raw {
  lines: string[] = [];
  private waiters: Array<() => void> = [];
  constructor(readonly socket: Socket) {
    let buf = '';
    socket.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    socket.on('close', () => this.waiters.splice(0).forEach((w) => w()));
  }
  static open(path: string): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = createConnection(path, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }
  /** The n-th line (0 = the greeting), parsed. */
  async line(n: number): Promise<Record<string, unknown>> {
    const end = Date.now() + 5000;
    while (this.lines.length <= n) {
      if (Date.now() > end || this.socket.destroyed) throw new Error(`no line ${n}; got ${JSON.stringify(this.lines)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 100);
      });
    }
    return JSON.parse(this.lines[n]!) as Record<string, unknown>;
  }
}

describe('API socket server', function () {
  let dir: string;
  let path: string;
  let vm: FakeVm;
  let server: ApiServer;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-api-'));
    path = join(dir, 'api.sock');
    vm = new FakeVm();
    server = new ApiServer({ path, vm: vm as unknown as ApiVm, version: '9.9.9', maxMessageBytes: 4096 });
    await server.listen();
  });

  afterEach(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the socket with mode 0600 and removes it when closed', async () => {
    expect(statSync(path).mode & 0o777).to.equal(0o600);
    await server.close();
    expect(existsSync(path)).to.equal(false);
  });

  it('greets each client with the protocol version and the command list', async () => {
    const c = await ApiClient.connect(path);
    expect(c.hello).to.deep.equal({ protocol: PROTOCOL_VERSION, nodevisor: '9.9.9', commands: COMMANDS.map((x) => x.name) });
    c.close();
  });

  it('answers status with the VM state, size, irqchip mode and protocol version', async () => {
    const c = await ApiClient.connect(path);
    const s = await c.request<Record<string, unknown>>('status');
    expect(s).to.include({ protocol: PROTOCOL_VERSION, state: 'running', vcpus: 2, memoryBytes: 64 << 20, irqchip: 'user', pid: process.pid });
    c.close();
  });

  it('answers stats with the counters and the time they were read', async () => {
    const c = await ApiClient.connect(path);
    const s = await c.request<Record<string, unknown>>('stats');
    expect(s).to.have.keys('timeSeconds', 'state', 'irqchip', 'vcpus', 'console', 'virtio');
    expect(s.timeSeconds).to.be.a('number');
    c.close();
  });

  it('answers exit-profile with the entries, or an error when the VM records none', async () => {
    const c = await ApiClient.connect(path);
    const err = await c.request('exit-profile').then(() => null, (e: { code: number; data?: { code: string } }) => e);
    expect(err).to.include({ code: -32000 });
    expect(err!.data).to.deep.equal({ code: 'ENOPROFILE' });
    vm.profile = [{ kind: 'pio-out', address: 0x3f8, device: 'uart16550', exits: 7, vmmNs: 7000 }];
    const r = await c.request<{ timeSeconds: number; entries: ExitProfileEntry[] }>('exit-profile');
    expect(r.entries).to.deep.equal(vm.profile);
    expect(r.timeSeconds).to.be.a('number');
    vm.profile = null;
    c.close();
  });

  it('pauses, resumes, presses the power button and stops the VM', async () => {
    const c = await ApiClient.connect(path);
    expect(await c.request('pause')).to.deep.equal({ state: 'paused' });
    expect(await c.request('resume')).to.deep.equal({ state: 'running' });
    expect(await c.request('power-button')).to.deep.equal({});
    expect(await c.request('stop')).to.deep.equal({ reason: { kind: 'stopped' }, exitStatus: 8, message: 'the VM was stopped by the host' });
    expect(vm.calls).to.deep.equal(['pause', 'resume', 'power-button', 'stop']);
    c.close();
  });

  it("reports the VM's refusal as an error with nodevisor's code, and keeps serving", async () => {
    vm.runState = 'stopped';
    const c = await ApiClient.connect(path);
    const err = await c.request('pause').then(() => null, (e: { code: number; message: string; data?: { code: string } }) => e);
    expect(err).to.include({ code: -32000, message: 'cannot pause a VM that is stopped' });
    expect(err!.data).to.deep.equal({ code: 'ESTATE' });
    expect(await c.request('power-button')).to.deep.equal({});
    c.close();
  });

  it('types console input as UTF-8 text or base64 bytes', async () => {
    const c = await ApiClient.connect(path);
    expect(await c.request('console-input', { data: 'ls\n' })).to.deep.equal({ bytes: 3 });
    expect(await c.request('console-input', { base64: Buffer.from([0, 1, 255]).toString('base64') })).to.deep.equal({ bytes: 3 });
    expect(vm.input.map((b) => [...b])).to.deep.equal([[0x6c, 0x73, 0x0a], [0, 1, 255]]);
    c.close();
  });

  it('rejects bad params with -32602 and names the problem', async () => {
    const c = await ApiClient.connect(path);
    const bad = (m: string, p: unknown) => c.request(m, p).then(() => null, (e: { code: number; message: string }) => [e.code, e.message]);
    expect(await bad('console-input', {})).to.deep.equal([-32602, 'console-input needs "data" (a string) or "base64"']);
    expect(await bad('console-input', { data: 5 })).to.deep.equal([-32602, '"data" must be a string']);
    expect(await bad('status', { x: 1 })).to.deep.equal([-32602, 'unexpected parameter "x"']);
    expect(await bad('subscribe', { events: ['reboot'] })).to.deep.equal([-32602, '"events" must be a list of stop, console, panic']);
    expect(await bad('status', [1])).to.deep.equal([-32602, 'params must be an object']);
    c.close();
  });

  it('answers an unknown method with -32601', async () => {
    const c = await ApiClient.connect(path);
    const e = await c.request('reboot').then(() => null, (x: { code: number }) => x.code);
    expect(e).to.equal(-32601);
    c.close();
  });

  it('answers malformed JSON and non-requests with error objects and keeps the connection', async () => {
    const r = await Raw.open(path);
    r.socket.write('{"jsonrpc": "2.0", "method": \n');
    expect(await r.line(1)).to.deep.equal({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'not valid JSON' } });
    r.socket.write('null\n42\n[]\n{"method":"status","id":3}\n');
    for (const n of [2, 3, 4]) expect(((await r.line(n)).error as { code: number }).code).to.equal(-32600);
    expect(((await r.line(5)).error as { code: number }).code).to.equal(-32600); // no "jsonrpc": "2.0"
    r.socket.write('{"jsonrpc":"2.0","method":"status","id":7}\n');
    expect((await r.line(6)).id).to.equal(7);
    r.socket.destroy();
  });

  it('answers a batch of requests with a batch of responses', async () => {
    const r = await Raw.open(path);
    r.socket.write('[{"jsonrpc":"2.0","method":"status","id":1},{"jsonrpc":"2.0","method":"nope","id":2}]\n');
    await r.line(0);
    const line = JSON.parse(r.lines[1] ?? (await r.line(1), r.lines[1]!)) as Array<{ id: number; error?: { code: number } }>;
    expect(line.map((x) => x.id)).to.deep.equal([1, 2]);
    expect(line[1]!.error!.code).to.equal(-32601);
    r.socket.destroy();
  });

  it('refuses a message longer than the limit that arrives whole, and serves the next one', async () => {
    const r = await Raw.open(path);
    r.socket.write(`{"jsonrpc":"2.0","method":"console-input","params":{"data":"${'x'.repeat(5000)}"},"id":1}\n{"jsonrpc":"2.0","method":"status","id":2}\n`);
    expect(await r.line(1)).to.deep.equal({ jsonrpc: '2.0', id: null, error: { code: -32600, message: 'message longer than 4096 bytes' } });
    expect((await r.line(2)).id).to.equal(2);
    expect(vm.input).to.have.length(0);
    r.socket.destroy();
  });

  it('answers a message that outgrows the limit before its end with an error, then closes that connection only', async () => {
    const r = await Raw.open(path);
    await r.line(0);
    for (let i = 0; i < 6; i++) {
      r.socket.write('x'.repeat(1000));
      await new Promise((res) => setTimeout(res, 5));
    }
    expect(((await r.line(1)).error as { message: string }).message).to.equal('message longer than 4096 bytes');
    await new Promise<void>((res) => (r.socket.destroyed ? res() : r.socket.once('close', () => res())));
    const c = await ApiClient.connect(path);
    expect((await c.request<{ state: string }>('status')).state).to.equal('running');
    c.close();
  });

  it('serves several clients at once, each getting its own answers', async () => {
    vm.pauseDelayMs = 50;
    const clients = await Promise.all([1, 2, 3, 4].map(() => ApiClient.connect(path)));
    const answers = await Promise.all(clients.flatMap((c) => [c.request('pause'), c.request('status'), c.request('console-input', { data: 'a' })]));
    expect(answers.filter((a) => (a as { bytes?: number }).bytes === 1)).to.have.length(4);
    expect(answers.filter((a) => (a as { protocol?: number }).protocol === PROTOCOL_VERSION)).to.have.length(4);
    for (const c of clients) c.close();
  });

  it('is unharmed by a client killed in the middle of a request', async () => {
    vm.pauseDelayMs = 100;
    const r = await Raw.open(path);
    await r.line(0);
    r.socket.write('{"jsonrpc":"2.0","method":"pause","id":1}\n');
    r.socket.destroy();
    await new Promise((res) => setTimeout(res, 200));
    expect(vm.runState).to.equal('paused');
    const c = await ApiClient.connect(path);
    expect(await c.request('resume')).to.deep.equal({ state: 'running' });
    c.close();
  });

  it('pushes console, panic and stop events to subscribers only, as they subscribed', async () => {
    const sub = await ApiClient.connect(path);
    const other = await ApiClient.connect(path);
    const seen: unknown[] = [];
    const unseen: unknown[] = [];
    sub.on('event', (e) => seen.push(e));
    other.on('event', (e) => unseen.push(e));
    expect(await sub.request('subscribe', { events: ['console', 'stop'] })).to.deep.equal({ events: ['stop', 'console'] });
    expect(await other.request('subscribe', { events: ['panic'] })).to.deep.equal({ events: ['panic'] });
    // A multi-byte character split across two chunks arrives whole.
    const euro = Buffer.from('€', 'utf8');
    vm.emit('console', Buffer.concat([Buffer.from('ok '), euro.subarray(0, 1)]));
    vm.emit('console', euro.subarray(1));
    vm.emit('stop', { reason: { kind: 'poweroff' }, exitStatus: 0, message: 'the guest powered off' });
    await sub.request('status');
    await other.request('status');
    expect(seen).to.deep.equal([
      { event: 'console', data: 'ok ' },
      { event: 'console', data: '€' },
      { event: 'stop', reason: { kind: 'poweroff' }, exitStatus: 0, message: 'the guest powered off' },
    ]);
    expect(unseen).to.deep.equal([]);
    vm.emit('stop', { reason: { kind: 'panic', detail: 'oops' }, exitStatus: 10, message: 'the guest kernel panicked: oops' });
    await other.request('status');
    expect(unseen).to.deep.equal([{ event: 'panic', message: 'the guest kernel panicked: oops', detail: 'oops' }]);
    sub.close();
    other.close();
  });
});

describe('API socket path', function () {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'nodevisor-api-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a path where another process is listening', async () => {
    const path = join(dir, 'live.sock');
    const other = createServer(() => undefined);
    await new Promise<void>((r) => other.listen(path, r));
    const s = new ApiServer({ path, vm: new FakeVm() as unknown as ApiVm, version: '0' });
    const err = await s.listen().then(() => null, (e: Error) => e.message);
    expect(err).to.equal(`${path} is in use: another process is listening there (a running VM?)`);
    await new Promise<void>((r) => other.close(() => r()));
  });

  it('refuses to replace a file that is not a socket', async () => {
    const path = join(dir, 'file');
    writeFileSync(path, 'keep me');
    const err = await new ApiServer({ path, vm: new FakeVm() as unknown as ApiVm, version: '0' }).listen().then(() => null, (e: Error) => e.message);
    expect(err).to.equal(`${path} exists and is not a socket: not replacing it with the API socket`);
  });

  it('replaces a stale socket left by a process that died', async () => {
    const path = join(dir, 'stale.sock');
    // A process killed while listening leaves its socket file behind.
    const child = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    expect(child.signal).to.equal('SIGKILL');
    expect(existsSync(path)).to.equal(true);
    const s = new ApiServer({ path, vm: new FakeVm() as unknown as ApiVm, version: '0' });
    await s.listen();
    const c = await ApiClient.connect(path);
    expect(c.hello.nodevisor).to.equal('0');
    c.close();
    await s.close();
  });

  it("ctl's console-input escapes turn into the bytes they stand for", () => {
    expect(unescape('ls\\n\\t\\x03\\\\e\\e')).to.equal('ls\n\t\x03\\e\x1b');
  });
});
