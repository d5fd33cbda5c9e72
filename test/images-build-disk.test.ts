import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildDisk, syslinuxConfig, PARTITION_OFFSET } from '../src/images/build-disk.js';
import { NodevisorError } from '../src/kvm/errors.js';
import { scratchDir } from './helpers/firmware.js';

const haveTools = ['/usr/bin/syslinux', '/usr/bin/mcopy', '/usr/sbin/mkfs.fat', '/usr/sbin/sfdisk'].every(existsSync);

describe('image build-disk: a disk a BIOS boots, built without root', function () {
  this.timeout(60_000);
  let dir = '';
  before(function () {
    if (!haveTools && !process.env.CI) this.skip();
    dir = scratchDir();
  });
  after(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('writes an MBR with boot code and one bootable FAT16 partition from 1 MiB holding SYSLINUX, the kernel, the initrd and its configuration', () => {
    const kernel = join(dir, 'k');
    const initrd = join(dir, 'i');
    writeFileSync(kernel, Buffer.alloc(300_000, 1));
    writeFileSync(initrd, Buffer.alloc(100_000, 2));
    const out = join(dir, 'disk.img');
    const size = buildDisk(out, { kernel, initrd, cmdline: 'console=ttyS0 quiet' });
    const img = readFileSync(out);
    expect(img.length).to.equal(size);
    expect(size).to.equal(16 * 1024 * 1024);
    expect([img[510], img[511]]).to.deep.equal([0x55, 0xaa]);
    expect(img.subarray(0, 440).some((b) => b !== 0)).to.equal(true);
    const entry = img.subarray(0x1be, 0x1ce);
    expect(entry[0]).to.equal(0x80);
    expect(entry[4]).to.equal(0x0e);
    expect(entry.readUInt32LE(8)).to.equal(PARTITION_OFFSET / 512);
    const listing = execFileSync('mdir', ['-a', '-b', '-i', `${out}@@${PARTITION_OFFSET}`, '::'], { encoding: 'utf8' });
    for (const f of ['ldlinux.sys', 'ldlinux.c32', 'vmlinuz', 'initrd', 'syslinux.cfg']) expect(listing.toLowerCase()).to.contain(`::/${f}`);
    const cfg = execFileSync('mtype', ['-i', `${out}@@${PARTITION_OFFSET}`, '::syslinux.cfg'], { encoding: 'utf8' });
    expect(cfg).to.equal(syslinuxConfig({ cmdline: 'console=ttyS0 quiet', initrd: true, timeout: 10 }));
    expect(readFileSync(out).subarray(PARTITION_OFFSET + 510, PARTITION_OFFSET + 512)).to.deep.equal(Buffer.from([0x55, 0xaa]));
  });

  it('configures a "boot:" prompt that boots the one entry after the timeout', () => {
    const cfg = syslinuxConfig({ cmdline: 'console=ttyS0', initrd: false, timeout: 5 });
    expect(cfg).to.match(/^DEFAULT linux\nPROMPT 1\nTIMEOUT 5\n/);
    expect(cfg).to.contain('  KERNEL vmlinuz\n  APPEND console=ttyS0\n');
    expect(cfg).to.not.contain('INITRD');
  });

  it('refuses a missing kernel or a size too small for the files, in one line, and leaves nothing behind', () => {
    const out = join(dir, 'bad.img');
    expect(() => buildDisk(out, { kernel: join(dir, 'nope') })).to.throw(NodevisorError, /kernel .*nope does not exist/);
    const kernel = join(dir, 'k2');
    writeFileSync(kernel, Buffer.alloc(1000));
    expect(() => buildDisk(out, { kernel, size: 2 * 1024 * 1024 })).to.throw(/whole number of MiB from 6 MiB/);
    expect(existsSync(out)).to.equal(false);
  });
});
