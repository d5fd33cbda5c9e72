import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '../kvm/kvm.js';
import { findTestKernel } from '../images/test-kernel.js';
import { testInitramfs } from '../images/initramfs.js';
import { guestCmdline } from '../vm/host-quirks.js';
import type { BenchContext, Metric, Suite, SuiteResult } from './types.js';
import { isSelected } from './select.js';
import { bootNodevisor, bootQemu } from './boot-run.js';

/**
 * The boot suite (issues 4 and 5): seconds from process start to "Run /init
 * as init process" for the test kernel at 1, 2 and 4 vCPUs, and the same
 * kernel, command line and memory under QEMU with KVM in the same run when
 * QEMU is installed and can boot here (the output says so when not).
 */
const VCPUS = [1, 2, 4];
const MEMORY = '256M';
const TIMEOUT_MS = 300_000;

function findQemu(): string | null {
  try {
    return execFileSync('sh', ['-c', 'command -v qemu-system-x86_64'], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const kernel = findTestKernel();
  if (!kernel) throw new Error('the boot suite needs the test kernel: run `npm run kernel` (nodevisor image build-test-kernel) first');
  const initrd = join(mkdtempSync(join(tmpdir(), 'nodevisor-boot-')), 'initramfs.cpio.gz');
  writeFileSync(initrd, testInitramfs());
  // Both VMMs get the same command line: ours plus what this host needs.
  const cmdline = guestCmdline('console=ttyS0 panic=-1', Kvm.isSoftwareVirtualised());
  const counts = VCPUS.filter((n) => isSelected(`boot.run-init.vcpus-${n}`, ctx.only) || isSelected(`boot.qemu.vcpus-${n}`, ctx.only));
  const qemu = findQemu();
  const notes: string[] = [`command line for both: ${cmdline}`];
  if (!qemu) notes.push('QEMU is not installed here (qemu-system-x86_64 not found): no comparison; install qemu-system-x86 to get one');

  const ours = new Map<number, number[]>();
  const theirs = new Map<number, number[]>();
  const qemuFailed = new Set<number>();
  const total = ctx.repetitions * counts.length * (qemu ? 2 : 1);
  let done = 0;
  for (let rep = 0; rep < ctx.repetitions; rep++) {
    for (const n of counts) {
      ctx.progress(done++, total, `boot: nodevisor, ${n} vCPU${n === 1 ? '' : 's'}`);
      const a = await bootNodevisor(kernel, initrd, n, MEMORY, cmdline, TIMEOUT_MS);
      if (a.seconds === null) throw new Error(`nodevisor did not reach /init with ${n} vCPUs within ${TIMEOUT_MS / 1000} s; last output:\n${a.tail}`);
      ours.set(n, [...(ours.get(n) ?? []), a.seconds]);
      if (!qemu || qemuFailed.has(n)) continue;
      ctx.progress(done++, total, `boot: QEMU, ${n} vCPU${n === 1 ? '' : 's'}`);
      const q = await bootQemu(qemu, kernel, initrd, n, MEMORY, cmdline, TIMEOUT_MS);
      if (q.seconds === null) {
        qemuFailed.add(n);
        notes.push(`QEMU with KVM could not boot the test kernel to /init with ${n} vCPUs here; its last output:\n${q.tail}`);
      } else theirs.set(n, [...(theirs.get(n) ?? []), q.seconds]);
    }
  }
  ctx.progress(total, total, 'boot: done');

  const metrics: Metric[] = [];
  for (const n of counts) {
    const params = { vcpus: n, memory: MEMORY, kernel: 'test kernel (images/test-kernel.config)' };
    metrics.push({ id: `boot.run-init.vcpus-${n}`, description: `nodevisor: seconds from process start to "Run /init" with ${n} vCPU(s)`, unit: 's', better: 'lower', samples: ours.get(n)!, tolerance: 0.15, params });
    const q = theirs.get(n);
    if (q?.length) {
      metrics.push({ id: `boot.qemu.vcpus-${n}`, description: `QEMU with KVM: seconds to "Run /init" with ${n} vCPU(s)`, unit: 's', better: 'lower', samples: q, tolerance: 0.15, params });
      const ratio = ours.get(n)!.slice(0, q.length).map((s, i) => s / q[i]!);
      metrics.push({ id: `boot.vs-qemu.vcpus-${n}`, description: `nodevisor boot time over QEMU's (target < 1: faster than QEMU)`, unit: 'ratio', better: 'lower', samples: ratio, tolerance: 0.15, params: { ...params, target: 1 } });
    }
  }
  return { suite: 'boot', metrics, notes };
}

export const bootSuite: Suite = {
  name: 'boot',
  description: 'seconds from process start to "Run /init" for the test kernel at 1, 2, 4 vCPUs, against QEMU with KVM where it can boot',
  run,
};
