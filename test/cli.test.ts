import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blkTestGuest, testImage } from './helpers/guests.js';
import { cli, cliUnder } from './helpers/cli.js';
import { ioUringAvailability } from '../src/kvm/io-uring.js';

describe('nodevisor CLI', function () {
  this.timeout(90000);

  it('boots the demo guest with no arguments and exits 0 when it powers off', async () => {
    const r = await cli('run');
    expect(r.status).to.equal(0);
    expect(r.stdout).to.contain('nodevisor demo: vCPU 0 (APIC ID 0) of 1 online');
    expect(r.stderr).to.equal('nodevisor: the guest powered off\n');
  });

  it('boots the demo guest on 4 vCPUs', async () => {
    const r = await cli('run', '--smp', '4', '--memory', '128M');
    expect(r.status).to.equal(0);
    for (let i = 0; i < 4; i++) expect(r.stdout).to.contain(`vCPU ${i} (APIC ID ${i}) of 4 online`);
  });

  it('boots the demo guest on the vCPUs of --topology, each with the APIC ID the topology gives it', async () => {
    const r = await cli('run', '--topology', 'sockets=2,cores=3', '--memory', '128M');
    expect(r.status).to.equal(0);
    [0, 1, 2, 4, 5, 6].forEach((id, i) => expect(r.stdout).to.contain(`vCPU ${i} (APIC ID ${id}) of 6 online`));
  });

  it('prints only guest output with --quiet', async () => {
    const r = await cli('run', '--quiet');
    expect(r.status).to.equal(0);
    expect(r.stderr).to.equal('');
    expect(r.stdout).to.contain('powering off');
  });

  it('maps the debug-exit port to (value << 1) | 1', async () => {
    const r = await cli('run', '--image', testImage('mode-long').source as string);
    expect(r.status).to.equal((0x34 << 1) | 1);
  });

  it('prints --version and --help', async () => {
    expect((await cli('--version')).stdout.trim()).to.match(/^\d+\.\d+\.\d+$/);
    const help = await cli('--help');
    expect(help.status).to.equal(0);
    for (const flag of ['--smp', '--topology', '--memory', '--kernel', '--initrd', '--cmdline', '--irqchip', '--disk', '--rng', '--console', '--quiet']) expect(help.stdout).to.contain(flag);
  });

  it('answers --help for every subcommand', async () => {
    for (const args of [['run', '--help'], ['bench', '--help'], ['image', '--help'], ['image', 'build-initramfs', '--help']]) {
      const r = await cli(...args);
      expect(r.status, args.join(' ')).to.equal(0);
      expect(r.stdout, args.join(' ')).to.match(/Usage|usage/);
    }
    expect((await cli('bench', '--help')).stdout).to.contain('--ab-kernel');
    expect((await cli('image', '--help')).stdout).to.contain('build-initramfs OUT');
  });

  it('builds an initramfs and refuses one that could not run', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nodevisor-cli-initramfs-')), 'i.cpio');
    try {
      const ok = await cli('image', 'build-initramfs', out);
      expect(ok.status, ok.stderr).to.equal(0);
      expect(readFileSync(out).toString('latin1', 0, 6)).to.equal('070701');
      const noShell = await cli('image', 'build-initramfs', out, '--init-script', fileURLToPath(new URL('../../guests/linux/init.sh', import.meta.url)));
      expect(noShell.status).to.equal(64);
      expect(noShell.stderr).to.match(/script for \/bin\/sh, which the initramfs lacks: add --busybox/);
      const missing = await cli('image', 'build-initramfs');
      expect(missing.status).to.equal(64);
      expect(missing.stderr).to.match(/needs one output file/);
    } finally {
      rmSync(join(out, '..'), { recursive: true, force: true });
    }
  });

  it('refuses linux-suite options for other suites and --baseline with an A/B run', async () => {
    const r = await cli('bench', 'micro', '--seconds', '1');
    expect(r.status).to.equal(64);
    expect(r.stderr).to.match(/option of the linux suite/);
  });

  const bad: Array<[string[], RegExp]> = [
    [['run', '--kernel', '/nonexistent'], /^nodevisor: kernel \/nonexistent does not exist$/],
    [['run', '--kernel', '/bin/true'], /^nodevisor: \/bin\/true is a user-space program \(it names an ELF interpreter\), not a Linux kernel$/],
    [['run', '--kernel', '/etc/hostname'], /^nodevisor: \/etc\/hostname is only \d+ bytes: too short to be a bzImage/],
    [['run', '--kernel', '/tmp'], /^nodevisor: kernel \/tmp is a directory$/],
    [['run', '--initrd', '/nonexistent.cpio'], /^nodevisor: --initrd and --cmdline need --kernel$/],
    [['run', '--image', '/nonexistent.bin'], /^nodevisor: guest image \/nonexistent.bin does not exist$/],
    [['run', '--smp', '0'], /^nodevisor: --smp must be a decimal integer >= 1 \(got "0"\)$/],
    [['run', '--smp', 'many'], /^nodevisor: --smp must be a decimal integer >= 1/],
    [['run', '--smp', '100000'], /^nodevisor: 100000 vCPUs requested but this host's KVM allows at most \d+$/],
    [['run', '--smp', '4', '--topology', 'sockets=2,cores=3,threads=1'], /^nodevisor: topology sockets=2,cores=3,threads=1 has 6 vCPUs \(2 x 3 x 1\) but 4 were asked for \(--smp\/vcpus\): sockets x cores x threads must equal the vCPU count/],
    [['run', '--smp', '6', '--topology', 'sockets=4'], /^nodevisor: 6 vCPUs cannot be split into 4 socket\(s\)/],
    [['run', '--topology', 'sockets=2,kernels=3'], /^nodevisor: unknown topology level "kernels" in "sockets=2,kernels=3": the levels are sockets, cores, threads$/],
    [['run', '--topology', 'cores=0'], /^nodevisor: cores must be a positive integer \(got "0" in "cores=0"\)$/],
    [['run', '--memory', '12Q'], /^nodevisor: cannot parse size "12Q"/],
    [['run', '--memory', '1M'], /^nodevisor: guest memory must be between 4M and 1024G \(got 1M\)$/],
    [['run', '--irqchip', 'bogus'], /^nodevisor: --irqchip must be one of user, split, kernel \(got "bogus"\)$/],
    [['run', '--halt-poll-ns', '-1'], /^nodevisor: --halt-poll-ns must be a decimal integer from 0 to 10000000 \(got "-1"\)$/],
    [['run', '--io-poll-ns', '99999999'], /^nodevisor: --io-poll-ns must be a decimal integer from 0 to 10000000 \(got "99999999"\)$/],
    [['run', '--irqchip', 'kernel', '--halt-poll-ns', '1000'], /^nodevisor: --halt-poll-ns applies to --irqchip user only \(with kernel, KVM's LAPIC handles halts and EOIs itself\)$/],
    [['run', '--irqchip', 'split', '--no-pv-eoi'], /^nodevisor: --no-pv-eoi applies to --irqchip user only/],
    [['run', '--console', 'hvc'], /^nodevisor: --console must be one of serial, virtio \(got "hvc"\)$/],
    [['run', '--entry-mode', 'vm86'], /^nodevisor: --entry-mode must be real, protected or long/],
    [['run', '--bogus'], /^nodevisor: Unknown option '--bogus'/],
    [['run', 'extra'], /^nodevisor: unexpected argument "extra"/],
    [['frobnicate'], /^nodevisor: unknown command "frobnicate"/],
    // A negative number reaches each subcommand's own range check, not Node's "ambiguous argument" hint.
    [['bench', 'linux', '--halt-poll-ns', '-1'], /^nodevisor bench: --halt-poll-ns must be a whole number of ns from 0 to 10000000 \(got "-1"\)$/],
    [['bench', '--repetitions', '-2'], /^nodevisor bench: --repetitions must be a positive integer \(got "-2"\)$/],
    [['top', '/nonexistent.sock', '--interval', '-1'], /^nodevisor: --interval must be a number of seconds from 0.05 to 3600 \(got "-1"\)$/],
  ];
  for (const [args, message] of bad) {
    it(`rejects \`${args.join(' ')}\` with one clear line and status 64`, async () => {
      const r = await cli(...args);
      expect(r.status).to.equal(64);
      expect(r.stdout).to.equal('');
      expect(r.stderr.trimEnd().split('\n')).to.have.length(1);
      expect(r.stderr.trimEnd()).to.match(message);
    });
  }
});

describe('nodevisor CLI with a malformed kernel image', function () {
  this.timeout(30000);
  it('names what it found instead of a bzImage', async () => {
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const path = join(mkdtempSync(join(tmpdir(), 'nv-cli-')), 'junk.bin');
    writeFileSync(path, Buffer.alloc(8192, 0x5a));
    const r = await cli('run', '--kernel', path);
    expect(r.status).to.equal(64);
    expect(r.stderr.trimEnd()).to.equal(`nodevisor: ${path} is not a Linux bzImage: no "HdrS" signature at offset 0x202 (found 5a 5a 5a 5a)`);
  });
});

describe('nodevisor CLI: how disk requests reach the image (aio)', function () {
  this.timeout(120000);
  const dir = mkdtempSync(join(tmpdir(), 'nodevisor-cli-aio-'));
  const deny = join(dir, 'deny-io-uring');
  const image = join(dir, 'mq.img');
  // The multi-queue guest writes 2 x 64 sectors from one vCPU, reads them back and checks them: debug-exit 0x10 when all is well.
  const guest = (): string => blkTestGuest('virtio-blk-mq', { QD: 8, PER_CPU: 64, SEED: 0x5eed, SHARED: 0, INTX: 0 }).source as string;
  const PASSED = (0x10 << 1) | 1;
  before(() => {
    execFileSync('gcc', ['-O2', '-o', deny, fileURLToPath(new URL('../../test/helpers/deny-io-uring.c', import.meta.url))]);
  });
  beforeEach(() => writeFileSync(image, Buffer.alloc(135 * 512)));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('documents aio in run --help and refuses an unknown mode', async () => {
    expect((await cli('run', '--help')).stdout).to.match(/--disk PATH\[,readonly\]\[,aio=MODE\][\s\S]*aio=io_uring \(the\s+default where the kernel allows it\) or aio=sync/);
    const r = await cli('run', '--disk', `${image},aio=posix`);
    expect(r.status).to.equal(64);
    expect(r.stderr).to.contain('aio must be io_uring or sync (got "posix")');
  });

  it('says with --verbose that the disk goes through io_uring by default, or synchronously with aio=sync', async function () {
    if (!ioUringAvailability().available) this.skip();
    const byDefault = await cli('run', '--verbose', '--image', guest(), '--disk', image);
    expect(byDefault.status, byDefault.stderr).to.equal(PASSED);
    expect(byDefault.stderr).to.match(/virtio-blk .*mq\.img: requests through io_uring, \d+ I\/O threads?/);
    const sync = await cli('run', '--verbose', '--image', guest(), '--disk', `${image},aio=sync`);
    expect(sync.status, sync.stderr).to.equal(PASSED);
    expect(sync.stderr).to.match(/virtio-blk .*mq\.img: synchronous requests \(aio=sync\)/);
  });

  for (const errno of ['EPERM', 'ENOSYS']) {
    it(`falls back to synchronous requests, and says why, where io_uring_setup fails with ${errno}; refuses an explicit aio=io_uring there`, async () => {
      const fallback = await cliUnder([deny, errno], 'run', '--verbose', '--image', guest(), '--disk', image);
      expect(fallback.status, fallback.stderr).to.equal(PASSED);
      const why = errno === 'EPERM' ? 'io_uring_setup was refused (EPERM: sysctl kernel.io_uring_disabled, or a seccomp filter' : 'the kernel has no io_uring (io_uring_setup: ENOSYS)';
      expect(fallback.stderr).to.contain(`mq.img: synchronous requests (${why}`);
      const forced = await cliUnder([deny, errno], 'run', '--image', guest(), '--disk', `${image},aio=io_uring`);
      expect(forced.status).to.equal(64);
      expect(forced.stderr).to.contain(`mq.img asks for aio=io_uring, but ${why}`);
    });
  }
});
