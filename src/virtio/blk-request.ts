import { fdatasyncSync, readSync, writeSync } from 'node:fs';
import { native, k } from '../kvm/addon.js';
import { errnoCode } from '../kvm/errors.js';
import { chainViews, readChain, writeChain } from './chain-io.js';
import type { GuestRanges } from './guest-ranges.js';
import { GuestMemoryError } from '../memory/guest-memory.js';
import type { DescriptorChain } from './queue.js';

/**
 * One virtio-blk request (VIRTIO 1.2, 5.2.6) carried out on an image file:
 * a 16-byte device-readable header (type, reserved, sector), data, and a
 * one-byte device-writable status. Data moves directly between the file
 * and guest RAM views (pread/pwrite into the shared guest memory, or
 * io_uring operations on those views: blk-uring.ts), never through a copy.
 * Runs on an I/O pool thread.
 */

export const BlkRequestType = { In: 0, Out: 1, Flush: 4, GetId: 8, Discard: 11, WriteZeroes: 13 } as const;
export const BlkStatus = { Ok: 0, IoErr: 1, Unsupported: 2 } as const;
export const SECTOR_SIZE = 512;
export const BLK_ID_BYTES = 20;
const HEADER_BYTES = 16;
/** What zeroes are written from (write-zeroes without a hole), a chunk at a time. */
export const ZEROES = new Uint8Array(64 * 1024);
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
 * What a request does to the image file, in order. Views are live views
 * of guest RAM, each reached through GuestRanges' bounds checks.
 */
export type BlkFileOp =
  | { readonly kind: 'read'; readonly at: number; readonly views: readonly Uint8Array[] }
  | { readonly kind: 'write'; readonly at: number; readonly views: readonly Uint8Array[] }
  | { readonly kind: 'flush' }
  /** Deallocate the range; where the file system cannot, `orZeroes` writes zeroes instead, else nothing happens (a discard is a hint). */
  | { readonly kind: 'punch'; readonly at: number; readonly length: number; readonly orZeroes: boolean }
  | { readonly kind: 'zeroes'; readonly at: number; readonly length: number };

/**
 * A request parsed and checked, before the file is touched: what to do to
 * the file, and what the guest gets if all of it succeeds. A file error
 * turns the status into IOERR with no data.
 */
export interface BlkPlan {
  readonly ops: readonly BlkFileOp[];
  readonly status: number;
  /** Bytes of data the device-writable part receives before the status byte. */
  readonly dataBytes: number;
  readonly type: number;
  readonly sector: bigint;
}

/** "read at sector 8", for messages about a failed request. */
export function describeBlkRequest(plan: BlkPlan): string {
  return `${REQUEST_NAMES[plan.type] ?? `request type ${plan.type}`} at sector ${plan.sector}`;
}

/**
 * Parses and checks `chain`. A chain too short to hold a header and a
 * status byte gets status IOERR where there is room for it (and used
 * length 0 otherwise: see finishBlkRequest). GET_ID's answer goes into
 * guest RAM here: it needs no file.
 */
export function planBlkRequest(ram: GuestRanges, disk: BlkDisk, chain: DescriptorChain): BlkPlan {
  let type = -1;
  let sector = 0n;
  const done = (status: number, dataBytes = 0, ops: readonly BlkFileOp[] = []): BlkPlan => ({ ops, status, dataBytes, type, sector });
  if (chain.writableLength < 1 || chain.readableLength < HEADER_BYTES) return done(BlkStatus.IoErr);
  const statusAt = chain.writableLength - 1;
  const header = readHeader(ram, chain);
  type = header.type;
  sector = header.sector;
  const inRange = (bytes: number): boolean => sector <= BigInt(Number.MAX_SAFE_INTEGER) && Number(sector) * SECTOR_SIZE + bytes <= disk.size;
  const offset = Number(sector) * SECTOR_SIZE;
  switch (type) {
    case BlkRequestType.In: {
      const length = statusAt;
      if (length % SECTOR_SIZE !== 0 || !inRange(length)) return done(BlkStatus.IoErr);
      return done(BlkStatus.Ok, length, length ? [{ kind: 'read', at: offset, views: chainViews(ram, chain.writable, 0, length) }] : []);
    }
    case BlkRequestType.Out: {
      const length = chain.readableLength - HEADER_BYTES;
      if (disk.readonly) return done(BlkStatus.IoErr);
      if (length % SECTOR_SIZE !== 0 || !inRange(length)) return done(BlkStatus.IoErr);
      return done(BlkStatus.Ok, 0, length ? [{ kind: 'write', at: offset, views: chainViews(ram, chain.readable, HEADER_BYTES, length) }] : []);
    }
    case BlkRequestType.Flush:
      return done(BlkStatus.Ok, 0, disk.readonly ? [] : [{ kind: 'flush' }]);
    case BlkRequestType.GetId: {
      const id = new Uint8Array(BLK_ID_BYTES);
      id.set(new TextEncoder().encode(disk.id).subarray(0, BLK_ID_BYTES));
      return done(BlkStatus.Ok, writeChain(ram, chain.writable, 0, id.subarray(0, Math.min(BLK_ID_BYTES, statusAt))));
    }
    case BlkRequestType.WriteZeroes:
    case BlkRequestType.Discard: {
      if (disk.readonly) return done(BlkStatus.IoErr);
      const bytes = chain.readableLength - HEADER_BYTES;
      const max = type === BlkRequestType.Discard ? BLK_MAX_DISCARD_SEGMENTS : 1;
      if (bytes < SEGMENT_BYTES || bytes % SEGMENT_BYTES !== 0) return done(BlkStatus.IoErr);
      if (bytes / SEGMENT_BYTES > max) return done(BlkStatus.Unsupported);
      const segs = new DataView(readChain(ram, chain.readable, HEADER_BYTES, bytes).buffer);
      const ops: BlkFileOp[] = [];
      // Every segment is checked before any is carried out: a bad one fails the request whole.
      for (let i = 0; i < bytes; i += SEGMENT_BYTES) {
        const start = segs.getBigUint64(i, true);
        const count = segs.getUint32(i + 8, true);
        const flags = segs.getUint32(i + 12, true);
        if (flags & ~SEGMENT_UNMAP || (type === BlkRequestType.Discard && flags & SEGMENT_UNMAP)) return done(BlkStatus.Unsupported);
        if (start > BigInt(Number.MAX_SAFE_INTEGER) || (Number(start) + count) * SECTOR_SIZE > disk.size) return done(BlkStatus.IoErr);
        const at = Number(start) * SECTOR_SIZE;
        const length = count * SECTOR_SIZE;
        if (length === 0) continue;
        if (type === BlkRequestType.Discard) ops.push({ kind: 'punch', at, length, orZeroes: false });
        else ops.push(flags & SEGMENT_UNMAP ? { kind: 'punch', at, length, orZeroes: true } : { kind: 'zeroes', at, length });
      }
      return done(BlkStatus.Ok, 0, ops);
    }
    default:
      return done(BlkStatus.Unsupported);
  }
}

/** The request header's type and sector: in place where one RAM region holds it (the usual case), else copied out of the chain. */
function readHeader(ram: GuestRanges, chain: DescriptorChain): { type: number; sector: bigint } {
  const first = chain.readable[0]!;
  if (first.len >= HEADER_BYTES) {
    try {
      return { type: ram.memory.readU32(first.addr), sector: ram.memory.readU64(first.addr + 8) };
    } catch (e) {
      // A header across two RAM regions: each part is still RAM (the chain was checked).
      if (!(e instanceof GuestMemoryError)) throw e;
    }
  }
  const view = new DataView(readChain(ram, chain.readable, 0, HEADER_BYTES).buffer);
  return { type: view.getUint32(0, true), sector: view.getBigUint64(8, true) };
}

/**
 * Writes the status byte (IOERR instead of the plan's when the file
 * failed) and returns the used length: data bytes plus the status byte,
 * or 0 for a chain with no device-writable byte.
 */
export function finishBlkRequest(ram: GuestRanges, chain: DescriptorChain, plan: BlkPlan, fileFailed = false): number {
  if (chain.writableLength < 1) return 0;
  // The status byte is the last byte of the last non-empty writable buffer.
  let last = chain.writable.length - 1;
  while (chain.writable[last]!.len === 0) last--;
  const b = chain.writable[last]!;
  ram.memory.writeU8(b.addr + b.len - 1, fileFailed ? BlkStatus.IoErr : plan.status);
  return (fileFailed ? 0 : plan.dataBytes) + 1;
}

/**
 * Executes `chain` synchronously (the path where io_uring is unavailable
 * or not wanted) and returns the used length. The image file failing (a
 * full file system, EIO...) gives the guest IOERR and tells `onFileError`
 * what failed and why.
 */
export function executeBlkRequest(ram: GuestRanges, disk: BlkDisk, chain: DescriptorChain, onFileError?: (what: string, e: Error) => void): number {
  const plan = planBlkRequest(ram, disk, chain);
  try {
    for (const op of plan.ops) runFileOp(disk.fd, op);
  } catch (e) {
    if (!(e instanceof Error && 'code' in e)) throw e;
    // An errno from the file.
    onFileError?.(describeBlkRequest(plan), e);
    return finishBlkRequest(ram, chain, plan, true);
  }
  return finishBlkRequest(ram, chain, plan);
}

function runFileOp(fd: number, op: BlkFileOp): void {
  switch (op.kind) {
    case 'read':
    case 'write': {
      const transfer = op.kind === 'read' ? readFully : writeFully;
      let at = op.at;
      for (const v of op.views) {
        transfer(fd, v, at);
        at += v.length;
      }
      return;
    }
    case 'flush':
      return fdatasyncSync(fd);
    case 'punch':
      if (!punchHole(fd, op.at, op.length) && op.orZeroes) writeZeroes(fd, op.at, op.length);
      return;
    case 'zeroes':
      return writeZeroes(fd, op.at, op.length);
  }
}

/** fallocate(2) mode of a hole punch: the file keeps its size. */
export function punchHoleMode(): number {
  return k('FALLOC_FL_PUNCH_HOLE') | k('FALLOC_FL_KEEP_SIZE');
}

/** An errno saying the file system cannot punch holes. */
export function cannotPunch(code: string | undefined): boolean {
  return code === 'EOPNOTSUPP' || code === 'ENOSYS';
}

/**
 * Deallocates [at, at + length) of the image, which then reads as zeroes;
 * false where the file system cannot (discard is only a hint then).
 */
function punchHole(fd: number, at: number, length: number): boolean {
  if (length === 0) return true;
  try {
    native.fallocate(fd, punchHoleMode(), at, length);
    return true;
  } catch (e) {
    if (cannotPunch(errnoCode(e))) return false;
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
