import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NodevisorError } from '../src/kvm/errors.js';
import { buildInitramfs, defaultGuestPath, parseAddition, INIT_SCRIPT_PATH, RUN_LIST_PATH } from '../src/images/initramfs.js';
import { fetchBusybox } from '../src/images/busybox.js';
import { elfInterpreter } from '../src/images/elf-info.js';
import { guestProgram } from '../src/images/guest-programs.js';
import { parseCpio } from './helpers/cpio.js';

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;

describe('guest programs (guests/linux/*.c)', () => {
  it('builds /init and nvbench as static x86-64 programs', () => {
    for (const p of ['init', 'nvbench'] as const) expect(elfInterpreter(readFileSync(guestProgram(p)))).to.equal(null);
  });

  it('nvbench runs on the host and prints metric lines in the documented protocol', () => {
    const out = execFileSync(guestProgram('nvbench'), ['compute', '0.05', '2'], { encoding: 'utf8' });
    expect(out).to.match(/^metric throughput [0-9.e+]+ Mops\/s higher$/m);
    expect(out).to.match(/^metric threads 2 threads higher$/m);
  });

  it('nvbench refuses unknown workloads and bad durations with status 2', () => {
    expect(spawnSync(guestProgram('nvbench'), ['frobnicate', '1']).status).to.equal(2);
    expect(spawnSync(guestProgram('nvbench'), ['compute', '-1']).status).to.equal(2);
  });
});

describe('nodevisor image build-initramfs (buildInitramfs)', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodevisor-initramfs-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("has nodevisor's static /init, /dev/console, /dev/null and the mount points", () => {
    const m = parseCpio(Buffer.from(buildInitramfs()));
    expect(m.get('init')!.mode & S_IFMT).to.equal(S_IFREG);
    expect(m.get('init')!.mode & 0o111).to.not.equal(0);
    expect(m.get('init')!.data.equals(readFileSync(guestProgram('init')))).to.equal(true);
    expect(m.get('dev/console')).to.include({ mode: S_IFCHR | 0o600, rdevMajor: 5, rdevMinor: 1 });
    expect(m.get('dev/null')).to.include({ rdevMajor: 1, rdevMinor: 3 });
    for (const d of ['proc', 'sys', 'tmp', 'root', 'etc/nodevisor']) expect(m.get(d)!.mode & S_IFMT, d).to.equal(S_IFDIR);
    expect(m.has('bin/sh')).to.equal(false);
  });

  it('is an uncompressed newc archive (the guest kernel unpacks it in emulated ring 0)', () => {
    expect(Buffer.from(buildInitramfs()).toString('latin1', 0, 6)).to.equal('070701');
  });

  it('--busybox adds busybox and a link to it for every applet, /bin/sh among them', () => {
    const busybox = fetchBusybox();
    const m = parseCpio(Buffer.from(buildInitramfs({ busybox })));
    expect(m.get('bin/busybox')!.data.equals(readFileSync(busybox))).to.equal(true);
    for (const applet of ['bin/sh', 'bin/ls', 'sbin/poweroff', 'bin/mount']) {
      expect(m.get(applet)!.mode & S_IFMT, applet).to.equal(S_IFLNK);
      expect(m.get(applet)!.data.toString(), applet).to.equal('/bin/busybox');
    }
    // busybox's own init must not shadow ours.
    expect(m.get('init')!.data.equals(readFileSync(guestProgram('init')))).to.equal(true);
  });

  it('--add copies files (executables to /bin, others to /root by default), directories and symlinks', () => {
    const tool = join(dir, 'tool');
    writeFileSync(tool, '#!/bin/sh\necho hi\n');
    chmodSync(tool, 0o755);
    const data = join(dir, 'data.txt');
    writeFileSync(data, 'payload');
    const tree = join(dir, 'tree');
    mkdirSync(join(tree, 'sub'), { recursive: true });
    writeFileSync(join(tree, 'sub', 'f'), 'deep');
    symlinkSync('sub/f', join(tree, 'link'));
    const m = parseCpio(Buffer.from(buildInitramfs({ busybox: fetchBusybox(), add: [{ host: tool }, { host: data }, { host: tree, guest: '/opt/tree' }, { host: data, guest: '/etc/motd' }] })));
    expect(m.get('bin/tool')!.data.toString()).to.equal('#!/bin/sh\necho hi\n');
    expect(m.get('bin/tool')!.mode & 0o777).to.equal(0o755);
    expect(m.get('root/data.txt')!.data.toString()).to.equal('payload');
    expect(m.get('etc/motd')!.data.toString()).to.equal('payload');
    expect(m.get('opt/tree/sub/f')!.data.toString()).to.equal('deep');
    expect(m.get('opt/tree/link')!.mode & S_IFMT).to.equal(S_IFLNK);
    expect(m.get('opt/tree/link')!.data.toString()).to.equal('sub/f');
  });

  it('what --add puts at an applet path replaces the applet link', () => {
    const ls = join(dir, 'ls');
    writeFileSync(ls, readFileSync(guestProgram('nvbench')));
    chmodSync(ls, 0o755);
    const m = parseCpio(Buffer.from(buildInitramfs({ busybox: fetchBusybox(), add: [{ host: ls }] })));
    expect(m.get('bin/ls')!.mode & S_IFMT).to.equal(S_IFREG);
  });

  it('--init-script and run lists go where /init looks for them', () => {
    const m = parseCpio(Buffer.from(buildInitramfs({ busybox: fetchBusybox(), initScript: { contents: '#!/bin/sh\nexit 3\n' }, runList: ['nvbench compute 1', 'true'] })));
    expect(m.get(INIT_SCRIPT_PATH)!.data.toString()).to.equal('#!/bin/sh\nexit 3\n');
    expect(m.get(INIT_SCRIPT_PATH)!.mode & 0o111).to.not.equal(0);
    expect(m.get(RUN_LIST_PATH)!.data.toString()).to.equal('nvbench compute 1\ntrue\n');
  });

  it('refuses a script whose interpreter is not in the image, naming --busybox', () => {
    expect(() => buildInitramfs({ initScript: { contents: '#!/bin/sh\nexit 0\n' } })).to.throw(NodevisorError, /script for \/bin\/sh, which the initramfs lacks: add --busybox/);
  });

  it('refuses a dynamically linked program, naming its loader', () => {
    const dynamic = join(dir, 'dyn');
    writeFileSync(dynamic, readFileSync('/bin/true'));
    chmodSync(dynamic, 0o755);
    expect(() => buildInitramfs({ add: [{ host: dynamic }] })).to.throw(NodevisorError, /bin\/dyn is dynamically linked \(it needs \/lib64\/ld-linux-x86-64\.so\.2/);
  });

  it('refuses missing host paths and special files with the path in the message', () => {
    expect(() => buildInitramfs({ add: [{ host: join(dir, 'nope') }] })).to.throw(NodevisorError, /nope does not exist/);
    expect(() => buildInitramfs({ add: [{ host: '/dev/null', guest: '/x' }] })).to.throw(NodevisorError, /only regular files, directories and symlinks/);
    expect(() => buildInitramfs({ initScript: join(dir, 'missing.sh') })).to.throw(NodevisorError, /--init-script .*missing\.sh does not exist/);
  });

  it('parses HOSTPATH[:GUESTPATH] and defaults guest paths by kind', () => {
    expect(parseAddition('a/b')).to.deep.equal({ host: 'a/b', guest: undefined });
    expect(parseAddition('a/b:/usr/bin/b')).to.deep.equal({ host: 'a/b', guest: '/usr/bin/b' });
    expect(() => parseAddition('a:relative')).to.throw(NodevisorError, /must be absolute/);
    expect(() => parseAddition(':/x')).to.throw(NodevisorError, /needs a host path/);
    expect(defaultGuestPath('/x/prog', true, false)).to.equal('/bin/prog');
    expect(defaultGuestPath('/x/notes.txt', false, false)).to.equal('/root/notes.txt');
    expect(defaultGuestPath('/x/dir/', false, true)).to.equal('/dir');
  });
});
