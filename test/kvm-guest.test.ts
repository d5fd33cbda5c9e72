import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { testImage, runVm } from './helpers/guests.js';
import { createVm, NodevisorError, ExitStatus } from '../src/index.js';
import { until } from './helpers/until.js';
import type { Vm } from '../src/index.js';

const PATTERN = 0x320000;
const READY = 0x310000;
const GO = 0x310008;
const RESULT = 0x310010;
const DATA = 0x300000;
const PHI = 0x9e3779b97f4a7c15n;


function ask<T>(w: Worker, msg: unknown): Promise<T> {
  const p = once(w, 'message') as Promise<[T]>;
  w.postMessage(msg);
  return p.then(([v]) => v);
}

describe('guests under KVM', function () {
  this.timeout(120000);

  it('shares guest RAM with the main thread and other workers, both ways, while the guest runs', async () => {
    let worker: Worker | undefined;
    const values = Array.from({ length: 300 }, (_, i) => BigInt(i * i + 7));
    const run = await runVm({ image: testImage('mem-rw') }, async (vm: Vm) => {
      await until(() => vm.memory.readU64(READY) === 1n, 'the guest to fill its pattern');
      worker = new Worker(new URL('./helpers/memory.worker.js', import.meta.url), { workerData: { regions: vm.memory.descriptors() } });
      const fromWorker = await ask<Uint8Array>(worker, { op: 'read', gpa: PATTERN, length: 1024 * 8 });
      const fromMain = vm.memory.read(PATTERN, 1024 * 8);
      const view = new DataView(fromMain.buffer);
      for (let i = 0; i < 1024; i++) expect(view.getBigUint64(i * 8, true)).to.equal(BigInt.asUintN(64, BigInt(i) * PHI));
      expect(Buffer.from(fromWorker).equals(Buffer.from(fromMain))).to.equal(true);
      // The reverse: the main thread writes the data, another worker releases the guest.
      vm.memory.writeU64(DATA, BigInt(values.length));
      values.forEach((v, i) => vm.memory.writeU64(DATA + 8 + i * 8, v));
      await ask(worker, { op: 'write64', gpa: GO, value: 0xc0ffeen });
    });
    await worker?.terminate();
    expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code: 0x21 });
    expect(run.vm.memory.readU64(RESULT)).to.equal(values.reduce((a, b) => a + b, 0n));
  });

  it('survives reads and writes of unclaimed ports and MMIO, which read as all ones', async () => {
    const run = await runVm({ image: testImage('unclaimed') });
    expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code: 0x10 });
    const m = run.vm.memory;
    expect(m.readU8(0x310000)).to.equal(0xff);
    expect(m.readU16(0x310002)).to.equal(0xffff);
    expect(m.readU32(0x310004)).to.equal(0xffffffff);
    expect(m.readU32(0x310008)).to.equal(0xffffffff);
    expect(m.readU64(0x310010)).to.equal(0xffffffffffffffffn);
    expect(run.logs.some((l) => /unclaimed port 0x2345/.test(l))).to.equal(true);
    expect(run.logs.some((l) => /unclaimed MMIO address 0xd0000000/.test(l))).to.equal(true);
    // Logged once per port, not once per access.
    expect(run.logs.filter((l) => /port 0x2345/.test(l))).to.have.length(1);
  });

  for (const [mode, code] of [['real', 0x11], ['protected', 0x22], ['long', 0x34]] as const) {
    it(`enters a directly loaded guest in ${mode} mode`, async () => {
      const run = await runVm({ image: testImage(`mode-${mode}`, mode) });
      expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code });
      expect(run.result.exitStatus).to.equal(((code << 1) | 1) & 0xff);
    });
  }

  it('runs each of 4 vCPUs in its own worker thread', async () => {
    const run = await runVm({ vcpus: 4 });
    expect(run.result.reason.kind).to.equal('poweroff');
    expect(run.result.exitStatus).to.equal(ExitStatus.poweroff);
    const stats = run.vm.stats().vcpus;
    expect(stats).to.have.length(4);
    const tids = new Set(stats.map((s) => s.tid));
    expect(tids.size).to.equal(4);
    expect(tids.has(process.pid)).to.equal(false);
    // vCPU 0 writes the console (port I/O); the others check in and halt (a HLT exit with our LAPIC).
    stats.forEach((s, i) => {
      expect(s.exits).to.be.greaterThan(0);
      expect(i === 0 ? s.exitsByReason.Io : s.exitsByReason.Hlt).to.be.greaterThan(0);
      expect(s.guestSeconds).to.be.greaterThan(0);
    });
    for (let i = 0; i < 4; i++) expect(run.console).to.contain(`vCPU ${i} (APIC ID ${i}) of 4 online`);
    expect(run.console).to.contain('all 4 vCPUs reported; powering off');
  });

  it('stops cleanly on a triple fault and reports RIP, instruction bytes and registers', async () => {
    const run = await runVm({ image: testImage('triple-fault') });
    expect(run.result.reason.kind).to.equal('triple-fault');
    expect(run.result.exitStatus).to.equal(ExitStatus['triple-fault']);
    expect(run.result.message).to.match(/^triple fault on vCPU 0 at RIP 0x1000[0-9a-f]{2}: /);
    expect(run.result.message).to.match(/instruction bytes: 0f 0b/); // ud2
    expect(run.result.message).to.match(/RAX: 00000000feedface/);
  });

  it('stops cleanly on an emulation failure and reports RIP, instruction bytes and registers', async () => {
    const run = await runVm({ image: testImage('emulation-failure') });
    expect(run.result.reason.kind).to.equal('error');
    expect(run.result.exitStatus).to.equal(ExitStatus.error);
    expect(run.result.message).to.match(/^KVM emulation failure on vCPU 0 at RIP 0x1000[0-9a-f]{2}: /);
    // popcnt rax, [rbx]: f3 48 0f b8 03
    expect(run.result.message).to.match(/instruction bytes: f3 48 0f b8 03/);
    expect(run.result.message).to.match(/RCX: 0000000000005a5a/);
  });

  for (const guest of ['halt-forever', 'spin-forever']) {
    it(`is stopped by the host while every vCPU is ${guest === 'halt-forever' ? 'halted' : 'running guest code'}`, async () => {
      const vm = createVm({ memory: '64M', vcpus: 3, image: testImage(guest) });
      await vm.start();
      await until(() => vm.memory.readU32(0x310000) === 3, 'every vCPU to check in');
      const result = await vm.stop();
      expect(result.reason).to.deep.equal({ kind: 'stopped' });
      expect(result.exitStatus).to.equal(ExitStatus.stopped);
    });
  }
});

describe('VM creation errors', function () {
  this.timeout(60000);

  it('explains a missing KVM device', async () => {
    const vm = createVm({ kvmPath: '/nonexistent/kvm' });
    const err = await vm.start().then(() => null, (e: unknown) => e);
    expect(err).to.be.instanceOf(NodevisorError);
    expect((err as NodevisorError).code).to.equal('ENOKVM');
    expect((err as Error).message).to.match(/does not exist: this host has no KVM/);
  });

  it('explains a missing guest image', async () => {
    const vm = createVm({ image: { source: '/nonexistent.bin', mode: 'long' } });
    const err = (await vm.start().catch((e: unknown) => e)) as NodevisorError;
    expect(err.code).to.equal('EIMAGE');
    expect(err.message).to.equal('guest image /nonexistent.bin does not exist');
  });

  it('refuses more vCPUs than KVM allows', async () => {
    const err = (await createVm({ vcpus: 100000 }).start().catch((e: unknown) => e)) as NodevisorError;
    expect(err.code).to.equal('EVCPUS');
    expect(err.message).to.match(/100000 vCPUs requested but this host's KVM allows at most \d+/);
  });

  it('rejects bad memory sizes and irqchip modes before touching KVM', () => {
    expect(() => createVm({ memory: '12Q' })).to.throw(NodevisorError, /cannot parse size "12Q"/);
    expect(() => createVm({ vcpus: 0 })).to.throw(NodevisorError, /positive integer/);
    expect(() => createVm({ irqchip: 'bogus' as 'user' })).to.throw(NodevisorError, /unknown irqchip mode "bogus"/);
  });

  it('rejects a memory size below the minimum with the limits', async () => {
    const err = (await createVm({ memory: '1M' }).start().catch((e: unknown) => e)) as NodevisorError;
    expect(err.code).to.equal('EMEMORY');
    expect(err.message).to.match(/between 4M and 1024G \(got 1M\)/);
  });
});
