import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createVm } from '../src/index.js';
import { buildInitramfs } from '../src/images/initramfs.js';
import type { IrqchipMode } from '../src/vcpu/cpuid.js';
import { ConsoleWatcher, testKernelOrSkip } from './helpers/linux.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const PROMPT = /\/root # /;

/** `nodevisor run --restore DIR` in a new process, typing `input` once it runs; resolves with its output and exit status. */
function restoreInNewProcess(dir: string, input: string, until: RegExp, timeoutMs: number): Promise<{ output: string; status: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'run', '--restore', dir], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let typed = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const onData = (c: Buffer): void => {
      output += c.toString('latin1');
      if (until.test(output) && !typed) {
        typed = true;
        child.stdin.write('exit\n');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.stdin.write(input);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ output, status });
    });
  });
}

for (const irqchip of ['user', 'split', 'kernel'] as IrqchipMode[]) {
  describe(`a Linux shell snapshotted and restored in a new process (irqchip "${irqchip}", 2 vCPUs)`, function () {
    this.timeout(400000);
    let dir = '';
    let earlier = '';
    let restored = { output: '', status: null as number | null };

    before(async function () {
      const kernel = testKernelOrSkip(this);
      dir = mkdtempSync(join(tmpdir(), 'nodevisor-snapshot-linux-'));
      const vm = createVm({ vcpus: 2, memory: '128M', irqchip, kernel, initrd: buildInitramfs({ busybox: true }) });
      const con = new ConsoleWatcher(vm);
      await vm.start();
      try {
        await con.waitFor(PROMPT, 240000);
        const from = con.text.length;
        vm.sendConsoleInput(Buffer.from('echo before-$((1 + 1)) > /tmp/mark; cat /tmp/mark\n'));
        await con.waitFor(/^before-2/m, 120000, from);
        await con.waitFor(PROMPT, 60000, from);
        await vm.snapshot(dir, { resume: false });
        earlier = con.text;
      } finally {
        await vm.stop();
      }
      restored = await restoreInNewProcess(dir, 'echo after-$((20 + 22)) cpus=$(nproc) mark=$(cat /tmp/mark)\n', /after-42 cpus=\d+ mark=\S+/, 240000);
    });

    after(() => rmSync(dir, { recursive: true, force: true }));

    it('runs a command typed into the restored shell, with the guest state from before the snapshot', () => {
      expect(earlier).to.match(/before-2/);
      expect(restored.output).to.match(/after-42 cpus=2 mark=before-2/);
    });

    it('powers off when the restored shell exits: status 0', () => {
      expect(restored.output).to.match(/the guest powered off/);
      expect(restored.status).to.equal(0);
    });
  });
}
