import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { NodevisorError } from '../src/kvm/errors.js';
import { debFileFor, kernelRelease, parseKernelDependency, requireDebianTools } from '../src/images/debian-apt.js';
import { BUSYBOX_APPLETS, debianInitramfs, INIT_SCRIPT, isStaticX86_64Elf } from '../src/images/debian-initramfs.js';
import { debianImagePaths, fetchDebianImage } from '../src/images/debian.js';
import { parseCpio } from './helpers/cpio.js';

/** Captured from `apt-cache depends linux-image-cloud-amd64` on Debian 12. */
const DEPENDS_OUTPUT = 'linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-56-cloud-amd64\n';

/** A minimal x86-64 ELF header with the given program header types. */
function fakeElf(types: number[]): Uint8Array {
  const phoff = 64;
  const bytes = new Uint8Array(phoff + types.length * 56 + 16);
  const v = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(16, 2, true); // ET_EXEC
  v.setUint16(18, 62, true); // EM_X86_64
  v.setBigUint64(32, BigInt(phoff), true);
  v.setUint16(54, 56, true);
  v.setUint16(56, types.length, true);
  types.forEach((t, i) => v.setUint32(phoff + i * 56, t, true));
  return bytes;
}
const STATIC_ELF = fakeElf([1, 1, 4]); // PT_LOAD, PT_LOAD, PT_NOTE
const DYNAMIC_ELF = fakeElf([6, 3, 1, 2]); // PT_PHDR, PT_INTERP, PT_LOAD, PT_DYNAMIC

describe('Debian guest image: apt output parsing', () => {
  it('finds the versioned kernel package in `apt-cache depends` output', () => {
    expect(parseKernelDependency(DEPENDS_OUTPUT)).to.equal('linux-image-6.1.0-56-cloud-amd64');
  });

  it('skips alternatives, virtual packages and non-kernel dependencies', () => {
    const text = 'linux-image-cloud-amd64\n |Depends: linux-image-6.1.0-1-cloud-amd64\n  Depends: <linux-image-virtual>\n  Depends: initramfs-tools\n  Depends: linux-image-6.1.0-2-cloud-amd64\n';
    expect(parseKernelDependency(text)).to.equal('linux-image-6.1.0-2-cloud-amd64');
  });

  it('returns undefined when apt knows no such package (empty lists)', () => {
    expect(parseKernelDependency('')).to.equal(undefined);
    expect(parseKernelDependency('linux-image-cloud-amd64\n')).to.equal(undefined);
  });

  it('derives the kernel release from the package name', () => {
    expect(kernelRelease('linux-image-6.1.0-56-cloud-amd64')).to.equal('6.1.0-56-cloud-amd64');
    expect(() => kernelRelease('linux-image-cloud-amd64')).to.throw(RangeError);
  });

  it('finds the .deb that apt-get download wrote', () => {
    const files = ['busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb', 'linux-image-6.1.0-56-cloud-amd64_6.1.192-2_amd64.deb', 'busybox_1.35_amd64.deb'];
    expect(debFileFor('busybox-static', files)).to.equal(files[0]);
    expect(debFileFor('busybox', files)).to.equal(files[2]);
    expect(debFileFor('linux-image-6.1.0-57-cloud-amd64', files)).to.equal(undefined);
  });

  it('names what to install when the Debian tools are missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() => requireDebianTools()).to.throw(NodevisorError, /apt-get, apt-cache, dpkg-deb.*apt-get install/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('Debian guest image: initramfs', () => {
  const script = readFileSync(INIT_SCRIPT);
  const members = parseCpio(gunzipSync(debianInitramfs(STATIC_ELF, script)));

  it('recognises static and dynamic x86-64 executables', () => {
    expect(isStaticX86_64Elf(STATIC_ELF)).to.equal(true);
    expect(isStaticX86_64Elf(DYNAMIC_ELF)).to.equal(false);
    expect(isStaticX86_64Elf(new TextEncoder().encode('#!/bin/sh\necho not an ELF file at all, just text padding\n'))).to.equal(false);
  });

  it('refuses a dynamically linked busybox', () => {
    expect(() => debianInitramfs(DYNAMIC_ELF, script)).to.throw(NodevisorError, /busybox-static/);
  });

  it('has /init: the script, executable', () => {
    const init = members.get('init')!;
    expect(init.mode).to.equal(0o100755);
    expect(init.data.equals(script)).to.equal(true);
  });

  it('has /bin/busybox and a symlink to it for every applet init.sh needs', () => {
    const bb = members.get('bin/busybox')!;
    expect(bb.mode).to.equal(0o100755);
    expect(bb.data.equals(Buffer.from(STATIC_ELF))).to.equal(true);
    for (const applet of BUSYBOX_APPLETS) {
      const link = members.get(`bin/${applet}`);
      expect(link, applet).not.to.equal(undefined);
      expect(link!.mode & 0o170000).to.equal(0o120000);
      expect(link!.data.toString()).to.equal('busybox');
    }
  });

  it('has /dev/console (char 5:1), /dev/null (char 1:3) and the /proc and /sys mount points', () => {
    const c = members.get('dev/console')!;
    expect(c.mode & 0o170000).to.equal(0o020000);
    expect([c.rdevMajor, c.rdevMinor]).to.deep.equal([5, 1]);
    const n = members.get('dev/null')!;
    expect(n.mode).to.equal(0o020666);
    expect([n.rdevMajor, n.rdevMinor]).to.deep.equal([1, 3]);
    for (const d of ['bin', 'dev', 'proc', 'sys']) expect(members.get(d)!.mode & 0o170000, d).to.equal(0o040000);
  });
});

describe('Debian guest image: init.sh', () => {
  const text = readFileSync(INIT_SCRIPT, 'utf8');

  it('is a shell script that parses', function () {
    expect(text.startsWith('#!/bin/sh\n')).to.equal(true);
    if (!existsSync('/bin/sh')) this.skip();
    execFileSync('/bin/sh', ['-n', INIT_SCRIPT]);
  });

  it('prints the markers the boot test matches and powers off', () => {
    expect(text).to.contain('echo "nodevisor-init: $cpus CPUs online"');
    expect(text).to.match(/echo "nodevisor-init: \$cpus busy loops of \$iterations iterations done in \$elapsed ms"/);
    expect(text.trimEnd().endsWith('poweroff -f')).to.equal(true);
  });

  it('calls only programs that the initramfs links (busybox ash builtins aside)', () => {
    for (const program of ['mount', 'nproc', 'poweroff']) {
      expect(text).to.match(new RegExp(`^\\s*[^#\\n]*\\b${program}\\b`, 'm'));
      expect(BUSYBOX_APPLETS as readonly string[]).to.include(program);
    }
    // The workers run as "busybox sh -c", which needs no applet link.
    expect(text).to.match(/^\s+busybox sh -c /m);
  });
});

describe('Debian guest image: cache', () => {
  let dir = '';
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-debian-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('uses a fetched image without apt (no downloads) and rebuilds only the initrd', () => {
    writeFileSync(join(dir, 'vmlinuz-6.1.0-56-cloud-amd64'), 'kernel');
    writeFileSync(join(dir, 'busybox-1.35.0'), STATIC_ELF);
    writeFileSync(join(dir, 'image.json'), JSON.stringify({ version: '6.1.0-56-cloud-amd64', kernel: 'vmlinuz-6.1.0-56-cloud-amd64', busybox: 'busybox-1.35.0' }));
    const stale = join(dir, 'initrd-000000000000.cpio.gz'); // from an older init.sh
    writeFileSync(stale, 'old');
    expect(debianImagePaths({ cacheDir: dir })).to.equal(undefined); // no initrd for this init.sh yet
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent'; // apt would fail: proves it is not called
    try {
      const image = fetchDebianImage({ cacheDir: dir });
      expect(image.version).to.equal('6.1.0-56-cloud-amd64');
      expect(image.kernel).to.equal(join(dir, 'vmlinuz-6.1.0-56-cloud-amd64'));
      expect(parseCpio(gunzipSync(readFileSync(image.initrd))).get('init')!.data.equals(readFileSync(INIT_SCRIPT))).to.equal(true);
      expect(debianImagePaths({ cacheDir: dir })).to.deep.equal(image);
      expect(existsSync(stale)).to.equal(false);
    } finally {
      process.env.PATH = path;
    }
  });

  it('reports missing Debian tools before downloading anything', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() => fetchDebianImage({ cacheDir: dir })).to.throw(NodevisorError, /apt-get install/);
    } finally {
      process.env.PATH = path;
    }
    expect(debianImagePaths({ cacheDir: dir })).to.equal(undefined);
  });
});
