/**
 * Guest RAM to and from a snapshot's RAM file. The file has the memfd's
 * layout (the RAM regions one after another) and is sparse: only the
 * ranges of the memfd that hold data (SEEK_DATA/SEEK_HOLE: pages the guest
 * or the VMM ever touched) are written. A restored VM maps the file
 * copy-on-write, so restoring costs the same for any RAM size; pages are
 * read from the file when the guest first touches them.
 */
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { native, k } from '../kvm/addon.js';
import { NodevisorError } from '../kvm/errors.js';
import type { AllocatedMemory } from './allocate.js';
import { ramRanges } from './layout.js';

const CHUNK = 8 << 20;

/** Writes the data ranges of guest RAM (memfd `fd`, `size` bytes) to `path`; returns the bytes written. */
export function saveGuestRam(fd: number, size: number, path: string): number {
  const tmp = `${path}.${process.pid}.tmp`;
  const out = openSync(tmp, 'w', 0o600);
  let written = 0;
  try {
    ftruncateSync(out, size);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let at = 0; at < size; ) {
      const start = native.seek(fd, at, k('SEEK_DATA'));
      if (start < 0 || start >= size) break;
      const end = Math.min(size, native.seek(fd, start, k('SEEK_HOLE')));
      for (let p = start; p < end; ) {
        const n = readSync(fd, buf, 0, Math.min(CHUNK, end - p), p);
        if (n <= 0) throw new Error(`guest RAM read at ${p} returned ${n}`);
        writeSync(out, buf, 0, n, p);
        p += n;
        written += n;
      }
      at = end;
    }
    fdatasyncSync(out);
  } catch (e) {
    closeSync(out);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(out);
  // A new inode: a VM restored from an older file at this path keeps its mapping.
  renameSync(tmp, path);
  return written;
}

/** Maps a snapshot's RAM file copy-on-write as guest RAM of `size` bytes. */
export function mapGuestRamFile(path: string, size: number): AllocatedMemory {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new NodevisorError('ESNAPSHOT', `cannot open the snapshot's RAM file ${path}: ${(e as Error).message}`, { cause: e });
  }
  let offset = 0;
  const regions = ramRanges(size).map((r) => {
    const { buffer, address } = native.mapShared(fd, offset, r.size, true);
    offset += r.size;
    return { gpa: r.gpa, size: r.size, buffer, hostAddress: address };
  });
  return { fd, regions };
}
