import type { AccessSize } from '../devices/device.js';
import { VirtioDeviceId, featureBit } from './constants.js';
import type { VirtioContext, VirtioDeviceModel, VirtioDeviceType } from './device.js';
import { BLK_MAX_DISCARD_SEGMENTS, SECTOR_SIZE } from './blk-request.js';

/**
 * virtio-blk (VIRTIO 1.2, 5.2) as the vCPU threads see it: the
 * configuration space and the notification path. A notify only sets the
 * queue's bit in a shared kick word and wakes the dispatcher
 * (blk-dispatcher.ts), so the vCPU returns to the guest at once; the
 * requests run on the I/O pool (blk-io-worker.ts).
 */

export const VirtioBlkFeature = { SegMax: 2, Ro: 5, BlkSize: 6, Flush: 9, Mq: 12, Discard: 13, WriteZeroes: 14 } as const;
/** Discard granularity in sectors (4 KiB): the page size file systems deallocate in. */
const DISCARD_ALIGNMENT = 8;
export const VIRTIO_BLK_QUEUE_SIZE = 128;
/** Queues per disk at most (the kick word has a bit per queue). */
export const VIRTIO_BLK_MAX_QUEUES = 16;
const CONFIG_SIZE = 0x3c;

export interface VirtioBlkState {
  /** Int32 word 0: a bit per notified queue; the dispatcher waits on it. */
  readonly kick: SharedArrayBuffer;
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

export function allocateVirtioBlk(size: number, readonly: boolean, queues: number): VirtioBlkState {
  return { kick: new SharedArrayBuffer(4), size, readonly, queues };
}

export class VirtioBlk implements VirtioDeviceModel {
  readonly name = 'virtio-blk';
  readonly features: bigint;
  readonly configSize = CONFIG_SIZE;
  private readonly kick: Int32Array;
  private readonly config = new DataView(new ArrayBuffer(CONFIG_SIZE));

  constructor(
    state: VirtioBlkState,
    _ctx: VirtioContext,
  ) {
    this.kick = new Int32Array(state.kick);
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
    Atomics.or(this.kick, 0, 1 << index);
    Atomics.notify(this.kick, 0, 1);
  }

  reset(): void {}
}
