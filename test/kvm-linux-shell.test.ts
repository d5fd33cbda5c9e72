import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVm } from '../src/index.js';
import { buildInitramfs } from '../src/images/initramfs.js';
import type { VmResult } from '../src/vm/vm.js';
import { ConsoleWatcher, testKernelOrSkip } from './helpers/linux.js';

/**
 * A shell in the guest, typed into through `sendConsoleInput` as a user at
 * the terminal would: busybox ash on the console that /init gives it as its
 * controlling terminal, on the UART and on virtio-console; files passed
 * both ways through an ext2 file system on a virtio-blk disk.
 */
const BOOT_MS = 200000;
/** ash's prompt for root in /root (it may query the cursor position after it). */
const PROMPT = /\/root # /;

function mke2fs(image: string, from: string): void {
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-d', from, image, '8M'], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function debugfsCat(image: string, path: string): string {
  return execFileSync('debugfs', ['-R', `cat ${path}`, image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
}

describe('an interactive Linux shell on the serial console', function () {
  this.timeout(300000);
  let dir = '';
  let transcript = '';
  let result: VmResult | undefined;
  let image = '';

  before(async function () {
    const kernel = testKernelOrSkip(this);
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-shell-'));
    const content = join(dir, 'content');
    execFileSync('mkdir', ['-p', content]);
    writeFileSync(join(content, 'from-host.txt'), 'written on the host\n');
    image = join(dir, 'disk.ext2');
    mke2fs(image, content);
    const vm = createVm({ vcpus: 2, memory: '128M', kernel, initrd: buildInitramfs({ busybox: true }), disks: [{ path: image }] });
    const con = new ConsoleWatcher(vm);
    await vm.start();
    try {
      await con.waitFor(/starting a shell on the console/, BOOT_MS);
      await con.waitFor(PROMPT, 60000);
      const type = async (line: string, expect: RegExp): Promise<void> => {
        const from = con.text.length;
        vm.sendConsoleInput(Buffer.from(line));
        await con.waitFor(expect, 120000, from);
      };
      await type('echo sum=$((6 * 7)) cpus=$(nproc)\n', /sum=42 cpus=2/);
      await type('mount /dev/vda /mnt && cat /mnt/from-host.txt\n', /^written on the host/m);
      await type('echo written in the guest > /mnt/from-guest.txt && umount /mnt && echo unmounted\n', /^unmounted/m);
      // Ctrl-C reaches the foreground job through the terminal /init set up.
      // The job prints from inside its own process, so when the line shows the job already owns the terminal (ash hands it over in the child, before exec): a Ctrl-C sent earlier would reach the shell's line editor instead.
      await type("sh -c 'echo sleeping; exec sleep 1000'\n", /^sleeping/m);
      await type('\x03', PROMPT);
      await type('echo sleep-status=$?\n', /sleep-status=130/);
      vm.sendConsoleInput(Buffer.from('exit\n'));
      result = await vm.wait();
    } finally {
      transcript = con.text;
      if (!result) result = await vm.stop();
    }
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('runs commands typed on the console and shows their output', () => {
    expect(transcript).to.match(/sum=42 cpus=2/);
  });

  it('reads a file the host put on an ext2 disk', () => {
    expect(transcript).to.match(/^written on the host/m);
  });

  it('writes a file the host reads back from the disk image', () => {
    expect(debugfsCat(image, '/from-guest.txt')).to.equal('written in the guest\n');
  });

  it('delivers Ctrl-C to the foreground job (the console is the shell\'s controlling terminal)', () => {
    expect(transcript).to.match(/sleep-status=130/);
  });

  it('powers off when the shell exits: exit status 0', () => {
    expect(result!.reason.kind).to.equal('poweroff');
    expect(result!.exitStatus).to.equal(0);
  });
});

describe('an interactive Linux shell on virtio-console (hvc0)', function () {
  this.timeout(300000);
  let transcript = '';
  let result: VmResult | undefined;

  before(async function () {
    const kernel = testKernelOrSkip(this);
    const vm = createVm({ vcpus: 1, memory: '128M', kernel, initrd: buildInitramfs({ busybox: true }), console: 'virtio' });
    const con = new ConsoleWatcher(vm);
    await vm.start();
    try {
      await con.waitFor(/starting a shell on the console/, BOOT_MS);
      await con.waitFor(PROMPT, 60000);
      const from = con.text.length;
      vm.sendConsoleInput(Buffer.from('echo product=$((7 * 6)) on $(cat /sys/class/tty/console/active)\n'));
      await con.waitFor(/product=42 on \S+/, 120000, from);
      vm.sendConsoleInput(Buffer.from('exit\n'));
      result = await vm.wait();
    } finally {
      transcript = con.text;
      if (!result) result = await vm.stop();
    }
  });

  it('runs commands typed into hvc0, the console the shell was given', () => {
    expect(transcript).to.match(/product=42 on hvc0/);
  });

  it('powers off when the shell exits', () => {
    expect(result!.reason.kind).to.equal('poweroff');
  });
});

describe('a guest kernel panic (pvpanic)', function () {
  this.timeout(300000);
  let result: VmResult | undefined;

  before(async function () {
    const kernel = testKernelOrSkip(this);
    // No initramfs and no root device: the kernel panics at mount time.
    const vm = createVm({ vcpus: 1, memory: '128M', kernel });
    await vm.start();
    const timer = setTimeout(() => void vm.stop(), BOOT_MS);
    result = await vm.wait();
    clearTimeout(timer);
  });

  it('stops the VM at once with the panic status (10), not a hang', () => {
    expect(result!.reason.kind).to.equal('panic');
    expect(result!.exitStatus).to.equal(10);
  });

  it("names the kernel's panic reason", () => {
    expect(result!.message).to.match(/^the guest kernel panicked: VFS: Unable to mount root fs/);
  });
});
