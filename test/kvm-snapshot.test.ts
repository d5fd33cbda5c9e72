import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVm, NodevisorError } from '../src/index.js';
import type { IrqchipMode } from '../src/vcpu/cpuid.js';
import { until } from './helpers/until.js';
import { R, PM_HZ, RESULTS } from './helpers/pause-ticks.js';
import { kitImage, TEST_GUESTS } from './helpers/guests.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** Boots pause-ticks on 2 vCPUs, lets it tick, snapshots it to `dir` and stops it; returns what the guest had counted. */
async function snapshotTicking(dir: string, irqchip: IrqchipMode, extra: { disks?: { path: string }[] } = {}): Promise<{ ticks: number; spins: number }> {
  const vm = createVm({ vcpus: 2, memory: '64M', irqchip, image: kitImage('pause-ticks'), ...extra });
  await vm.start();
  try {
    await until(() => R(vm, 0) >= 20, '20 ticks');
    vm.memory.writeU32(RESULTS + 4 * 4, 0);
    await vm.snapshot(dir, { resume: false });
    return { ticks: R(vm, 0), spins: R(vm, 1) };
  } finally {
    await vm.stop();
  }
}

for (const irqchip of ['user', 'split', 'kernel'] as IrqchipMode[]) {
  describe(`snapshot and restore of our own guest (irqchip "${irqchip}", 2 vCPUs)`, function () {
    this.timeout(120000);
    let dir = '';
    let counted: { ticks: number; spins: number };
    const seen: Record<string, number> = {};
    let message = '';

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'nodevisor-snapshot-'));
      counted = await snapshotTicking(dir, irqchip);
      const vm = createVm({ restore: dir });
      await vm.start();
      seen.ticks = R(vm, 0);
      seen.spins = R(vm, 1);
      seen.vcpus = vm.vcpus;
      await until(() => R(vm, 0) >= counted.ticks + 20, '20 more ticks');
      seen.spinsAfter = R(vm, 1);
      seen.maxStep = R(vm, 4);
      vm.memory.writeU32(RESULTS + 15 * 4, 1);
      const timer = setTimeout(() => void vm.stop(), 30000);
      message = (await vm.wait()).message;
      clearTimeout(timer);
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    it('brings back guest RAM as it was: the counts the guest had reached', () => {
      expect(seen.vcpus).to.equal(2);
      expect(seen.ticks).to.be.at.least(counted.ticks);
      expect(seen.ticks).to.be.below(counted.ticks + 5);
      expect(seen.spins).to.be.at.least(counted.spins);
    });

    it('continues with the LAPIC timer firing and every vCPU running', () => {
      expect(seen.spinsAfter).to.be.greaterThan(counted.spins);
    });

    it("keeps the guest's clock without a jump across the stop and restore", () => {
      expect(seen.maxStep).to.be.below(PM_HZ / 4);
    });

    it('runs the guest to its normal end', () => {
      expect(message).to.equal('the guest wrote 0x42 to the debug-exit port');
    });
  });
}

describe('restore refusals', function () {
  this.timeout(120000);
  let dir = '';
  let disk = '';
  let work = '';

  const copy = (): string => {
    const c = mkdtempSync(join(work, 'copy-'));
    cpSync(dir, c, { recursive: true });
    return c;
  };
  const digest = (d: string): string => {
    const h = createHash('sha256');
    for (const f of ['manifest.json', 'ram.img', 'devices.json']) h.update(readFileSync(join(d, f)));
    return h.digest('hex');
  };
  const refused = async (restore: string, pattern: RegExp, options: object = {}): Promise<void> => {
    let err: unknown;
    try {
      const vm = createVm({ restore, ...options });
      await vm.start();
      await vm.stop();
    } catch (e) {
      err = e;
    }
    expect(err, 'no error').to.be.instanceOf(Error);
    expect((err as NodevisorError).code).to.equal('ESNAPSHOT');
    expect((err as Error).message).to.match(pattern);
  };

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'nodevisor-snapshot-refusals-'));
    dir = join(work, 'snap');
    disk = join(work, 'disk.img');
    writeFileSync(disk, Buffer.alloc(1 << 20));
    await snapshotTicking(dir, 'user', { disks: [{ path: disk }] });
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  it('refuses a directory that does not exist or holds no snapshot', async () => {
    await refused(join(work, 'nowhere'), /does not exist or is not a directory/);
    const c = copy();
    rmSync(join(c, 'manifest.json'));
    await refused(c, /manifest\.json is missing \(not a snapshot, or one that was interrupted\)/);
  });

  it('refuses a truncated RAM file or vCPU file', async () => {
    const c = copy();
    truncateSync(join(c, 'ram.img'), 4096);
    await refused(c, /RAM file is 4096 bytes, the manifest says 67108864 \(truncated\?\)/);
    const d = copy();
    writeFileSync(join(d, 'vcpu-1.json'), '{"regs": {');
    await refused(d, /vcpu-1\.json is not valid JSON/);
  });

  it("refuses another format, and device state from a newer nodevisor's layout", async () => {
    const c = copy();
    const m = JSON.parse(readFileSync(join(c, 'manifest.json'), 'utf8'));
    writeFileSync(join(c, 'manifest.json'), JSON.stringify({ ...m, format: 'nodevisor-snapshot/99' }));
    await refused(c, /format "nodevisor-snapshot\/99", this nodevisor reads nodevisor-snapshot\/1/);
    const n = copy();
    writeFileSync(join(n, 'manifest.json'), JSON.stringify({ ...m, vm: { ...m.vm, nets: [{ kind: 'tap', mac: '52:54:00:00:00:01' }] } }));
    await refused(n, /manifest\.json has no valid NIC list/);
    const d = copy();
    const devices = JSON.parse(readFileSync(join(d, 'devices.json'), 'utf8'));
    devices[0].state.regs.version = 7;
    writeFileSync(join(d, 'devices.json'), JSON.stringify(devices));
    await refused(d, /uart16550: saved by a newer nodevisor \(layout version 7/);
  });

  it('refuses options that would change the machine', async () => {
    await refused(dir, /the snapshot has 2 vCPUs, 4 were asked for/, { vcpus: 4 });
    await refused(dir, /the snapshot's irqchip mode is user, kernel was asked for/, { irqchip: 'kernel' });
    await refused(dir, /it boots nothing, so "kernel" cannot be given/, { kernel: '/boot/vmlinuz' });
    await refused(dir, /the snapshot has no NICs, 1 were given; give none, or one for each/, { nets: [{ kind: 'user' }] });
  });

  it('refuses a host that lacks a CPU feature the guest saw', async () => {
    const c = copy();
    const m = JSON.parse(readFileSync(join(c, 'manifest.json'), 'utf8'));
    const leaf = m.cpuid[0].find((e: { function: number }) => e.function === 0x80000001);
    leaf.ecx = (leaf.ecx | 0x80000000) >>> 0; // a reserved bit no host sets
    writeFileSync(join(c, 'manifest.json'), JSON.stringify(m));
    await refused(c, /CPU features this host does not give it \(CPUID 0x80000001 ecx bit 31\)/);
  });

  it('refuses a disk that changed since the snapshot, and changes nothing in the snapshot', async () => {
    const fingerprint = digest(dir);
    appendFileSync(disk, Buffer.alloc(512));
    await refused(dir, /disk .*disk\.img changed since the snapshot \(size 1048576 -> 1049088 bytes\)/);
    expect(digest(dir)).to.equal(fingerprint);
  });
});

/** test/guests/snapshot-storm.c's result words. */
const STORM = { DONE: 2, NEXT: 3, STOP: 4, EXIT: 5, FAILED: 1, SENT: 16, RECV: 48 } as const;
const STORM_TOTAL = 3000;
const STORM_SEED = 0x5eed;
const SECTOR = 512;

function stormImage() {
  const common = createHash('sha256').update(readFileSync(join(TEST_GUESTS, 'virtio-blk-common.h'))).digest('hex').slice(0, 12);
  return kitImage('snapshot-storm', { defines: { SEED: STORM_SEED, TOTAL: STORM_TOTAL, QD: 8, TOKENS: 3, COMMON_H_SHA: `0x${common}` } });
}

/** The word pattern snapshot-storm.c writes (virtio-blk-common.h's pattern()). */
function stormWord(offset: number): number {
  return (Math.imul(Math.floor(offset / 512) >>> 0, 0x9e3779b1) + Math.imul(offset & 511, 0x85ebca77) + STORM_SEED) >>> 0;
}

for (const irqchip of ['user', 'split', 'kernel'] as IrqchipMode[]) {
  describe(`snapshot and restore mid-work: an IPI storm on 4 vCPUs and a virtio-blk writer (irqchip "${irqchip}")`, function () {
    this.timeout(300000);
    let work = '';
    let disk = '';
    const seen: Record<string, number> = {};
    let result = '';

    before(async () => {
      work = mkdtempSync(join(tmpdir(), 'nodevisor-snapshot-storm-'));
      disk = join(work, 'disk.img');
      writeFileSync(disk, Buffer.alloc(4 << 20));
      const dir = join(work, 'snap');
      const vm = createVm({ vcpus: 4, memory: '64M', irqchip, image: stormImage(), disks: [{ path: disk }] });
      await vm.start();
      try {
        await until(() => (R(vm, STORM.DONE) >= STORM_TOTAL / 5 && R(vm, STORM.RECV) > 50) || R(vm, STORM.FAILED) !== 0, 'writes and IPIs under way', 120000);
        expect(R(vm, STORM.FAILED), `guest check failed at line ${R(vm, STORM.FAILED)} before the snapshot`).to.equal(0);
        await vm.snapshot(dir, { resume: false });
        seen.doneAtSnapshot = R(vm, STORM.DONE);
        seen.inFlightAtSnapshot = R(vm, STORM.NEXT) - R(vm, STORM.DONE);
      } finally {
        await vm.stop();
      }
      const r = createVm({ restore: dir });
      await r.start();
      await until(() => R(r, STORM.DONE) >= STORM_TOTAL || R(r, STORM.FAILED) !== 0, 'every write', 240000);
      r.memory.writeU32(RESULTS + STORM.STOP * 4, 1);
      // Tokens settle: no IPI in flight once the counts stop moving.
      const total = (base: number) => [0, 1, 2, 3].reduce((s, i) => s + R(r, base + i), 0);
      let last = -1;
      for (let stable = 0; stable < 5; ) {
        await sleep(50);
        const now = total(STORM.SENT) * 1e6 + total(STORM.RECV);
        stable = now === last ? stable + 1 : 0;
        last = now;
      }
      seen.sent = total(STORM.SENT);
      seen.received = total(STORM.RECV);
      seen.done = R(r, STORM.DONE);
      seen.failed = R(r, STORM.FAILED);
      r.memory.writeU32(RESULTS + STORM.EXIT * 4, 1);
      const timer = setTimeout(() => void r.stop(), 30000);
      result = (await r.wait()).message;
      clearTimeout(timer);
    });

    after(() => rmSync(work, { recursive: true, force: true }));

    it('was snapshotted with IPIs travelling and writes under way', () => {
      expect(seen.doneAtSnapshot).to.be.within(1, STORM_TOTAL - 1);
    });

    it('receives every IPI sent exactly once across the restore', () => {
      expect(seen.failed, `guest check failed at line ${seen.failed}`).to.equal(0);
      expect(seen.sent).to.be.greaterThan(100);
      expect(seen.received).to.equal(seen.sent);
    });

    it('completes every write exactly once, and the disk holds every one of them', () => {
      expect(seen.done).to.equal(STORM_TOTAL);
      const bytes = readFileSync(disk);
      let bad = -1;
      for (let off = 0; off < STORM_TOTAL * SECTOR && bad < 0; off += 4) if (bytes.readUInt32LE(off) !== stormWord(off)) bad = off;
      expect(bad, `first wrong word at byte ${bad}`).to.equal(-1);
      expect(result).to.equal('the guest wrote 0x42 to the debug-exit port');
    });
  });
}
