/**
 * `nodevisor image ...`: build and locate guest images. Returns the exit
 * status; usage errors throw ImageUsageError, which the CLI prints.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { NodevisorError } from '../kvm/errors.js';
import { fetchDebianImage } from './debian.js';
import { buildInitramfs, parseAddition } from './initramfs.js';
import { BUILD_PACKAGES, buildTestKernel, findTestKernel } from './test-kernel.js';
import { buildDisk, DISK_PACKAGES } from './build-disk.js';
import { parseSize } from '../memory/layout.js';
import { joinNegativeValues } from '../args.js';

export class ImageUsageError extends Error {}

export const IMAGE_HELP = `Usage:
  nodevisor image build-test-kernel
      Build the small Linux 6.12 test kernel (Debian's linux-source-6.12 with
      images/test-kernel.config and images/*.patch; ~6 min on 2 cores,
      cached in ~/.cache/nodevisor/test-kernel). Needs: apt-get install
      ${BUILD_PACKAGES}. Prints the bzImage path.
  nodevisor image path test-kernel
      Print where the built test kernel is (fails if it is not built).
  nodevisor image build-initramfs OUT [--busybox] [--add HOSTPATH[:GUESTPATH]]...
                                      [--init-script FILE]
      Write an uncompressed initramfs to OUT with nodevisor's /init, which
      mounts /proc, /sys, /dev and /tmp, prints the CPU count, runs the init
      script if there is one, else a shell on the console (with --busybox),
      and powers the machine off when that ends.
        --busybox           Debian's busybox-static (apt-get download, cached):
                            /bin/sh and the usual tools
        --add H[:G]         copy host file or directory H to guest path G
                            (default /bin/NAME for executables, /root/NAME
                            otherwise, /NAME for directories); repeatable.
                            Programs must be static (or bring their loader)
        --init-script FILE  run FILE (a static program, or a #! script whose
                            interpreter is in the image) instead of a shell;
                            its exit status is reported on the console
  nodevisor image build-disk OUT --kernel FILE [--initrd FILE] [--cmdline TEXT]
                                 [--size SIZE] [--timeout DECISECONDS]
      Write a raw disk image a BIOS boots (nodevisor run --bios --disk OUT):
      an MBR with SYSLINUX's boot code and one bootable FAT16 partition with
      SYSLINUX, the kernel, the initrd and a syslinux.cfg whose "boot:"
      prompt waits --timeout (default 10 = 1 s; 0: no prompt) before booting the kernel
      with --cmdline (default console=ttyS0, plus the host-quirk options on
      hosts whose KVM virtualises in software). No root or loop devices:
      the tools write into the file. Needs: apt-get install ${DISK_PACKAGES}.
  nodevisor image fetch
      Get Debian's stock cloud kernel and busybox (apt-get download) and build
      an initramfs whose /init reports the CPU count, runs a workload and
      powers off; prints the kernel and initrd paths.`;

function buildInitramfsCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      busybox: { type: 'boolean' },
      add: { type: 'string', multiple: true },
      'init-script': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${IMAGE_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1) throw new ImageUsageError('build-initramfs needs one output file: nodevisor image build-initramfs OUT [options]');
  const out = positionals[0]!;
  const image = buildInitramfs({
    busybox: values.busybox ?? false,
    add: (values.add ?? []).map(parseAddition),
    initScript: values['init-script'],
    log: (line) => process.stderr.write(`nodevisor: ${line}\n`),
  });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, image);
    renameSync(tmp, out);
  } catch (e) {
    throw new NodevisorError('EINITRAMFS', `cannot write ${out}: ${(e as Error).message}`, { cause: e });
  }
  process.stderr.write(`nodevisor: wrote ${out} (${(image.length / 1024).toFixed(0)} KiB, uncompressed cpio)\n`);
  return 0;
}

function buildDiskCommand(args: string[]): number {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(args),
    allowPositionals: true,
    options: {
      kernel: { type: 'string' },
      initrd: { type: 'string' },
      cmdline: { type: 'string' },
      size: { type: 'string' },
      timeout: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${IMAGE_HELP}\n`);
    return 0;
  }
  if (positionals.length !== 1 || !values.kernel) throw new ImageUsageError('build-disk needs an output file and a kernel: nodevisor image build-disk OUT --kernel FILE [--initrd FILE]');
  let size: number | undefined;
  if (values.size !== undefined) {
    try {
      size = parseSize(values.size);
    } catch (e) {
      throw new ImageUsageError(`--size: ${(e as Error).message}`);
    }
  }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 0 || timeout > 36000)) throw new ImageUsageError(`--timeout must be a whole number of deciseconds from 0 to 36000 (got "${values.timeout}")`);
  const out = positionals[0]!;
  const bytes = buildDisk(out, { kernel: values.kernel, initrd: values.initrd, cmdline: values.cmdline, size, timeout });
  process.stderr.write(`nodevisor: wrote ${out} (${bytes / 1024 / 1024} MiB: MBR, SYSLINUX, FAT16 partition from 1 MiB)\n`);
  return 0;
}

export function imageCommand(args: string[]): number {
  const [verb, ...rest] = args;
  if (verb === undefined || verb === '--help' || verb === '-h' || verb === 'help') {
    process.stdout.write(`${IMAGE_HELP}\n`);
    return 0;
  }
  const help = rest.includes('--help') || rest.includes('-h');
  if (verb === 'build-initramfs') return buildInitramfsCommand(rest);
  if (verb === 'build-disk') return buildDiskCommand(rest);
  if (help) {
    process.stdout.write(`${IMAGE_HELP}\n`);
    return 0;
  }
  if (verb === 'build-test-kernel' && rest.length === 0) {
    process.stdout.write(`${buildTestKernel()}\n`);
    return 0;
  }
  if (verb === 'fetch' && rest.length === 0) {
    const img = fetchDebianImage({ log: (line) => process.stderr.write(`nodevisor: ${line}\n`) });
    process.stdout.write(`kernel  ${img.kernel}\ninitrd  ${img.initrd}\nversion ${img.version}\n`);
    return 0;
  }
  if (verb === 'path' && rest.length === 1 && rest[0] === 'test-kernel') {
    const p = findTestKernel();
    if (!p) throw new NodevisorError('ENOKERNEL', 'the test kernel has not been built: run `nodevisor image build-test-kernel`');
    process.stdout.write(`${p}\n`);
    return 0;
  }
  throw new ImageUsageError(`unknown image command "${args.join(' ')}" (see nodevisor image --help)`);
}
