/**
 * The initramfs of the Debian guest image: a statically linked busybox as the
 * whole user space, /init = guests/linux/init.sh, /dev/console (the kernel
 * opens it for init's stdio before any devtmpfs exists) and /dev/null.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PACKAGE_ROOT } from '../guests/build.js';
import { cpioArchive, type CpioEntry } from '../boot/cpio.js';
import { NodevisorError } from '../kvm/errors.js';
import { isStaticX86_64Elf } from './elf-info.js';

export { isStaticX86_64Elf };

export const INIT_SCRIPT = join(PACKAGE_ROOT, 'guests', 'linux', 'init.sh');

/** The applets init.sh calls by name (plus a few for reading a stuck guest's state). */
export const BUSYBOX_APPLETS = ['sh', 'mount', 'nproc', 'poweroff', 'cat', 'ls', 'dmesg'] as const;

/** The newc cpio, uncompressed: /bin/busybox, /bin/<applet> -> busybox, /init, /dev/console, /dev/null, /proc, /sys. */
export function debianInitramfsCpio(busybox: Uint8Array, initScript: string | Uint8Array = readFileSync(INIT_SCRIPT)): Uint8Array {
  if (!isStaticX86_64Elf(busybox)) {
    throw new NodevisorError('EBUSYBOX', 'the busybox binary is not a statically linked x86-64 ELF executable: the initramfs has no libc for it; use Debian\'s busybox-static package, not busybox');
  }
  const entries: CpioEntry[] = [
    { path: 'bin', type: 'dir' },
    { path: 'bin/busybox', type: 'file', mode: 0o755, data: busybox },
    ...BUSYBOX_APPLETS.map((a): CpioEntry => ({ path: `bin/${a}`, type: 'symlink', target: 'busybox' })),
    { path: 'dev', type: 'dir' },
    { path: 'dev/console', type: 'char', major: 5, minor: 1 },
    // ash gives background jobs /dev/null as stdin and fails them without it.
    { path: 'dev/null', type: 'char', mode: 0o666, major: 1, minor: 3 },
    // Mount points for init.sh: the rootfs starts empty.
    { path: 'proc', type: 'dir' },
    { path: 'sys', type: 'dir' },
    { path: 'init', type: 'file', mode: 0o755, data: initScript },
  ];
  return cpioArchive(entries);
}

/** debianInitramfsCpio, gzip'd (every distribution kernel has CONFIG_RD_GZIP). */
export function debianInitramfs(busybox: Uint8Array, initScript: string | Uint8Array = readFileSync(INIT_SCRIPT)): Uint8Array {
  return new Uint8Array(gzipSync(debianInitramfsCpio(busybox, initScript), { level: 9 }));
}
