import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testImage } from './helpers/guests.js';
import { BackgroundRun, cli } from './helpers/cli-run.js';
import type { TopSample } from '../src/top/rates.js';

/**
 * The API socket end to end: `nodevisor run --api-socket` with our own
 * guests, driven by `nodevisor ctl` and `nodevisor top` as separate
 * processes, as a user would.
 */
describe('nodevisor ctl and top against a running VM', function () {
  this.timeout(120000);
  let dir: string;

  before(() => (dir = mkdtempSync(join(tmpdir(), 'nodevisor-ctl-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('a guest doing port I/O', () => {
    let run: BackgroundRun;
    let path: string;

    before(async () => {
      path = join(dir, 'io.sock');
      run = new BackgroundRun(['--image', testImage('port-io-forever').source as string, '--api-socket', path]);
      await run.socketReady(path);
    });

    after(() => run.kill());

    it('answers ctl status: running, its size and irqchip mode', async () => {
      const r = await cli(['ctl', path, 'status']);
      expect(r.status).to.equal(0);
      expect(r.stdout).to.match(/^running: 1 vCPU, 256 MiB, irqchip user, up [0-9.]+ s \(pid \d+, protocol 1\)\n$/);
      const j = await cli(['ctl', path, 'status', '--json']);
      expect(JSON.parse(j.stdout)).to.include({ state: 'running', vcpus: 1, irqchip: 'user', protocol: 1 });
    });

    it('shows I/O exits rising in top --once --json', async () => {
      const r = await cli(['top', path, '--once', '--json', '--interval', '0.5']);
      expect(r.status).to.equal(0);
      const s = JSON.parse(r.stdout) as TopSample;
      expect(s.irqchip).to.equal('user');
      expect(s.vcpus).to.have.length(1);
      expect(s.vcpus[0]!.exitsPerSecond).to.be.greaterThan(0);
      expect(s.vcpus[0]!.exitsByReasonPerSecond.Io).to.be.greaterThan(0);
      expect(s.vcpus[0]!.time.guest).to.be.greaterThan(0);
    });

    it('writes a snapshot with ctl snapshot DIR and goes on running; the snapshot restores', async () => {
      const snap = join(dir, 'snap');
      const r = await cli(['ctl', path, 'snapshot', snap]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(new RegExp(`^snapshot written to ${snap} \\([0-9.]+ MiB of RAM data, [0-9.]+ s\\); the VM is running\n$`));
      expect(existsSync(join(snap, 'manifest.json'))).to.equal(true);
      expect((await cli(['ctl', path, 'status'])).stdout).to.match(/^running:/);
      const restored = new BackgroundRun(['--restore', snap, '--api-socket', join(dir, 'restored.sock')]);
      try {
        await restored.socketReady(join(dir, 'restored.sock'));
        const s = JSON.parse((await cli(['top', join(dir, 'restored.sock'), '--once', '--json', '--interval', '0.3'])).stdout) as TopSample;
        expect(s.vcpus[0]!.exitsByReasonPerSecond.Io).to.be.greaterThan(0);
      } finally {
        restored.kill();
      }
      const bad = await cli(['ctl', path, 'snapshot']);
      expect(bad.status).to.equal(1);
      expect(bad.stderr).to.match(/snapshot needs "dir"/);
    });

    it('pauses with ctl pause (no exits while paused, the vCPU shown paused) and resumes with ctl resume', async () => {
      expect((await cli(['ctl', path, 'pause'])).stdout).to.equal('paused\n');
      const s = JSON.parse((await cli(['top', path, '--once', '--json', '--interval', '0.3'])).stdout) as TopSample;
      expect(s.state).to.equal('paused');
      expect(s.vcpus[0]!.state).to.equal('paused');
      expect(s.vcpus[0]!.exitsPerSecond).to.equal(0);
      expect((await cli(['ctl', path, 'resume'])).stdout).to.equal('running\n');
      const after = JSON.parse((await cli(['top', path, '--once', '--json', '--interval', '0.3'])).stdout) as TopSample;
      expect(after.vcpus[0]!.exitsPerSecond).to.be.greaterThan(0);
    });

    it('prints a screen per vCPU with top --once', async () => {
      const r = await cli(['top', path, '--once', '--interval', '0.2']);
      expect(r.status).to.equal(0);
      expect(r.stdout).to.contain('irqchip user  1 vCPU');
      expect(r.stdout).to.match(/\n +0 +(in guest|in VMM) .*Io /);
    });

    it('refuses a second VM on the same socket path while this one is live', async () => {
      const r = await cli(['run', '--image', testImage('halt-forever').source as string, '--api-socket', path]);
      expect(r.status).to.equal(64);
      expect(r.stderr).to.equal(`nodevisor: ${path} is in use: another process is listening there (a running VM?)\n`);
    });

    it('stops the VM with ctl stop (exit status 8) and the socket file is gone afterwards', async () => {
      const r = await cli(['ctl', path, 'stop']);
      expect(r.status).to.equal(0);
      expect(r.stdout).to.equal('the VM was stopped by the host\n');
      expect(await run.exited).to.equal(8);
      expect(existsSync(path)).to.equal(false);
    });
  });

  it('shows halt time on an idle guest in top --once --json', async () => {
    const path = join(dir, 'idle.sock');
    const run = new BackgroundRun(['--image', testImage('halt-forever').source as string, '--api-socket', path, '--smp', '2']);
    try {
      await run.socketReady(path);
      // Both vCPUs check in and halt at once, with interrupts off, for good.
      const s = JSON.parse((await cli(['top', path, '--once', '--json', '--interval', '0.5'])).stdout) as TopSample;
      expect(s.vcpus).to.have.length(2);
      for (const v of s.vcpus) {
        expect(v.state).to.equal('halted');
        expect(v.time.halt).to.be.greaterThan(v.time.guest);
      }
    } finally {
      await cli(['ctl', path, 'stop']);
      await run.exited;
    }
    expect(existsSync(path)).to.equal(false);
  });

  it('fails with status 1 and says why when no VM listens at the path', async () => {
    const r = await cli(['ctl', join(dir, 'none.sock'), 'status']);
    expect(r.status).to.equal(1);
    expect(r.stderr).to.equal(`nodevisor: cannot connect to ${join(dir, 'none.sock')}: no such socket\n`);
  });

  it('answers --help for ctl and top, and rejects unknown ctl commands with status 64', async () => {
    const ctl = await cli(['ctl', '--help']);
    expect(ctl.status).to.equal(0);
    expect(ctl.stdout).to.contain('Usage: nodevisor ctl PATH COMMAND');
    for (const c of ['status', 'stats', 'pause', 'resume', 'power-button', 'stop', 'console-input TEXT', 'subscribe']) expect(ctl.stdout).to.contain(`  ${c}`);
    const top = await cli(['top', '--help']);
    expect(top.status).to.equal(0);
    expect(top.stdout).to.contain('Usage: nodevisor top PATH');
    const bad = await cli(['ctl', join(dir, 'x.sock'), 'reboot']);
    expect(bad.status).to.equal(64);
    const run = await cli(['run', '--help']);
    expect(run.stdout).to.contain('--api-socket PATH');
    expect(run.stdout).to.contain('--gdb ADDR');
  });
});
