import type { AccessSize } from '../devices/device.js';
import { native } from '../kvm/addon.js';
import { VirtioDeviceId, featureBit } from './constants.js';
import type { VirtioContext, VirtioDeviceModel, VirtioDeviceType } from './device.js';
import { BLK_MAX_DISCARD_SEGMENTS, SECTOR_SIZE } from './blk-request.js';

/**
 * virtio-blk (VIRTIO 1.2, 5.2) as the vCPU threads see it: the
 * configuration space and the notification path. Each queue has an
 * eventfd that an I/O thread waits on (blk-io-worker.ts). KVM signals it
 * itself where the VM registered it as an ioeventfd; otherwise the notify
 * write exits and the vCPU signals it here. Either way the vCPU returns to
 * the guest at once.
 */

export const VirtioBlkFeature = { SegMax: 2, Ro: 5, BlkSize: 6, Flush: 9, Mq: 12, Discard: 13, WriteZeroes: 14 } as const;
/** Discard granularity in sectors (4 KiB): the page size file systems deallocate in. */
const DISCARD_ALIGNMENT = 8;
export const VIRTIO_BLK_QUEUE_SIZE = 128;
/** Queues per disk at most. */
export const VIRTIO_BLK_MAX_QUEUES = 16;
const CONFIG_SIZE = 0x3c;

/** Request counters of a disk (Int32 words of VirtioBlkState.io), kept by the I/O threads. */
/** PollWakes: idle spells of the I/O threads that ended while they polled the queues (no sleep, no wake-up). */
export const IoStat = { InFlight: 0, MaxInFlight: 1, Completed: 2, FileErrors: 3, Engines: 4, PollWakes: 5, WORDS: 6 } as const;

/**
 * How a disk's requests reach its image file: `io_uring` (many in flight
 * per I/O thread, where the kernel allows it) or `sync` (pread/pwrite, one
 * request at a time per thread).
 */
export type BlkAio = 'io_uring' | 'sync';
export const BLK_AIO_MODES: readonly BlkAio[] = ['io_uring', 'sync'];

/** Bits of IoStat.Engines: which ways the disk's I/O threads actually serve it. */
export const BlkEngine = { Sync: 1, Uring: 2 } as const;

/** What IoStat.Engines says ran: undefined before any I/O thread has started. */
export function engineName(bits: number): 'io_uring' | 'sync' | 'io_uring+sync' | undefined {
  return bits === BlkEngine.Uring ? 'io_uring' : bits === BlkEngine.Sync ? 'sync' : bits ? 'io_uring+sync' : undefined;
}

export interface VirtioBlkState {
  /** One eventfd per queue, signalled for each notification. */
  readonly eventfds: readonly number[];
  /** IoStat counters. */
  readonly io: SharedArrayBuffer;
  /** Bytes; a multiple of 512. */
  readonly size: number;
  readonly readonly: boolean;
  readonly queues: number;
}

export function virtioBlkType(queues: number): VirtioDeviceType {
  if (!Number.isInteger(queues) || queues < 1 || queues > VIRTIO_BLK_MAX_QUEUES) throw new RangeError(`virtio-blk has 1-${VIRTIO_BLK_MAX_QUEUES} queues (got ${queues})`);
  // Class 0x01 (mass storage), subclass 0x80 (other), as QEMU reports virtio-blk.
  return { deviceId: VirtioDeviceId.Block, classCode: 0x018000, queueSizes: new Array<number>(queues).fill(VIRTIO_BLK_QUEUE_SIZE) };
}

/** State of a disk of `size` bytes with one queue per eventfd in `eventfds` (the caller owns and closes them). */
export function allocateVirtioBlk(size: number, readonly: boolean, eventfds: readonly number[]): VirtioBlkState {
  virtioBlkType(eventfds.length);
  return { eventfds, io: new SharedArrayBuffer(IoStat.WORDS * 4), size, readonly, queues: eventfds.length };
}

export class VirtioBlk implements VirtioDeviceModel {
  readonly name = 'virtio-blk';
  readonly features: bigint;
  readonly configSize = CONFIG_SIZE;
  private readonly eventfds: readonly number[];
  private readonly config = new DataView(new ArrayBuffer(CONFIG_SIZE));

  constructor(
    state: VirtioBlkState,
    _ctx: VirtioContext,
  ) {
    this.eventfds = state.eventfds;
    const f = (bit: number): bigint => featureBit(bit);
    this.features =
      f(VirtioBlkFeature.SegMax) | f(VirtioBlkFeature.BlkSize) | f(VirtioBlkFeature.Flush) | f(VirtioBlkFeature.Mq) | (state.readonly ? f(VirtioBlkFeature.Ro) : f(VirtioBlkFeature.WriteZeroes) | f(VirtioBlkFeature.Discard));
    const c = this.config;
    c.setBigUint64(0x00, BigInt(state.size / SECTOR_SIZE), true); // capacity in 512-byte sectors
    c.setUint32(0x0c, VIRTIO_BLK_QUEUE_SIZE - 2, true); // seg_max: a chain also holds header and status
    c.setUint32(0x14, SECTOR_SIZE, true); // blk_size
    c.setUint16(0x22, state.queues, true); // num_queues
    c.setUint32(0x24, 0xffffffff >>> 9, true); // max_discard_sectors
    c.setUint32(0x28, BLK_MAX_DISCARD_SEGMENTS, true); // max_discard_seg
    c.setUint32(0x2c, DISCARD_ALIGNMENT, true); // discard_sector_alignment
    c.setUint32(0x30, 0xffffffff >>> 9, true); // max_write_zeroes_sectors
    c.setUint8(0x38, 1); // write_zeroes_may_unmap: an UNMAP write-zeroes punches a hole
    c.setUint32(0x34, 1, true); // max_write_zeroes_seg
  }

  configRead(offset: number, size: AccessSize): number {
    return size === 1 ? this.config.getUint8(offset) : size === 2 ? this.config.getUint16(offset, true) : this.config.getUint32(offset, true);
  }

  /** The configuration is read-only here (no writeback toggle offered). */
  configWrite(): void {}

  notify(index: number): void {
    const fd = this.eventfds[index];
    if (fd !== undefined) native.eventfdWrite(fd, 1);
  }

  reset(): void {}
}
