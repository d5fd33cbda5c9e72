import { readFileSync } from 'node:fs';
import { findTestKernel } from '../../src/images/test-kernel.js';
import { buildInitramfs, type InitramfsOptions } from '../../src/images/initramfs.js';
import { guestProgram } from '../../src/images/guest-programs.js';
import type { Vm } from '../../src/vm/vm.js';
export { testInitramfs } from '../../src/images/initramfs.js';

/** The built test kernel, or a skip (a failure where CI sets NODEVISOR_REQUIRE_LINUX). */
export function testKernelOrSkip(ctx: Mocha.Context): string {
  const kernel = findTestKernel();
  if (kernel) return kernel;
  if (process.env.NODEVISOR_REQUIRE_LINUX) throw new Error('the test kernel is not built: run `npm run kernel` (NODEVISOR_REQUIRE_LINUX is set)');
  ctx.skip();
  throw new Error('unreachable');
}

/** An initramfs with nvbench in /bin and `options` (e.g. a run list). */
export function nvbenchInitramfs(options: InitramfsOptions = {}): Uint8Array {
  return buildInitramfs({ ...options, files: [...(options.files ?? []), { path: 'bin/nvbench', data: readFileSync(guestProgram('nvbench')) }] });
}

/** Follows a VM's console output so a test can wait for a line and then type. */
export class ConsoleWatcher {
  text = '';
  private waiters: (() => void)[] = [];

  constructor(vm: Vm) {
    vm.on('console', (c: Buffer) => {
      this.text += c.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves with the first match of `pattern` in output from `from` on (default: all of it), or rejects after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.text.slice(from).match(pattern);
      if (m) return m;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${pattern} on the console within ${timeoutMs / 1000} s; last output:\n${this.text.slice(-2000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}
