import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/guests/build.js';
import { TEST_GUESTS } from './guests.js';

/** Builds test/guests/<name>.S as a 32-bit ELF linked at 1 MiB (cached by its source), the form multiboot kernels take. */
export function multibootKernel(name: string): string {
  const src = join(TEST_GUESTS, `${name}.S`);
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const outDir = join(PACKAGE_ROOT, 'build', 'guests');
  const out = join(outDir, `${name}-${hash}.elf`);
  if (existsSync(out)) return out;
  mkdirSync(outDir, { recursive: true });
  const obj = `${out}.${process.pid}.o`;
  execFileSync('gcc', ['-m32', '-c', src, '-o', obj]);
  execFileSync('ld', ['-m', 'elf_i386', '-Ttext=0x100000', '-z', 'max-page-size=0x1000', '--build-id=none', '-e', '_start', '-o', `${out}.${process.pid}`, obj]);
  renameSync(`${out}.${process.pid}`, out);
  return out;
}
