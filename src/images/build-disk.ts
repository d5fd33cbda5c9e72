/**
 * `nodevisor image build-disk`: a raw disk image a PC BIOS boots - an MBR
 * partition table with SYSLINUX's MBR code, one bootable FAT16 partition
 * from 1 MiB holding SYSLINUX, the kernel, the initrd and syslinux.cfg.
 * Everything is written into the image file with the tools' offset options
 * (sfdisk on the file, mkfs.fat --offset, mtools' image@@offset, syslinux
 * --offset: the mtools-based installer), so it needs neither root nor loop
 * devices. SYSLINUX and FAT because the other standard loaders' installers
 * (extlinux, grub-install) need the file system mounted.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { NodevisorError, errnoCode } from '../kvm/errors.js';
import { Kvm } from '../kvm/kvm.js';
import { guestCmdline } from '../vm/host-quirks.js';
import { onPath } from './debian-apt.js';

export const SYSLINUX_MBR = '/usr/lib/syslinux/mbr/mbr.bin';
export const DISK_PACKAGES = 'syslinux syslinux-common mtools dosfstools fdisk';
const MiB = 1024 * 1024;
const SECTOR = 512;
/** Where the partition starts: 1 MiB, the usual alignment. */
export const PARTITION_OFFSET = MiB;
/** Room for SYSLINUX, syslinux.cfg and FAT overhead beyond the kernel and initrd. */
const SLACK = 4 * MiB;
/** FAT16 with 32 KiB clusters ends at 2 GiB. */
const MAX_DISK = 2048 * MiB;
const MIN_DISK = 16 * MiB;
/** The MBR's boot code: the 440 bytes before the disk signature and partition table. */
const MBR_CODE = 440;

export interface BuildDiskOptions {
  readonly kernel: string;
  readonly initrd?: string;
  /** Default: console=ttyS0, plus what this host needs (see host-quirks.ts) where its KVM virtualises in software. */
  readonly cmdline?: string;
  /** Image size in bytes; default: what the files need, rounded up to a MiB (at least 16 MiB). */
  readonly size?: number;
  /** Deciseconds SYSLINUX's "boot:" prompt waits before it boots the default (default 10; 0: no prompt). */
  readonly timeout?: number;
}

/** The SYSLINUX configuration: a `boot:` prompt (none with timeout 0), then the one entry. */
export function syslinuxConfig(o: { cmdline: string; initrd: boolean; timeout: number }): string {
  return [
    'DEFAULT linux',
    // SYSLINUX's TIMEOUT 0 means "wait forever": no prompt at all instead.
    ...(o.timeout > 0 ? ['PROMPT 1', `TIMEOUT ${o.timeout}`] : ['PROMPT 0']),
    'SAY nodevisor disk: booting "linux" (type a label, or Enter)',
    'LABEL linux',
    '  KERNEL vmlinuz',
    ...(o.initrd ? ['  INITRD initrd'] : []),
    `  APPEND ${o.cmdline}`,
    '',
  ].join('\n');
}

function fileSize(path: string, what: string): number {
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new NodevisorError('EDISKBUILD', `${what} ${path} is not a regular file`);
    return st.size;
  } catch (e) {
    if (e instanceof NodevisorError) throw e;
    throw new NodevisorError('EDISKBUILD', `${what} ${path} ${errnoCode(e) === 'ENOENT' ? 'does not exist' : (e as Error).message}`, { cause: e });
  }
}

function run(tool: string, args: string[], input?: string): void {
  try {
    execFileSync(tool, args, { stdio: ['pipe', 'pipe', 'pipe'], input });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new NodevisorError('EDISKBUILD', `${tool} failed: ${err.stderr?.toString().trim() || err.message}`, { cause: e });
  }
}

/** Writes the disk image to `out` (atomically); returns its size. */
export function buildDisk(out: string, o: BuildDiskOptions): number {
  const missing = ['sfdisk', 'mkfs.fat', 'mcopy', 'syslinux'].filter((t) => !onPath(t) && !existsSync(`/usr/sbin/${t}`) && !existsSync(`/sbin/${t}`));
  if (missing.length || !existsSync(SYSLINUX_MBR)) {
    throw new NodevisorError('EDISKBUILD', `building a disk needs ${[...missing, ...(existsSync(SYSLINUX_MBR) ? [] : [SYSLINUX_MBR])].join(', ')}: apt-get install ${DISK_PACKAGES}`);
  }
  const kernelSize = fileSize(o.kernel, 'kernel');
  const initrdSize = o.initrd ? fileSize(o.initrd, 'initrd') : 0;
  const needed = Math.ceil((PARTITION_OFFSET + kernelSize + initrdSize + SLACK) / MiB) * MiB;
  const size = o.size ?? Math.max(MIN_DISK, needed);
  if (size < needed || size > MAX_DISK || size % MiB !== 0) {
    throw new NodevisorError('EDISKBUILD', `a disk for these files must be a whole number of MiB from ${needed / MiB} MiB to ${MAX_DISK / MiB} MiB (got ${size} bytes)`);
  }
  const cmdline = o.cmdline ?? guestCmdline(undefined, Kvm.isSoftwareVirtualised());
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w');
    try {
      ftruncateSync(fd, size);
    } finally {
      closeSync(fd);
    }
    run('sfdisk', ['--quiet', tmp], `label: dos\nstart=${PARTITION_OFFSET / SECTOR}, type=e, bootable\n`);
    const code = openSync(tmp, 'r+');
    try {
      writeSync(code, readFileSync(SYSLINUX_MBR).subarray(0, MBR_CODE), 0, MBR_CODE, 0);
    } finally {
      closeSync(code);
    }
    const partitionKiB = (size - PARTITION_OFFSET) / 1024;
    run('mkfs.fat', ['-F', '16', '--offset', String(PARTITION_OFFSET / SECTOR), '-n', 'NODEVISOR', tmp, String(partitionKiB)]);
    const fat = `${tmp}@@${PARTITION_OFFSET}`;
    const cfg = `${tmp}.cfg`;
    writeFileSync(cfg, syslinuxConfig({ cmdline, initrd: o.initrd !== undefined, timeout: o.timeout ?? 10 }));
    try {
      run('mcopy', ['-i', fat, o.kernel, '::vmlinuz']);
      if (o.initrd) run('mcopy', ['-i', fat, o.initrd, '::initrd']);
      run('mcopy', ['-i', fat, cfg, '::syslinux.cfg']);
    } finally {
      rmSync(cfg, { force: true });
    }
    run('syslinux', ['--offset', String(PARTITION_OFFSET), '--install', tmp]);
    renameSync(tmp, out);
  } catch (e) {
    rmSync(tmp, { force: true });
    if (e instanceof NodevisorError) throw e;
    throw new NodevisorError('EDISKBUILD', `cannot write ${out}: ${(e as Error).message}`, { cause: e });
  }
  return size;
}
