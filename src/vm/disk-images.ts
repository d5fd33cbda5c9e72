import { closeSync, fstatSync } from 'node:fs';
import { basename } from 'node:path';
import { NodevisorError, errnoCode } from '../kvm/errors.js';
import { ioUringAvailability, type IoUringAvailability } from '../kvm/io-uring.js';
import { SECTOR_SIZE } from '../virtio/blk-request.js';
import { BLK_AIO_MODES, type BlkAio } from '../virtio/blk.js';
import { notRegular, openNonBlocking } from './guest-file.js';

/** A raw disk image for virtio-blk, as the VM options name it. */
export interface DiskOptions {
  path: string;
  readonly?: boolean;
  /**
   * How requests reach the image: 'io_uring' (the default where the
   * kernel allows it; asked for explicitly, a host without it is an error)
   * or 'sync' (pread/pwrite on the I/O threads, the fallback).
   */
  aio?: BlkAio;
}

export interface OpenDisk {
  readonly path: string;
  readonly fd: number;
  /** Bytes the guest sees: the file size rounded down to whole sectors. */
  readonly size: number;
  readonly readonly: boolean;
  /** GET_ID serial: the file name, at most 20 bytes. */
  readonly id: string;
  readonly aio: BlkAio;
  /** Why `aio` is 'sync': the option, or why io_uring is unavailable. */
  readonly aioReason?: string;
}

/** The way `d`'s requests will go: what it asks for, else io_uring where available, else the synchronous fallback. */
export function resolveDiskAio(d: DiskOptions, available: () => IoUringAvailability = ioUringAvailability): { aio: BlkAio; aioReason?: string } {
  if (d.aio !== undefined && !BLK_AIO_MODES.includes(d.aio)) throw new NodevisorError('EDISK', `disk image ${d.path}: aio must be ${BLK_AIO_MODES.join(' or ')} (got ${String(d.aio)})`);
  if (d.aio === 'sync') return { aio: 'sync', aioReason: 'aio=sync' };
  const u = available();
  if (u.available) return { aio: 'io_uring' };
  if (d.aio === 'io_uring') throw new NodevisorError('EDISK', `disk image ${d.path} asks for aio=io_uring, but ${u.reason}: leave aio out (or aio=sync) for synchronous I/O`);
  return { aio: 'sync', aioReason: u.reason };
}

/**
 * Opens every image, read-only or read-write as asked, with errors that
 * say which file and what to do: missing, not readable/writable, a
 * directory, smaller than a sector, the same file given twice where
 * either use writes to it (two writers would corrupt it), or aio=io_uring
 * where io_uring is unavailable. Closes what it opened if any of them fails.
 */
export function openDiskImages(disks: readonly DiskOptions[]): OpenDisk[] {
  const opened: OpenDisk[] = [];
  const seen = new Map<string, { path: string; readonly: boolean }>();
  try {
    for (const d of disks) {
      const ro = d.readonly ?? false;
      const aio = resolveDiskAio(d);
      let fd: number;
      try {
        fd = openNonBlocking(d.path, !ro);
      } catch (e) {
        const code = errnoCode(e);
        const why =
          code === 'ENOENT'
            ? 'does not exist'
            : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
              ? `is not ${ro ? 'readable' : 'readable and writable'} (${code}); fix its permissions${ro ? '' : ' or add ",readonly"'}`
              : code === 'EISDIR'
                ? 'is a directory, not a disk image'
                : (e as Error).message;
        throw new NodevisorError('EDISK', `disk image ${d.path} ${why}`, { cause: e });
      }
      const st = fstatSync(fd);
      opened.push({ path: d.path, fd, size: Math.floor(st.size / SECTOR_SIZE) * SECTOR_SIZE, readonly: ro, id: basename(d.path).slice(0, 20), ...aio });
      if (!st.isFile()) throw new NodevisorError('EDISK', `disk image ${d.path} ${notRegular(st)}`);
      if (st.size < SECTOR_SIZE) throw new NodevisorError('EDISK', `disk image ${d.path} is smaller than one 512-byte sector (${st.size} bytes)`);
      const key = `${st.dev}:${st.ino}`;
      const other = seen.get(key);
      if (other && (!ro || !other.readonly)) {
        const how = !ro && !other.readonly ? 'would be opened read-write twice' : `would be written through one disk while the other reads it (${ro ? other.path : d.path} is read-write)`;
        throw new NodevisorError('EDISK', `disk image ${d.path} is the same file as ${other.path} and ${how}: give it once, or add ",readonly" to both`);
      }
      seen.set(key, { path: d.path, readonly: ro && (other?.readonly ?? true) });
    }
    return opened;
  } catch (e) {
    closeDiskImages(opened);
    throw e;
  }
}

export function closeDiskImages(disks: readonly OpenDisk[]): void {
  for (const d of disks) {
    try {
      closeSync(d.fd);
    } catch {
      // already closed
    }
  }
}
