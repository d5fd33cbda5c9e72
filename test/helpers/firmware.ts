import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_BIOS } from '../../src/boot/firmware.js';

/** Debian's SeaBIOS, or a skip where it is not installed (a failure in CI, whose script installs it). */
export function seabiosOrSkip(ctx: Mocha.Context): string {
  if (existsSync(DEFAULT_BIOS)) return DEFAULT_BIOS;
  if (process.env.CI) throw new Error(`${DEFAULT_BIOS} is missing: apt-get install seabios (.ci/run installs it)`);
  ctx.skip();
  throw new Error('unreachable');
}

/**
 * A raw disk whose MBR holds a few instructions of real-mode code: print
 * `mark` on COM1 and write `code` to the debug-exit port. Without `code`
 * the disk has no boot sector at all (no 0x55AA signature).
 */
export function bootSectorDisk(dir: string, name: string, mark?: string, code?: number): string {
  const disk = new Uint8Array(1024 * 1024);
  if (mark !== undefined && code !== undefined) {
    // mov dx, 0x3f8; mov al, mark; out dx, al; mov al, code; out 0xf4, al; hlt; jmp $-1
    disk.set([0xba, 0xf8, 0x03, 0xb0, mark.charCodeAt(0), 0xee, 0xb0, code, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd]);
    disk.set([0x55, 0xaa], 510);
  }
  const path = join(dir, name);
  writeFileSync(path, disk);
  return path;
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'nodevisor-fw-'));
}
