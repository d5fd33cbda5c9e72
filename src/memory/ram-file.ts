/**
 * Guest RAM to and from a snapshot's RAM file. The file has the memfd's
 * layout (the RAM regions one after another) and is sparse: only the
 * ranges of the memfd that hold data (SEEK_DATA/SEEK_HOLE: pages the guest
 * or the VMM ever touched) are written. A restored VM maps the file
 * copy-on-write, so restoring costs the same for any RAM size; pages are
 * read from the file when the guest first touches them.
 */
import { closeSync, fdatasyncSync, ftruncateSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { native, k } from '../kvm/addon.js';
import { NodevisorError } from '../kvm/errors.js';
import type { AllocatedMemory } from './allocate.js';
import { ramRanges } from './layout.js';

const CHUNK = 8 << 20;

const PAGE = 4096;
const ZERO_PAGE = Buffer.alloc(PAGE);

/**
 * Writes guest RAM to `path` as a sparse file in the memfd's layout and
 * returns the bytes written. The bytes come from the mapping, which is what
 * the guest sees: for a VM restored from a snapshot (a copy-on-write
 * mapping of the snapshot's file) the file behind it holds only what the
 * guest had then. Where RAM is a memfd (`shared`), SEEK_DATA/SEEK_HOLE skip
 * the ranges no one ever touched; within what is left, zero pages are
 * skipped too.
 */
export function saveGuestRam(ram: AllocatedMemory, path: string, shared: boolean): number {
  const size = ram.regions.reduce((n, r) => n + r.size, 0);
  const tmp = `${path}.${process.pid}.tmp`;
  const out = openSync(tmp, 'w', 0o600);
  let written = 0;
  try {
    ftruncateSync(out, size);
    let fileOffset = 0;
    for (const r of ram.regions) {
      const bytes = Buffer.from(r.buffer, 0, r.size);
      for (const [start, end] of dataRanges(ram.fd, fileOffset, r.size, shared)) {
        for (let p = start; p < end; p += CHUNK) written += writeNonZeroPages(out, bytes.subarray(p, Math.min(end, p + CHUNK)), fileOffset + p);
      }
      fileOffset += r.size;
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

/** [start, end) ranges, relative to a region at `offset` of `size` bytes, that may hold data. */
function dataRanges(fd: number, offset: number, size: number, shared: boolean): [number, number][] {
  if (!shared) return [[0, size]];
  const out: [number, number][] = [];
  for (let at = offset; at < offset + size; ) {
    const start = native.seek(fd, at, k('SEEK_DATA'));
    if (start < 0 || start >= offset + size) break;
    const end = Math.min(offset + size, native.seek(fd, start, k('SEEK_HOLE')));
    out.push([start - offset, end - offset]);
    at = end;
  }
  return out;
}

/** Writes the pages of `chunk` that are not all zero at `position` (+ their offset); returns the bytes written. */
function writeNonZeroPages(out: number, chunk: Buffer, position: number): number {
  let written = 0;
  let runStart = -1;
  const flush = (end: number): void => {
    if (runStart < 0) return;
    writeSync(out, chunk, runStart, end - runStart, position + runStart);
    written += end - runStart;
    runStart = -1;
  };
  for (let p = 0; p < chunk.length; p += PAGE) {
    const page = chunk.subarray(p, Math.min(chunk.length, p + PAGE));
    if (page.length === PAGE && page.equals(ZERO_PAGE)) flush(p);
    else if (runStart < 0) runStart = p;
  }
  flush(chunk.length);
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
