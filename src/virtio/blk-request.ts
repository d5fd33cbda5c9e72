import { fdatasyncSync, readSync, writeSync } from 'node:fs';
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

export const BlkRequestType = { In: 0, Out: 1, Flush: 4, GetId: 8, WriteZeroes: 13 } as const;
export const BlkStatus = { Ok: 0, IoErr: 1, Unsupported: 2 } as const;
export const SECTOR_SIZE = 512;
export const BLK_ID_BYTES = 20;
const HEADER_BYTES = 16;
const ZEROES = new Uint8Array(64 * 1024);

export interface BlkDisk {
  readonly fd: number;
  /** Size in bytes (a multiple of 512). */
  readonly size: number;
  readonly readonly: boolean;
  /** Serial number returned by GET_ID (at most 20 bytes). */
  readonly id: string;
}

/**
 * Executes `chain` and returns the bytes written into its device-writable
 * part (the used length). A chain too short to hold a header and a status
 * byte gets status IOERR where there is room for it, and used length 0 otherwise.
 */
export function executeBlkRequest(ram: GuestRanges, disk: BlkDisk, chain: DescriptorChain): number {
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
      case BlkRequestType.WriteZeroes: {
        // One segment (max_write_zeroes_seg = 1): sector u64, num_sectors u32, flags u32.
        if (disk.readonly) return finish(BlkStatus.IoErr, 0);
        if (chain.readableLength < HEADER_BYTES + 16) return finish(BlkStatus.IoErr, 0);
        const seg = new DataView(readChain(ram, chain.readable, HEADER_BYTES, 16).buffer);
        const start = seg.getBigUint64(0, true);
        const count = seg.getUint32(8, true);
        if (start > BigInt(Number.MAX_SAFE_INTEGER) || (Number(start) + count) * SECTOR_SIZE > disk.size) return finish(BlkStatus.IoErr, 0);
        for (let at = Number(start) * SECTOR_SIZE, left = count * SECTOR_SIZE; left > 0; ) {
          const n = Math.min(left, ZEROES.length);
          writeFully(disk.fd, ZEROES.subarray(0, n), at);
          at += n;
          left -= n;
        }
        return finish(BlkStatus.Ok, 0);
      }
      default:
        return finish(BlkStatus.Unsupported, 0);
    }
  } catch (e) {
    if (e instanceof Error && 'code' in e) return finish(BlkStatus.IoErr, 0); // an errno from the file
    throw e;
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
