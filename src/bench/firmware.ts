import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '../kvm/kvm.js';
import { DEFAULT_BIOS } from '../boot/firmware.js';
import { findTestKernel } from '../images/test-kernel.js';
import { testInitramfs } from '../images/initramfs.js';
import { buildDisk } from '../images/build-disk.js';
import { guestCmdline } from '../vm/host-quirks.js';
import type { BenchContext, Metric, Suite, SuiteResult } from './types.js';
import { CLI, RUN_INIT, timeToMarkers } from './boot-run.js';

/**
 * The firmware suite (issue 14): the test kernel booted through SeaBIOS
 * from a disk made by `image build-disk` (SYSLINUX), against the same
 * kernel, initramfs, command line and memory booted directly, alternately
 * in each repetition so both see the same machine. Seconds from process
 * start to the boot loader's banner, to the kernel's first console line
 * ("Linux version") and to "Run /init"; the ratios pair each firmware boot
 * with the direct boot of the same repetition.
 */
const MEMORY = '256M';
const TIMEOUT_MS = 600_000;
const LOADER = 'SYSLINUX ';
const KERNEL = 'Linux version';

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const kernel = findTestKernel();
  if (!kernel) throw new Error('the firmware suite needs the test kernel: run `npm run kernel` (nodevisor image build-test-kernel) first');
  if (!existsSync(DEFAULT_BIOS)) throw new Error(`the firmware suite needs SeaBIOS (${DEFAULT_BIOS}): apt-get install seabios`);
  const dir = mkdtempSync(join(tmpdir(), 'nodevisor-bench-fw-'));
  try {
    const initrd = join(dir, 'initramfs.cpio');
    writeFileSync(initrd, testInitramfs());
    const cmdline = guestCmdline('console=ttyS0 panic=-1', Kvm.isSoftwareVirtualised());
    const disk = join(dir, 'disk.img');
    // The shortest prompt SYSLINUX has (0.1 s): the stage is the loader's work, not its wait.
    buildDisk(disk, { kernel, initrd, cmdline, timeout: 1 });
    const firmware = ['run', '--quiet', '--bios', '--disk', `${disk},readonly`, '--memory', MEMORY];
    const direct = ['run', '--quiet', '--kernel', kernel, '--initrd', initrd, '--cmdline', cmdline, '--memory', MEMORY];
    const s = { loader: [] as number[], kernel: [] as number[], init: [] as number[], directKernel: [] as number[], directInit: [] as number[] };
    for (let rep = 0; rep < ctx.repetitions; rep++) {
      ctx.progress(2 * rep, 2 * ctx.repetitions, 'firmware: SeaBIOS + SYSLINUX');
      const a = await timeToMarkers(process.execPath, [CLI, ...firmware], [LOADER, KERNEL, RUN_INIT], TIMEOUT_MS);
      if (a.seconds.some((x) => x === null)) throw new Error(`the firmware boot did not reach /init within ${TIMEOUT_MS / 1000} s; last output:\n${a.tail}`);
      ctx.progress(2 * rep + 1, 2 * ctx.repetitions, 'firmware: direct kernel boot');
      const b = await timeToMarkers(process.execPath, [CLI, ...direct], [KERNEL, RUN_INIT], TIMEOUT_MS);
      if (b.seconds.some((x) => x === null)) throw new Error(`the direct boot did not reach /init within ${TIMEOUT_MS / 1000} s; last output:\n${b.tail}`);
      s.loader.push(a.seconds[0]!);
      s.kernel.push(a.seconds[1]!);
      s.init.push(a.seconds[2]!);
      s.directKernel.push(b.seconds[0]!);
      s.directInit.push(b.seconds[1]!);
    }
    ctx.progress(2 * ctx.repetitions, 2 * ctx.repetitions, 'firmware: done');
    const params = { memory: MEMORY, vcpus: 1, kernel: 'test kernel (images/test-kernel.config)' };
    const seconds = (id: string, description: string, samples: number[]): Metric => ({ id, description, unit: 's', better: 'lower', samples, tolerance: 0.2, params });
    const ratio = (id: string, description: string, a: number[], b: number[]): Metric => ({ id, description, unit: 'ratio', better: 'lower', samples: a.map((x, i) => x / b[i]!), tolerance: 0.2, params });
    return {
      suite: 'firmware',
      metrics: [
        seconds('firmware.bios.to-loader', 'SeaBIOS boot: seconds from process start to the boot loader (SYSLINUX banner)', s.loader),
        seconds('firmware.bios.to-kernel', "SeaBIOS boot: seconds from process start to the kernel's first console line", s.kernel),
        seconds('firmware.bios.to-init', 'SeaBIOS boot: seconds from process start to "Run /init"', s.init),
        seconds('firmware.direct.to-kernel', "direct kernel boot: seconds from process start to the kernel's first console line", s.directKernel),
        seconds('firmware.direct.to-init', 'direct kernel boot: seconds from process start to "Run /init"', s.directInit),
        ratio('firmware.bios-vs-direct.to-kernel', 'time to the kernel\'s first line, firmware boot over direct boot (same repetition)', s.kernel, s.directKernel),
        ratio('firmware.bios-vs-direct.to-init', 'time to "Run /init", firmware boot over direct boot (same repetition)', s.init, s.directInit),
      ],
      notes: [`both boots: 1 vCPU, ${MEMORY}, command line ${cmdline}`],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const firmwareSuite: Suite = {
  name: 'firmware',
  description: 'the test kernel through SeaBIOS and SYSLINUX from a built disk vs booted directly: seconds to the boot loader, the kernel\'s first line and /init',
  run,
};
