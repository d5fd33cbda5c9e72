import { fdatasyncSync, readSync, writeSync } from 'node:fs';
import { native, k } from '../kvm/addon.js';
import { errnoCode } from '../kvm/errors.js';
import { chainViews, readChain, writeChain } from './chain-io.js';
import type { GuestRanges } from './guest-ranges.js';
import type { DescriptorChain } from './queue.js';

/**
 * One virtio-blk request (VIRTIO 1.2, 5.2.6) carried out on an image file:
 * a 16-byte device-readable header (type, reserved, sector), data, and a
 * one-byte device-writable status. Data moves directly between the file
 * and guest RAM views (pread/pwrite into the shared guest memory), never
 * through a copy. Runs on an I/O pool thread.
 */

export const BlkRequestType = { In: 0, Out: 1, Flush: 4, GetId: 8, Discard: 11, WriteZeroes: 13 } as const;
export const BlkStatus = { Ok: 0, IoErr: 1, Unsupported: 2 } as const;
export const SECTOR_SIZE = 512;
export const BLK_ID_BYTES = 20;
const HEADER_BYTES = 16;
const ZEROES = new Uint8Array(64 * 1024);
/** A discard/write-zeroes segment: sector (u64), num_sectors (u32), flags (u32). */
const SEGMENT_BYTES = 16;
/** Segment flag: the range may be deallocated (write-zeroes); not allowed on discard (5.2.6.1). */
const SEGMENT_UNMAP = 1;
/** Segments per discard request at most (max_discard_seg); write-zeroes takes one. */
export const BLK_MAX_DISCARD_SEGMENTS = 32;

export interface BlkDisk {
  readonly fd: number;
  /** Size in bytes (a multiple of 512). */
  readonly size: number;
  readonly readonly: boolean;
  /** Serial number returned by GET_ID (at most 20 bytes). */
  readonly id: string;
}

const REQUEST_NAMES: Record<number, string> = { 0: 'read', 1: 'write', 4: 'flush', 8: 'get-id', 11: 'discard', 13: 'write-zeroes' };

/**
 * Executes `chain` and returns the bytes written into its device-writable
 * part (the used length). A chain too short to hold a header and a status
 * byte gets status IOERR where there is room for it, and used length 0
 * otherwise. The image file failing (a full file system, EIO...) gives the
 * guest IOERR and tells `onFileError` what failed and why.
 */
export function executeBlkRequest(ram: GuestRanges, disk: BlkDisk, chain: DescriptorChain, onFileError?: (what: string, e: Error) => void): number {
  if (chain.writableLength < 1) return 0;
  const statusAt = chain.writableLength - 1;
  const finish = (status: number, dataBytes: number): number => {
    writeChain(ram, chain.writable, statusAt, Uint8Array.of(status));
    return dataBytes + 1;
  };
  if (chain.readableLength < HEADER_BYTES) return finish(BlkStatus.IoErr, 0);
  const header = readChain(ram, chain.readable, 0, HEADER_BYTES);
  const view = new DataView(header.buffer);
  const type = view.getUint32(0, true);
  const sector = view.getBigUint64(8, true);
  const inRange = (bytes: number): boolean => sector <= BigInt(Number.MAX_SAFE_INTEGER) && Number(sector) * SECTOR_SIZE + bytes <= disk.size;
  const offset = Number(sector) * SECTOR_SIZE;
  try {
    switch (type) {
      case BlkRequestType.In: {
        const length = statusAt;
        if (length % SECTOR_SIZE !== 0 || !inRange(length)) return finish(BlkStatus.IoErr, 0);
        let at = offset;
        for (const v of chainViews(ram, chain.writable, 0, length)) {
          readFully(disk.fd, v, at);
          at += v.length;
        }
        return finish(BlkStatus.Ok, length);
      }
      case BlkRequestType.Out: {
        const length = chain.readableLength - HEADER_BYTES;
        if (disk.readonly) return finish(BlkStatus.IoErr, 0);
        if (length % SECTOR_SIZE !== 0 || !inRange(length)) return finish(BlkStatus.IoErr, 0);
        let at = offset;
        for (const v of chainViews(ram, chain.readable, HEADER_BYTES, length)) {
          writeFully(disk.fd, v, at);
          at += v.length;
        }
        return finish(BlkStatus.Ok, 0);
      }
      case BlkRequestType.Flush:
        if (!disk.readonly) fdatasyncSync(disk.fd);
        return finish(BlkStatus.Ok, 0);
      case BlkRequestType.GetId: {
        const id = new Uint8Array(BLK_ID_BYTES);
        id.set(new TextEncoder().encode(disk.id).subarray(0, BLK_ID_BYTES));
        const n = writeChain(ram, chain.writable, 0, id.subarray(0, Math.min(BLK_ID_BYTES, statusAt)));
        return finish(BlkStatus.Ok, n);
      }
      case BlkRequestType.WriteZeroes:
      case BlkRequestType.Discard: {
        if (disk.readonly) return finish(BlkStatus.IoErr, 0);
        const bytes = chain.readableLength - HEADER_BYTES;
        const max = type === BlkRequestType.Discard ? BLK_MAX_DISCARD_SEGMENTS : 1;
        if (bytes < SEGMENT_BYTES || bytes % SEGMENT_BYTES !== 0) return finish(BlkStatus.IoErr, 0);
        if (bytes / SEGMENT_BYTES > max) return finish(BlkStatus.Unsupported, 0);
        const segs = new DataView(readChain(ram, chain.readable, HEADER_BYTES, bytes).buffer);
        const ranges: Array<{ at: number; length: number; unmap: boolean }> = [];
        for (let i = 0; i < bytes; i += SEGMENT_BYTES) {
          const start = segs.getBigUint64(i, true);
          const count = segs.getUint32(i + 8, true);
          const flags = segs.getUint32(i + 12, true);
          if (flags & ~SEGMENT_UNMAP || (type === BlkRequestType.Discard && flags & SEGMENT_UNMAP)) return finish(BlkStatus.Unsupported, 0);
          if (start > BigInt(Number.MAX_SAFE_INTEGER) || (Number(start) + count) * SECTOR_SIZE > disk.size) return finish(BlkStatus.IoErr, 0);
          ranges.push({ at: Number(start) * SECTOR_SIZE, length: count * SECTOR_SIZE, unmap: (flags & SEGMENT_UNMAP) !== 0 });
        }
        // Validate every segment before touching the file: a bad one fails the request whole.
        for (const r of ranges) {
          if (type === BlkRequestType.Discard) punchHole(disk.fd, r.at, r.length);
          else if (!r.unmap || !punchHole(disk.fd, r.at, r.length)) writeZeroes(disk.fd, r.at, r.length);
        }
        return finish(BlkStatus.Ok, 0);
      }
      default:
        return finish(BlkStatus.Unsupported, 0);
    }
  } catch (e) {
    if (!(e instanceof Error && 'code' in e)) throw e;
    // An errno from the file.
    onFileError?.(`${REQUEST_NAMES[type] ?? `request type ${type}`} at sector ${sector}`, e);
    return finish(BlkStatus.IoErr, 0);
  }
}

/**
 * Deallocates [at, at + length) of the image, which then reads as zeroes;
 * false where the file system cannot (discard is only a hint then).
 */
function punchHole(fd: number, at: number, length: number): boolean {
  if (length === 0) return true;
  try {
    native.fallocate(fd, k('FALLOC_FL_PUNCH_HOLE') | k('FALLOC_FL_KEEP_SIZE'), at, length);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'EOPNOTSUPP' || errnoCode(e) === 'ENOSYS') return false;
    throw e;
  }
}

function writeZeroes(fd: number, at: number, length: number): void {
  for (let left = length; left > 0; ) {
    const n = Math.min(left, ZEROES.length);
    writeFully(fd, ZEROES.subarray(0, n), at);
    at += n;
    left -= n;
  }
}

function readFully(fd: number, view: Uint8Array, position: number): void {
  let done = 0;
  while (done < view.length) {
    const n = readSync(fd, view, done, view.length - done, position + done);
    if (n === 0) {
      view.fill(0, done); // past the end of a file that shrank: zeroes
      return;
    }
    done += n;
  }
}

function writeFully(fd: number, view: Uint8Array, position: number): void {
  let done = 0;
  while (done < view.length) done += writeSync(fd, view, done, view.length - done, position + done);
}
