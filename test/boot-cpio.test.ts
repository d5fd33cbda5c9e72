import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { cpioArchive, normalizeCpioPath, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFREG, type CpioEntry } from '../src/boot/cpio.js';

interface ReadMember {
  offset: number;
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  filesize: number;
  devmajor: number;
  devminor: number;
  rdevmajor: number;
  rdevminor: number;
  namesize: number;
  check: number;
  name: string;
  data: Uint8Array;
}

/** A strict newc reader: checks the magic, hex fields and both 4-byte paddings (which must be zero). */
function readCpio(archive: Uint8Array): ReadMember[] {
  const out: ReadMember[] = [];
  let at = 0;
  const text = (from: number, n: number): string => String.fromCharCode(...archive.subarray(from, from + n));
  for (;;) {
    if (at % 4 !== 0) throw new Error(`member at ${at} is not 4-byte aligned`);
    if (text(at, 6) !== '070701') throw new Error(`bad magic at ${at}`);
    const f = (i: number): number => {
      const s = text(at + 6 + 8 * i, 8);
      if (!/^[0-9A-Fa-f]{8}$/.test(s)) throw new Error(`bad hex field "${s}"`);
      return parseInt(s, 16);
    };
    const namesize = f(11);
    const nameAt = at + 110;
    const name = text(nameAt, namesize - 1);
    if (archive[nameAt + namesize - 1] !== 0) throw new Error('name not NUL-terminated');
    let dataAt = nameAt + namesize;
    while (dataAt % 4 !== 0) {
      if (archive[dataAt] !== 0) throw new Error('non-zero name padding');
      dataAt++;
    }
    const filesize = f(6);
    const data = archive.slice(dataAt, dataAt + filesize);
    let next = dataAt + filesize;
    while (next % 4 !== 0) {
      if (archive[next] !== 0) throw new Error('non-zero data padding');
      next++;
    }
    out.push({
      offset: at,
      ino: f(0),
      mode: f(1),
      uid: f(2),
      gid: f(3),
      nlink: f(4),
      mtime: f(5),
      filesize,
      devmajor: f(7),
      devminor: f(8),
      rdevmajor: f(9),
      rdevminor: f(10),
      namesize,
      check: f(12),
      name,
      data,
    });
    at = next;
    if (name === 'TRAILER!!!') break;
  }
  if (at !== archive.length) throw new Error(`${archive.length - at} bytes after the trailer`);
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

const entries: CpioEntry[] = [
  { type: 'dir', path: '/dev', mode: 0o755 },
  { type: 'char', path: '/dev/console', major: 5, minor: 1, mode: 0o600 },
  { type: 'block', path: 'dev/vda', major: 253, minor: 0, mode: 0o660, gid: 6 },
  { type: 'fifo', path: 'dev/initctl', mode: 0o600 },
  { type: 'file', path: '/init', data: '#!/bin/sh\necho hello\n', mode: 0o755, mtime: 1_700_000_000 },
  { type: 'file', path: './etc/hostname', data: 'vm\n' }, // implies "etc"
  { type: 'file', path: 'empty', data: new Uint8Array(0) },
  { type: 'file', path: 'bin/abc', data: Uint8Array.from({ length: 5 }, (_, i) => i + 1), uid: 1000, gid: 100 },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
];

describe('boot: cpio newc writer', () => {
  const archive = cpioArchive(entries);
  const members = readCpio(archive);
  const byName = new Map(members.map((m) => [m.name, m]));

  it('writes members in order, inserting implied parent directories, then TRAILER!!!', () => {
    expect(members.map((m) => m.name)).to.deep.equal([
      'dev',
      'dev/console',
      'dev/vda',
      'dev/initctl',
      'init',
      'etc',
      'etc/hostname',
      'empty',
      'bin',
      'bin/abc',
      'bin/sh',
      'TRAILER!!!',
    ]);
  });

  it('numbers inodes 1..n, trailer 0, with zero check fields', () => {
    expect(members.map((m) => m.ino)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0]);
    expect(members.every((m) => m.check === 0 && m.devmajor === 0 && m.devminor === 0)).to.equal(true);
  });

  it('encodes types, modes, owners, links and times', () => {
    const m = (name: string): ReadMember => byName.get(name)!;
    expect(m('dev')).to.include({ mode: S_IFDIR | 0o755, nlink: 2, filesize: 0 });
    expect(m('etc')).to.include({ mode: S_IFDIR | 0o755, nlink: 2 });
    expect(m('dev/console')).to.include({ mode: S_IFCHR | 0o600, rdevmajor: 5, rdevminor: 1, nlink: 1, filesize: 0 });
    expect(m('dev/vda')).to.include({ mode: S_IFBLK | 0o660, rdevmajor: 253, rdevminor: 0, gid: 6 });
    expect(m('dev/initctl')).to.include({ mode: S_IFIFO | 0o600 });
    expect(m('init')).to.include({ mode: S_IFREG | 0o755, mtime: 1_700_000_000, filesize: 21 });
    expect(dec.decode(m('init').data)).to.equal('#!/bin/sh\necho hello\n');
    expect(m('etc/hostname')).to.include({ mode: S_IFREG | 0o644, mtime: 0, uid: 0, gid: 0 });
    expect(m('empty')).to.include({ filesize: 0 });
    expect(m('bin/abc')).to.include({ uid: 1000, gid: 100, filesize: 5 });
    expect(Array.from(m('bin/abc').data)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(m('bin/sh')).to.include({ mode: S_IFLNK | 0o777, filesize: 7 });
    expect(dec.decode(m('bin/sh').data)).to.equal('busybox');
    expect(m('TRAILER!!!')).to.include({ mode: 0, nlink: 1, filesize: 0, namesize: 11 });
  });

  it('pads header+name and data to 4 bytes, and the archive length to 4', () => {
    expect(archive.length % 4).to.equal(0);
    // "dev": 110 + 4 = 114 -> padded to 116; the next header starts there.
    expect(members[1]!.offset).to.equal(116);
  });

  it('writes the header fields as uppercase 8-digit hex', () => {
    expect(String.fromCharCode(...archive.subarray(0, 110))).to.equal(
      '070701' + '00000001' + '000041ED' + '00000000' + '00000000' + '00000002' + '00000000' + '00000000' + '00000000' + '00000000' + '00000000' + '00000000' + '00000004' + '00000000',
    );
  });

  it('is deterministic, and gzips on request', () => {
    expect(Array.from(cpioArchive(entries))).to.deep.equal(Array.from(archive));
    const gz = cpioArchive(entries, { gzip: true });
    expect(gz[0]).to.equal(0x1f);
    expect(gz[1]).to.equal(0x8b);
    expect(Array.from(new Uint8Array(gunzipSync(gz)))).to.deep.equal(Array.from(archive));
    expect(Array.from(cpioArchive(entries, { gzip: true }))).to.deep.equal(Array.from(gz));
  });

  it('writes just a trailer for no entries', () => {
    const m = readCpio(cpioArchive([]));
    expect(m.map((x) => x.name)).to.deep.equal(['TRAILER!!!']);
  });

  it('normalises paths and rejects bad ones', () => {
    expect(normalizeCpioPath('/a/b/')).to.equal('a/b');
    expect(normalizeCpioPath('./a')).to.equal('a');
    for (const bad of ['', '/', '.', 'a/../b', 'a//b', 'a/./b', 'a\0b']) {
      expect(() => normalizeCpioPath(bad), bad).to.throw(RangeError);
    }
  });

  it('rejects duplicates, late directories, files used as directories, bad modes and targets', () => {
    expect(() => cpioArchive([{ type: 'file', path: 'a', data: '' }, { type: 'file', path: '/a', data: '' }])).to.throw(RangeError, /twice/);
    expect(() => cpioArchive([{ type: 'file', path: 'd/a', data: '' }, { type: 'dir', path: 'd' }])).to.throw(RangeError, /before them/);
    expect(() => cpioArchive([{ type: 'file', path: 'a', data: '' }, { type: 'file', path: 'a/b', data: '' }])).to.throw(RangeError, /directory/);
    expect(() => cpioArchive([{ type: 'file', path: 'a', data: '', mode: 0o10000 }])).to.throw(RangeError, /permission bits/);
    expect(() => cpioArchive([{ type: 'symlink', path: 'l', target: '' }])).to.throw(RangeError, /target/);
    expect(() => cpioArchive([{ type: 'char', path: 'c', major: -1, minor: 0 }])).to.throw(RangeError);
    expect(() => cpioArchive([{ type: 'file', path: 'TRAILER!!!', data: '' }])).to.throw(RangeError, /reserved/);
  });

  it('is extracted identically by GNU cpio, when installed', function () {
    const which = spawnSync('sh', ['-c', 'command -v cpio'], { encoding: 'utf8' });
    if (which.status !== 0) {
      console.log('      (skipped: `cpio` is not installed on this machine; install it to cross-check the archive format)');
      this.skip();
    }
    const dir = mkdtempSync(join(tmpdir(), 'nodevisor-cpio-'));
    try {
      // Device nodes need root to create; extract everything else.
      const portable = cpioArchive(entries.filter((e) => e.type !== 'char' && e.type !== 'block' && e.type !== 'fifo'));
      execFileSync('cpio', ['-i', '-d', '-m', '--no-absolute-filenames', '--quiet', '-H', 'newc'], { cwd: dir, input: portable });
      const list = (sub: string): string[] =>
        readdirSync(join(dir, sub), { withFileTypes: true }).flatMap((d) => {
          const rel = sub ? `${sub}/${d.name}` : d.name;
          return d.isDirectory() ? [rel, ...list(rel)] : [rel];
        });
      expect(list('').sort()).to.deep.equal(['bin', 'bin/abc', 'bin/sh', 'dev', 'empty', 'etc', 'etc/hostname', 'init'].sort());
      expect(readFileSync(join(dir, 'init'), 'utf8')).to.equal('#!/bin/sh\necho hello\n');
      expect(lstatSync(join(dir, 'init')).mode & 0o777).to.equal(0o755);
      expect(Math.round(lstatSync(join(dir, 'init')).mtimeMs / 1000)).to.equal(1_700_000_000);
      expect(readFileSync(join(dir, 'etc/hostname'), 'utf8')).to.equal('vm\n');
      expect(Array.from(readFileSync(join(dir, 'bin/abc')))).to.deep.equal([1, 2, 3, 4, 5]);
      expect(lstatSync(join(dir, 'bin/sh')).isSymbolicLink()).to.equal(true);
      expect(readlinkSync(join(dir, 'bin/sh'))).to.equal('busybox');
      expect(lstatSync(join(dir, 'empty')).size).to.equal(0);
      // GNU cpio's own listing of the full archive, device nodes included.
      const listing = execFileSync('cpio', ['-t', '-v', '--quiet', '-H', 'newc'], { input: archive, encoding: 'utf8' });
      expect(listing).to.match(/^crw------- .* 5,\s+1 .* dev\/console$/m);
      expect(listing).to.match(/^brw-rw---- .*253,\s+0 .* dev\/vda$/m);
      expect(listing).to.match(/^prw------- .* dev\/initctl$/m);
      expect(listing).to.match(/^lrwxrwxrwx .* bin\/sh -> busybox$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is readable by GNU cpio after gzip, when installed', function () {
    if (spawnSync('sh', ['-c', 'command -v cpio'], { encoding: 'utf8' }).status !== 0) this.skip();
    const listing = execFileSync('cpio', ['-t', '--quiet', '-H', 'newc'], { input: gunzipSync(cpioArchive(entries, { gzip: true })), encoding: 'utf8' });
    expect(listing.trim().split('\n')).to.deep.equal(members.slice(0, -1).map((m) => m.name));
  });

  it('counts UTF-8 bytes in name and data sizes', () => {
    const m = readCpio(cpioArchive([{ type: 'file', path: 'é', data: 'ü€' }]));
    expect(m[0]!.namesize).to.equal(3);
    expect(m[0]!.filesize).to.equal(5);
    expect(Array.from(m[0]!.data)).to.deep.equal(Array.from(enc.encode('ü€')));
  });
});
