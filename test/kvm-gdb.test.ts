import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { kitImage } from './helpers/guests.js';
import { BackgroundRun } from './helpers/cli-run.js';
import { testKernelOrSkip } from './helpers/linux.js';
import { buildInitramfs } from '../src/images/initramfs.js';
import type { IrqchipMode } from '../src/vcpu/cpuid.js';

/**
 * Debian's gdb (CI installs it) against `nodevisor run --gdb ... --gdb-wait`:
 * our own guest (symbols from the .elf the guest build keeps) and the Linux
 * test kernel (its vmlinux). gdb runs a batch script; the test reads its
 * output and the VM's exit status.
 */
function gdb(elf: string, port: string, commands: string[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nodevisor-gdb-'));
  const script = join(dir, 'commands.gdb');
  writeFileSync(script, ['set pagination off', 'set confirm off', `target remote ${port}`, ...commands].join('\n') + '\n');
  return new Promise((resolve) => {
    execFile('gdb', ['-batch', '-nx', '-x', script, elf], { timeout: 180000 }, (_err, stdout, stderr) => {
      rmSync(dir, { recursive: true, force: true });
      resolve(stdout + stderr);
    });
  });
}

async function startWithGdb(args: string[]): Promise<{ run: BackgroundRun; port: string }> {
  const run = new BackgroundRun([...args, '--gdb', 'tcp:127.0.0.1:0', '--gdb-wait']);
  await run.until('the gdb stub', () => /listening on (127\.0\.0\.1:\d+)/.test(run.stderr));
  return { run, port: /listening on (127\.0\.0\.1:\d+)/.exec(run.stderr)![1]! };
}

const guest = kitImage('gdb-target');
const elf = (guest.source as string).replace(/\.bin$/, '.elf');

for (const irqchip of ['user', 'kernel'] as IrqchipMode[]) {
  describe(`gdb stub: our own guest on 2 vCPUs (irqchip "${irqchip}")`, function () {
    this.timeout(240000);
    let out = '';
    let status = -1;
    // The user run uses software breakpoints (int3 in guest RAM); the kernel run hardware ones (debug registers).
    const brk = irqchip === 'user' ? 'break' : 'hbreak';

    before(async () => {
      const { run, port } = await startWithGdb(['--smp', '2', '--irqchip', irqchip, '--image', guest.source as string]);
      out = await gdb(elf, port, [
        'info threads',
        `${brk} gdb_marker`,
        'continue',
        'printf "rdi=%d\\n", $rdi',
        'printf "at-marker=%d\\n", $pc == (long)&gdb_marker',
        'x/gx &gdb_counter',
        'stepi',
        'printf "stepped=%d\\n", $pc > (long)&gdb_marker && $pc < (long)&gdb_marker + 16',
        'printf "cs=%#x\\n", $cs',
        'delete',
        'continue',
      ]);
      status = await run.exited;
    });

    it('shows each vCPU as a thread, held at the entry point', () => {
      expect(out).to.match(/\* 1 +Thread 1 \(vCPU 0 \(paused\)\) 0x0*100000 in _start/);
      expect(out).to.match(/ {2}2 +Thread 2 \(vCPU 1 \(paused\)\)/);
    });

    it('stops at a breakpoint on a symbol, with the argument in RDI', () => {
      expect(out).to.match(/Thread 1 hit (Hardware assisted )?Breakpoint 1, 0x[0-9a-f]+ in gdb_marker/);
      expect(out).to.contain('rdi=1');
      expect(out).to.contain('at-marker=1');
    });

    it('reads guest memory by virtual address', () => {
      expect(out).to.match(/<gdb_counter>:\s+0x0000000000000000/);
    });

    it('single-steps one instruction and reads segment registers', () => {
      expect(out).to.contain('stepped=1');
      expect(out).to.contain('cs=0x8');
    });

    it('lets the guest finish once the breakpoint is gone: gdb sees it exit with its status', () => {
      expect(out).to.match(/\[Inferior 1 \(Remote target\) exited with code 0103\]/);
      expect(status).to.equal((0x21 << 1) | 1);
    });
  });
}

describe('gdb stub: the Linux test kernel (irqchip "user")', function () {
  this.timeout(300000);
  let out = '';
  let run: BackgroundRun;
  let status = -1;

  before(async function () {
    const kernel = testKernelOrSkip(this);
    const dir = mkdtempSync(join(tmpdir(), 'nodevisor-gdb-linux-'));
    const initrd = join(dir, 'init.cpio');
    // nodevisor's /init alone: it finds nothing to run and powers the machine off.
    writeFileSync(initrd, buildInitramfs({}));
    const started = await startWithGdb(['--memory', '128M', '--kernel', kernel, '--initrd', initrd]);
    run = started.run;
    out = await gdb(join(dirname(kernel), 'vmlinux'), started.port, [
      'break start_kernel',
      'continue',
      'printf "at-start-kernel=%d\\n", $pc == (long)&start_kernel',
      'x/s (char *)&linux_banner',
      'stepi',
      'printf "stepped=%d\\n", $pc != (long)&start_kernel',
      'break do_one_initcall',
      'continue',
      'printf "at-initcall=%d\\n", $pc == (long)&do_one_initcall',
      'delete',
      'detach',
    ]);
    status = await run.exited;
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops at start_kernel (placed before the kernel maps itself) and reads the kernel banner', () => {
    expect(out).to.match(/Breakpoint 1, 0x[0-9a-f]+ in start_kernel/);
    expect(out).to.contain('at-start-kernel=1');
    expect(out).to.match(/<linux_banner>:\s+"Linux version 6\.12/);
  });

  it('single-steps in the kernel and stops again at a later function (an int3 in kernel text)', () => {
    expect(out).to.contain('stepped=1');
    expect(out).to.match(/Breakpoint 2, 0x[0-9a-f]+ in do_one_initcall/);
    expect(out).to.contain('at-initcall=1');
  });

  it('detaches and the kernel boots on to power-off', () => {
    expect(out).to.contain('[Inferior 1 (Remote target) detached]');
    expect(run.stdout).to.contain('nodevisor-init: exit status 0');
    expect(status).to.equal(0);
  });
});
