/**
 * `nodevisor bench snapshot`: the Linux test kernel booted to user space
 * with 256 MiB, 1 GiB and 4 GiB of RAM, snapshotted, and restored in this
 * process. Per size: seconds to write the snapshot, milliseconds from
 * `createVm({ restore })` until every vCPU runs again, the RAM data the
 * snapshot holds, and restore time over the fresh boot of the same guest
 * measured in the same repetition (the reason to restore instead of boot).
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodevisorError } from '../kvm/errors.js';
import { buildInitramfs } from '../images/initramfs.js';
import { guestProgram } from '../images/guest-programs.js';
import { findTestKernel } from '../images/test-kernel.js';
import { parseSize } from '../memory/layout.js';
import { Vm } from '../vm/vm.js';
import type { BenchContext, Metric, Suite, SuiteResult } from './types.js';
import { isSelected } from './select.js';

export const SNAPSHOT_SIZES = ['256M', '1G', '4G'] as const;
const BOOT_TIMEOUT_MS = 600_000;

interface Sample {
  bootMs: number;
  saveS: number;
  restoreMs: number;
  ramMiB: number;
}

/** Boots the guest to /init's idle command, snapshots it into `dir`, and stops it. */
async function bootAndSnapshot(kernel: string, initrd: Uint8Array, memory: string, dir: string): Promise<Omit<Sample, 'restoreMs'>> {
  const t0 = performance.now();
  const vm = new Vm({ vcpus: 1, memory, kernel, initrd });
  let console = '';
  let up = 0;
  let resolveUp!: () => void;
  const running = new Promise<void>((r) => (resolveUp = r));
  vm.on('console', (c: Buffer) => {
    console = (console + c.toString('latin1')).slice(-8192);
    if (!up && /nodevisor-init: run 1: /.test(console)) {
      up = performance.now();
      resolveUp();
    }
  });
  await vm.start();
  try {
    const timer = setTimeout(() => void vm.stop(), BOOT_TIMEOUT_MS);
    await Promise.race([running, vm.wait()]);
    clearTimeout(timer);
    if (!up) throw new Error(`the guest (${memory}) did not reach user space: ${(await vm.wait()).message}; last console lines:\n${console.split('\n').slice(-15).join('\n')}`);
    const info = await vm.snapshot(dir, { resume: false });
    return { bootMs: up - t0, saveS: info.seconds, ramMiB: info.ramBytes / 1048576 };
  } finally {
    await vm.stop();
  }
}

/** Restores `dir` and returns the milliseconds until its vCPUs run. */
async function restoreOnce(dir: string): Promise<number> {
  const t0 = performance.now();
  const vm = new Vm({ restore: dir });
  await vm.start();
  const ms = performance.now() - t0;
  await vm.stop();
  return ms;
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const kernel = findTestKernel();
  if (!kernel) throw new NodevisorError('EBENCH', 'the snapshot suite needs the test kernel: run `nodevisor image build-test-kernel` first');
  const sizes = SNAPSHOT_SIZES.filter((s) => ['save', 'restore', 'restore-vs-boot', 'ram-data'].some((m) => isSelected(`snapshot.${m}.${s}`, ctx.only)));
  const initrd = buildInitramfs({ files: [{ path: 'bin/nvbench', data: readFileSync(guestProgram('nvbench')) }], runList: ['nvbench idle 100000'] });
  const samples = new Map<string, Sample[]>();
  const work = mkdtempSync(join(tmpdir(), 'nodevisor-bench-snapshot-'));
  const steps = ctx.repetitions * sizes.length;
  let done = 0;
  try {
    for (let rep = 0; rep < ctx.repetitions; rep++) {
      for (const size of sizes) {
        const dir = join(work, `${size}-${rep}`);
        ctx.progress(done, steps, `snapshot: ${size}, booting`);
        const s = await bootAndSnapshot(kernel, initrd, size, dir);
        ctx.progress(done, steps, `snapshot: ${size}, restoring`);
        const restoreMs = await restoreOnce(dir);
        rmSync(dir, { recursive: true, force: true });
        samples.set(size, [...(samples.get(size) ?? []), { ...s, restoreMs }]);
        ctx.log(`${size}: boot ${(s.bootMs / 1000).toFixed(1)} s, snapshot ${s.saveS.toFixed(2)} s (${s.ramMiB.toFixed(0)} MiB), restore ${restoreMs.toFixed(0)} ms`);
        done++;
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  ctx.progress(steps, steps, 'snapshot: done');
  const metrics: Metric[] = [];
  for (const size of sizes) {
    const s = samples.get(size) ?? [];
    const params = { memory: size, bytes: parseSize(size), vcpus: 1, kernel: 'test kernel' };
    metrics.push(
      { id: `snapshot.save.${size}`, description: `seconds to write a snapshot of the Linux test kernel in user space with ${size} of RAM (paused, quiesced, sparse RAM file)`, unit: 's', better: 'lower', samples: s.map((x) => x.saveS), tolerance: 0.25, params },
      { id: `snapshot.restore.${size}`, description: `milliseconds from createVm({ restore }) to every vCPU running again, ${size} of RAM (target: < 100 ms at 1G, flat in the RAM size)`, unit: 'ms', better: 'lower', samples: s.map((x) => x.restoreMs), tolerance: 0.25, params: { ...params, target: 100 } },
      { id: `snapshot.restore-vs-boot.${size}`, description: `restore time over the time a fresh boot of the same guest takes to reach user space, ${size}`, unit: 'ratio', better: 'lower', samples: s.map((x) => x.restoreMs / x.bootMs), tolerance: 0.25, params },
      { id: `snapshot.ram-data.${size}`, description: `MiB of guest RAM the snapshot holds (only pages that were ever touched), ${size}`, unit: 'MiB', better: 'lower', samples: s.map((x) => x.ramMiB), tolerance: 0.1, params },
    );
  }
  return { suite: 'snapshot', metrics, notes: ['one vCPU; the guest is the test kernel idling in user space (nvbench idle); restore maps the RAM file copy-on-write'] };
}

export const snapshotSuite: Suite = {
  name: 'snapshot',
  description: 'snapshot and restore of the Linux test kernel with 256 MiB, 1 GiB and 4 GiB of RAM: save time, restore-to-running time, restore over fresh boot',
  run,
};
