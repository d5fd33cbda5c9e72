import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../guests/build.js';
import { cpioArchive } from '../boot/cpio.js';

const INIT_SOURCE = join(PACKAGE_ROOT, 'guests', 'linux', 'init.c');

/** guests/linux/init.c as a static x86-64 program (no libc; cached by source hash). */
export function buildInit(): Uint8Array {
  const hash = createHash('sha256').update(readFileSync(INIT_SOURCE)).digest('hex').slice(0, 12);
  const out = join(PACKAGE_ROOT, 'build', 'guests', `init-${hash}`);
  if (!existsSync(out)) {
    mkdirSync(join(out, '..'), { recursive: true });
    execFileSync('gcc', ['-static', '-nostdlib', '-O2', '-mno-popcnt', '-mno-sse', '-fno-pic', '-no-pie', '-o', `${out}.tmp`, INIT_SOURCE]);
    renameSync(`${out}.tmp`, out);
  }
  return readFileSync(out);
}

/**
 * The test initramfs (gzip'd cpio): /init, which prints
 * "nodevisor-init: N CPUs online" and powers off, and /dev/console.
 */
export function testInitramfs(): Uint8Array {
  return cpioArchive(
    [
      { path: 'dev', type: 'dir' },
      { path: 'dev/console', type: 'char', major: 5, minor: 1 },
      { path: 'init', type: 'file', mode: 0o755, data: buildInit() },
    ],
    { gzip: true },
  );
}
