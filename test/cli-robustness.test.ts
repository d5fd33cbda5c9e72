import { expect } from 'chai';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { kitImage, testImage } from './helpers/guests.js';
import { fakeBzImage } from './helpers/boot-image.js';

/**
 * The CLI as an adversarial user drives it: output that stalls or cannot
 * be written, inputs that are not regular files, signals during a large
 * start, odd numbers, disks that fail. Every case must end with a clear
 * line and a defined status, never a hang.
 */
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

interface Outcome {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI with stdin closed (or a pipe); stdout goes to `stdout` (a pipe by default), stderr to a pipe. */
function start(args: string[], stdout: 'pipe' | number = 'pipe', stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { stdio: [stdin, stdout, 'pipe'] });
}

/** Waits for `child` to exit (killing it after `deadlineMs`, which then fails the caller's expectations), with what it printed. */
function finished(child: ChildProcess, deadlineMs = 90000): Promise<Outcome> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const deadline = setTimeout(() => child.kill('SIGKILL'), deadlineMs);
  return new Promise((resolve) => {
    child.on('close', (status) => {
      clearTimeout(deadline);
      resolve({ status, stdout, stderr });
    });
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function expectOneLine(r: Outcome, status: number, message: RegExp | string): void {
  expect(r.status, r.stderr).to.equal(status);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).to.have.length(1);
  if (typeof message === 'string') expect(lines[0]).to.equal(message);
  else expect(lines[0]).to.match(message);
}

describe('nodevisor CLI under adverse conditions', function () {
  this.timeout(180000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-cli-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  describe('console output', () => {
    it('holds a flooding guest back while the stdout pipe is not read (RSS stays flat), then ends the VM with one clear line when the reader closes it', async () => {
      const child = start(['run', '--image', kitImage('uart-flood').source as string]);
      const done = finished(child);
      child.stdout!.pause();
      await sleep(3000); // the pipe and the UART ring fill up; the guest waits
      const first = rssMiB(child.pid!);
      await sleep(4000);
      const second = rssMiB(child.pid!);
      expect(second - first, `RSS ${first.toFixed(0)} -> ${second.toFixed(0)} MiB while the reader stalled`).to.be.below(16);
      child.stdout!.destroy();
      const r = await done;
      expect(r.status, r.stderr).to.equal(8);
      expect(r.stderr).to.equal('nodevisor: console output failed: write EPIPE (its reader went away); stopping the VM\nnodevisor: the VM was stopped by the host\n');
    });

    it('ends the VM with one clear line when stdout is a full device (/dev/full)', async () => {
      const full = openSync('/dev/full', 'w');
      try {
        const r = await finished(start(['run', '--image', kitImage('uart-flood').source as string], full));
        expect(r.status, r.stderr).to.equal(8);
        expect(r.stderr).to.match(/^nodevisor: console output failed: ENOSPC: no space left on device, write; stopping the VM\n/);
      } finally {
        closeSync(full);
      }
    });

    it('prints no warning with 8 vCPUs writing into a pipe that closes after one line (`| head -1`)', async () => {
      const child = start(['run', '--smp', '8']);
      const done = finished(child);
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      child.stdout!.destroy();
      const r = await done;
      expect(r.stderr).to.not.match(/Warning/);
      expect([0, 8], r.stderr).to.include(r.status); // the demo may power off before it notices
    });
  });

  describe('input files', () => {
    it('refuses devices and FIFOs as kernel, initrd, image or disk at once, with status 64', async () => {
      const fifo = join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const kernel = join(dir, 'bzImage');
      writeFileSync(kernel, fakeBzImage());
      const cases: Array<[string[], string]> = [
        [['--kernel', '/dev/zero'], 'kernel /dev/zero is a character device, not a regular file'],
        [['--kernel', kernel, '--initrd', '/dev/zero'], 'initrd /dev/zero is a character device, not a regular file'],
        [['--image', '/dev/zero'], 'guest image /dev/zero is a character device, not a regular file'],
        [['--kernel', fifo], `kernel ${fifo} is a FIFO, not a regular file`],
        [['--image', fifo], `guest image ${fifo} is a FIFO, not a regular file`],
        [['--disk', `${fifo},readonly`], `disk image ${fifo} is a FIFO, not a regular file`],
        [['--disk', fifo], `disk image ${fifo} is a FIFO, not a regular file`],
        [['--disk', '/dev/zero'], 'disk image /dev/zero is a character device, not a regular file'],
      ];
      for (const [args, message] of cases) expectOneLine(await finished(start(['run', ...args])), 64, `nodevisor: ${message}`);
    });

    it('says that the file size limit is what keeps it from creating guest RAM (a memfd is a file too)', async () => {
      const child = spawn('bash', ['-c', 'ulimit -f 64 && exec "$0" "$@"', process.execPath, CLI, 'run'], { stdio: ['ignore', 'pipe', 'pipe'] });
      expectOneLine(await finished(child), 64, 'nodevisor: cannot create 256M of guest RAM (ftruncate: File too large): the file size limit (ulimit -f) is smaller than that');
    });

    it('says why a bzImage cannot boot instead of starting a guest that fails silently: a zeroed payload, a corrupt gzip one, a setup_sects that does not fit', async () => {
      const zeroed = join(dir, 'zeroed');
      writeFileSync(zeroed, fakeBzImage({ payload: new Uint8Array(64) }));
      const corrupt = join(dir, 'corrupt');
      writeFileSync(corrupt, fakeBzImage({ payload: Uint8Array.from([0x1f, 0x8b, 0x08, 0x00, ...new Array<number>(60).fill(0x55)]) }));
      const sects = join(dir, 'sects');
      const bz = fakeBzImage({ setupSects: 8, payload: Uint8Array.from([0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8]) });
      bz[0x1f1] = 0;
      writeFileSync(sects, bz);
      expectOneLine(await finished(start(['run', '--kernel', zeroed])), 64, /^nodevisor: .*zeroed has no compressed kernel where its header puts it \(file offset 0xda0, bytes 00 00 00 00 00 00 00 00\)/);
      expectOneLine(await finished(start(['run', '--kernel', corrupt])), 64, /^nodevisor: .*corrupt has a corrupt gzip kernel payload: it does not unpack \(.+\)$/);
      expectOneLine(await finished(start(['run', '--kernel', sects])), 64, /^nodevisor: .*sects has no compressed kernel where its header puts it .*setup_sects \(4 sectors of setup code\) is wrong$/);
    });

    it('refuses a kernel file larger than the guest RAM could hold', async () => {
      const big = join(dir, 'big');
      writeFileSync(big, Buffer.alloc(5 * 1024 * 1024));
      expectOneLine(await finished(start(['run', '--memory', '4M', '--kernel', big])), 64, `nodevisor: kernel ${big} is 5242880 bytes, more than the guest's 4M of RAM can hold`);
    });
  });

  describe('signals', () => {
    it('stops a 64-vCPU start at SIGTERM without waiting for every vCPU thread, and exits 130', async () => {
      const child = start(['run', '--smp', '64', '--image', testImage('spin-forever').source as string]);
      const done = finished(child);
      // Workers being spawned: the start is under way (the signal handlers are installed before it).
      for (let i = 0; i < 600 && readdirSync(`/proc/${child.pid}/task`).length < 24; i++) await sleep(10);
      child.kill('SIGTERM');
      const r = await done;
      expectOneLine(r, 130, 'nodevisor: the VM was stopped while it was starting');
    });
  });

  describe('numbers', () => {
    for (const text of ['0x2', '1e2', ' 2', '2.0', '-2', '+2']) {
      it(`takes only decimal integers for --smp: refuses "${text}" in one line`, async () => {
        expectOneLine(await finished(start(['run', '--smp', text])), 64, `nodevisor: --smp must be a decimal integer >= 1 (got "${text}")`);
      });
    }
  });

  describe('disks', () => {
    it('says what is wrong with the same image given read-write and read-only', async () => {
      const img = join(dir, 'twice.img');
      writeFileSync(img, Buffer.alloc(4096));
      expectOneLine(
        await finished(start(['run', '--disk', img, '--disk', `${img},readonly`])),
        64,
        `nodevisor: disk image ${img} is the same file as ${img} and would be written through one disk while the other reads it (${img} is read-write): give it once, or add ",readonly" to both`,
      );
    });

    it('logs once that the image file refuses writes (here a file size limit, as a full file system would), while the guest gets I/O errors', async () => {
      const img = join(dir, 'limited.img');
      writeFileSync(img, Buffer.alloc(1024 * 1024));
      const image = kitImage('virtio-hostile', { defines: { SCENARIO: 'FILE_ERRORS', RAM_END: 64 * 1024 * 1024 } });
      const child = start(['run', '--memory', '64M', '--image', image.source as string, '--disk', img], 'pipe', 'pipe');
      const done = finished(child);
      const ready = await new Promise<boolean>((resolve) => {
        let out = ''; // the UART hands output on in whatever pieces it has
        child.stdout!.on('data', (c: Buffer) => (out += c.toString()).includes('ready') && resolve(true));
        child.on('close', () => resolve(false));
      });
      if (!ready) expect.fail(`the guest never got ready: ${(await done).stderr}`);
      // 64 KiB from now on (guest RAM, also a file, exists by now): sector 0 can be written, sectors 256, 512 and 768 cannot (EFBIG).
      execFileSync('prlimit', [`--pid=${child.pid}`, '--fsize=65536']);
      child.stdin!.end('x');
      const r = await done;
      expect(r.status, r.stderr).to.equal((0x10 << 1) | 1);
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines.filter((l) => /image file/.test(l))).to.deep.equal([`nodevisor: virtio-blk ${img}: a write at sector 256 failed on the image file (EFBIG: file too large, write); the guest gets I/O errors (reported once)`]);
    });
  });
});
