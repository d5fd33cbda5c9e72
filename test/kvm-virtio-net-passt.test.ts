import { expect } from 'chai';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVm, type Vm } from '../src/index.js';
import { netOrSkip } from './helpers/netns.js';
import { until } from './helpers/until.js';
import { testImage } from './helpers/guests.js';

/**
 * passt as the VM's child process, with a guest that only halts: it is
 * running (its forwarded host ports listen) while the VM runs, it goes
 * away with the VM, and if it dies first the VM keeps running with the
 * NIC's link down and one log line.
 */

/** The pids of this process's children running passt. */
function passtChildren(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && comm.startsWith('passt')) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}


describe('virtio-net through passt, the VM\'s child process', function () {
  this.timeout(60000);
  let vm: Vm | undefined;

  before(function () {
    netOrSkip(this, 'passt');
  });
  afterEach(async () => {
    await vm?.stop();
    vm = undefined;
  });

  it('runs while the VM runs, listening on the forwarded host ports, and is gone once the VM stops', async () => {
    const hostPort = await freePort();
    vm = createVm({ image: testImage('halt-forever'), memory: '16M', nets: [{ kind: 'user', hostfwd: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort, guestPort: 22 }] }] });
    await vm.start();
    expect(passtChildren()).to.have.length(1);
    expect(await canConnect(hostPort), 'the forwarded port listens').to.equal(true);
    await vm.stop();
    expect(passtChildren()).to.deep.equal([]);
    expect(await canConnect(hostPort), 'and no longer').to.equal(false);
  });

  it('keeps the VM running when passt dies: the link goes down, and one log line says so', async () => {
    vm = createVm({ image: testImage('halt-forever'), memory: '16M', nets: [{ kind: 'user' }] });
    const logs: string[] = [];
    vm.on('log', (level: string, m: string) => level !== 'info' && logs.push(m));
    await vm.start();
    expect(vm.stats().virtio[0]!.net).to.include({ backend: 'user', link: 'up' });
    const [pid] = passtChildren();
    process.kill(pid!, 'SIGKILL');
    await until(() => vm!.stats().virtio[0]!.net!.link === 'down', 'the link to go down', 10000, 20);
    await new Promise((r) => setTimeout(r, 200));
    expect(logs).to.deep.equal(['virtio-net (user): passt exited (signal SIGKILL); the link is down']);
    let stopped = false;
    void vm.wait().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(stopped, 'the VM still runs').to.equal(false);
    expect((await vm.stop()).reason).to.deep.equal({ kind: 'stopped' });
  });

  it('keeps its NIC in a snapshot: a restore starts a passt of its own on the recorded forwards (or those given), with the MAC the guest saw', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'nodevisor-net-snap-'));
    try {
      vm = createVm({ image: testImage('halt-forever'), memory: '16M', nets: [{ kind: 'user', mac: '52:54:00:aa:bb:01', hostfwd: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: portA, guestPort: 22 }] }] });
      await vm.start();
      await vm.snapshot(dir, { resume: false });
      await vm.stop();
      expect(passtChildren()).to.deep.equal([]);
      vm = createVm({ restore: dir });
      await vm.start();
      expect(passtChildren()).to.have.length(1);
      expect(vm.stats().virtio[0]!.net).to.include({ backend: 'user', mac: '52:54:00:aa:bb:01', link: 'up' });
      expect(await canConnect(portA), 'the recorded forward listens again').to.equal(true);
      await vm.stop();
      vm = createVm({ restore: dir, nets: [{ kind: 'user', hostfwd: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: portB, guestPort: 22 }] }] });
      await vm.start();
      expect(vm.stats().virtio[0]!.net!.mac).to.equal('52:54:00:aa:bb:01');
      expect([await canConnect(portB), await canConnect(portA)], 'the forward given instead').to.deep.equal([true, false]);
      await vm.stop();
      vm = undefined;
      expect(() => createVm({ restore: dir, nets: [{ kind: 'tap', name: 'nvsnap0' }] })).to.throw(/NIC 0 is user,mac=52:54:00:aa:bb:01: its back end may change, not its kind/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('restores a NIC whose link was down in the snapshot (passt had gone) with the link up on its new passt, saying so', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodevisor-net-snap-down-'));
    try {
      vm = createVm({ image: testImage('halt-forever'), memory: '16M', nets: [{ kind: 'user' }] });
      await vm.start();
      process.kill(passtChildren()[0]!, 'SIGKILL');
      await until(() => vm!.stats().virtio[0]!.net!.link === 'down', 'the link to go down', 10000, 20);
      await vm.snapshot(dir, { resume: false });
      await vm.stop();
      vm = createVm({ restore: dir });
      const logs: string[] = [];
      vm.on('log', (_level: string, m: string) => logs.push(m));
      await vm.start();
      expect(vm.stats().virtio[0]!.net!.link).to.equal('up');
      expect(logs).to.include('virtio-net (user): the link, down in the snapshot, is up on the new back end');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start when passt cannot (a forwarded port already taken), naming the port', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const hostPort = (busy.address() as AddressInfo).port;
    try {
      const v = createVm({ image: testImage('halt-forever'), memory: '16M', nets: [{ kind: 'user', hostfwd: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort, guestPort: 22 }] }] });
      let error: Error | undefined;
      await v.start().catch((e: Error) => (error = e));
      expect(error?.message).to.equal(`passt failed to start: Failed to bind any port for '-t 127.0.0.1/${hostPort}:22', exiting`);
      expect(passtChildren()).to.deep.equal([]);
    } finally {
      busy.close();
    }
  });
});
