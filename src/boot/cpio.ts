/**
 * A writer for cpio archives in the "newc" format (magic 070701), the only
 * format the Linux initramfs unpacker accepts
 * (Documentation/driver-api/early-userspace/buffer-format.rst).
 *
 * Each member is a 110-byte ASCII header (the magic and thirteen 8-digit hex
 * fields), the path name with its NUL, padding to a multiple of 4 bytes,
 * then the data, padded to a multiple of 4 again. The archive ends with a
 * member named TRAILER!!!. Members get inode numbers 1, 2, ... in order; the
 * "check" field is 0 (070702 would carry a checksum).
 *
 * Paths are stored relative ("init", "dev/console"), as gen_init_cpio and
 * `find . | cpio -o -H newc` store them. Missing parent directories are
 * added (mode 0755) before their first child, because the kernel's unpacker
 * does not create them and a file whose directory is missing is dropped.
 */
import { gzipSync } from 'node:zlib';

/** File type bits of st_mode (<sys/stat.h>). */
export const S_IFMT = 0o170000;
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFDIR = 0o040000;
export const S_IFBLK = 0o060000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export const CPIO_NEWC_MAGIC = '070701';
export const CPIO_HEADER_SIZE = 110;
export const CPIO_TRAILER = 'TRAILER!!!';

interface CommonFields {
  /** Path inside the archive; a leading "/" or "./" is dropped. */
  readonly path: string;
  /** Permission bits (0-0o7777); the type bits come from the entry kind. */
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** Seconds since the epoch; default 0, so archives are reproducible. */
  readonly mtime?: number;
}

export type CpioEntry =
  | (CommonFields & { readonly type: 'file'; readonly data: Uint8Array | string })
  | (CommonFields & { readonly type: 'dir' })
  | (CommonFields & { readonly type: 'symlink'; readonly target: string })
  | (CommonFields & { readonly type: 'char' | 'block'; readonly major: number; readonly minor: number })
  | (CommonFields & { readonly type: 'fifo' });

export interface CpioOptions {
  /** gzip the archive (the kernel decompresses gzip initramfs images with CONFIG_RD_GZIP). */
  readonly gzip?: boolean;
}

const DEFAULT_MODE: Record<CpioEntry['type'], number> = {
  file: 0o644,
  dir: 0o755,
  symlink: 0o777,
  char: 0o600,
  block: 0o600,
  fifo: 0o644,
};

const TYPE_BITS: Record<CpioEntry['type'], number> = {
  file: S_IFREG,
  dir: S_IFDIR,
  symlink: S_IFLNK,
  char: S_IFCHR,
  block: S_IFBLK,
  fifo: S_IFIFO,
};

const MAX_FIELD = 0xffffffff;

/** "init", "dev/console": the stored form of a path; throws RangeError for empty, "..", or NUL. */
export function normalizeCpioPath(path: string): string {
  let p = path;
  while (p.startsWith('/') || p.startsWith('./')) p = p.startsWith('/') ? p.slice(1) : p.slice(2);
  p = p.replace(/\/+$/, '');
  const parts = p.split('/');
  if (p === '' || p === '.' || parts.some((s) => s === '' || s === '.' || s === '..') || p.includes('\0')) {
    throw new RangeError(`"${path}" is not a valid archive path (empty, ".", ".." or NUL components)`);
  }
  return p;
}

function field(v: number, what: string): string {
  if (!Number.isInteger(v) || v < 0 || v > MAX_FIELD) throw new RangeError(`cpio ${what} ${v} does not fit 32 bits`);
  return v.toString(16).toUpperCase().padStart(8, '0');
}

const pad4 = (n: number): number => (4 - (n % 4)) % 4;

interface Member {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  data: Uint8Array;
  rdevMajor: number;
  rdevMinor: number;
}

function header(m: Member, ino: number, nameBytes: Uint8Array): string {
  return (
    CPIO_NEWC_MAGIC +
    field(ino, 'inode') +
    field(m.mode, 'mode') +
    field(m.uid, 'uid') +
    field(m.gid, 'gid') +
    field(m.nlink, 'nlink') +
    field(m.mtime, 'mtime') +
    field(m.data.length, 'file size') +
    field(0, 'devmajor') +
    field(0, 'devminor') +
    field(m.rdevMajor, 'rdevmajor') +
    field(m.rdevMinor, 'rdevminor') +
    field(nameBytes.length + 1, 'name size') +
    field(0, 'check')
  );
}

function toMember(entry: CpioEntry, name: string): Member {
  const perm = entry.mode ?? DEFAULT_MODE[entry.type];
  if (!Number.isInteger(perm) || perm < 0 || perm > 0o7777) {
    throw new RangeError(`mode ${perm.toString(8)} of "${entry.path}" is not permission bits (0-7777 octal)`);
  }
  const encoder = new TextEncoder();
  let data: Uint8Array = new Uint8Array(0);
  let rdevMajor = 0;
  let rdevMinor = 0;
  if (entry.type === 'file') data = typeof entry.data === 'string' ? encoder.encode(entry.data) : entry.data;
  if (entry.type === 'symlink') {
    if (entry.target === '' || entry.target.includes('\0')) throw new RangeError(`symlink "${entry.path}" needs a non-empty target without NUL`);
    data = encoder.encode(entry.target); // the target, without a NUL
  }
  if (entry.type === 'char' || entry.type === 'block') {
    rdevMajor = entry.major;
    rdevMinor = entry.minor;
  }
  return {
    name,
    mode: TYPE_BITS[entry.type] | perm,
    uid: entry.uid ?? 0,
    gid: entry.gid ?? 0,
    nlink: entry.type === 'dir' ? 2 : 1,
    mtime: entry.mtime ?? 0,
    data,
    rdevMajor,
    rdevMinor,
  };
}

/**
 * The archive for `entries`, in order (with missing parent directories
 * inserted before their first child). Throws RangeError for invalid or
 * duplicate paths, modes, or sizes over 4 GiB.
 */
export function cpioArchive(entries: readonly CpioEntry[], options: CpioOptions = {}): Uint8Array {
  const members: Member[] = [];
  const seen = new Map<string, CpioEntry['type']>();
  const implied = new Set<string>();
  for (const entry of entries) {
    const name = normalizeCpioPath(entry.path);
    if (name === CPIO_TRAILER) throw new RangeError(`"${CPIO_TRAILER}" is reserved for the archive's end marker`);
    if (implied.has(name)) throw new RangeError(`directory "${name}" is listed after its contents: list it before them`);
    if (seen.has(name)) throw new RangeError(`"${name}" appears twice in the archive`);
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const kind = seen.get(dir);
      if (kind === undefined) {
        seen.set(dir, 'dir');
        implied.add(dir);
        members.push(toMember({ type: 'dir', path: dir }, dir));
      } else if (kind !== 'dir') {
        throw new RangeError(`"${name}" needs "${dir}" to be a directory, but it is a ${kind}`);
      }
    }
    seen.set(name, entry.type);
    members.push(toMember(entry, name));
  }
  members.push({ name: CPIO_TRAILER, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, data: new Uint8Array(0), rdevMajor: 0, rdevMinor: 0 });

  const encoder = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const push = (bytes: Uint8Array): void => {
    chunks.push(bytes);
    total += bytes.length;
  };
  members.forEach((m, i) => {
    const nameBytes = encoder.encode(m.name);
    // The trailer (always last) has inode 0, as GNU cpio writes it.
    const ino = i === members.length - 1 ? 0 : i + 1;
    const head = encoder.encode(header(m, ino, nameBytes));
    const namePad = pad4(CPIO_HEADER_SIZE + nameBytes.length + 1);
    const nameBlock = new Uint8Array(nameBytes.length + 1 + namePad);
    nameBlock.set(nameBytes);
    push(head);
    push(nameBlock);
    if (m.data.length > 0) {
      push(m.data);
      push(new Uint8Array(pad4(m.data.length)));
    }
  });

  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return options.gzip ? new Uint8Array(gzipSync(out, { level: 9 })) : out;
}
