import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../src/guests/build.js';
import { cpioArchive } from '../../src/boot/cpio.js';
import { findTestKernel } from '../../src/images/test-kernel.js';
import { TEST_GUESTS } from './guests.js';

/** The built test kernel, or why the Linux tests cannot run (they skip unless CI requires them). */
export function testKernelOrSkip(ctx: Mocha.Context): string {
  const kernel = findTestKernel();
  if (kernel) return kernel;
  if (process.env.NODEVISOR_REQUIRE_LINUX) throw new Error('the test kernel is not built: run `npm run kernel` (NODEVISOR_REQUIRE_LINUX is set)');
  ctx.skip();
  throw new Error('unreachable');
}

/** test/guests/init.c as a static x86-64 program (cached by source hash). */
function buildInit(): Uint8Array {
  const src = join(TEST_GUESTS, 'init.c');
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const out = join(PACKAGE_ROOT, 'build', 'guests', `init-${hash}`);
  if (!existsSync(out)) {
    mkdirSync(join(out, '..'), { recursive: true });
    execFileSync('gcc', ['-static', '-nostdlib', '-O2', '-mno-popcnt', '-mno-sse', '-fno-pic', '-no-pie', '-o', `${out}.tmp`, src]);
    renameSync(`${out}.tmp`, out);
  }
  return readFileSync(out);
}

/** A gzip'd initramfs: /init (prints the CPU count, powers off) and /dev/console. */
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
