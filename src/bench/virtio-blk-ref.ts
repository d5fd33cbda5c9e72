import { open, type FileHandle } from 'node:fs/promises';
import { median } from './stats.js';
import { BLOCK_WORD_BYTES, type BlkWorkload } from './virtio-blk-guest.js';

/**
 * The host reference for the virtio-blk suite: the guest's request sequence
 * read directly from the image file by Node in this process, with the same
 * queue depth (that many reads in flight through fs.promises, i.e. libuv's
 * thread pool, as the device's requests go through its I/O pool), the same
 * size and the same check of each block's first word.
 */

/**
 * Passes per sample. The host runs a sequence 5-10 times faster than the
 * guest, so one pass is a short window that one scheduling hiccup can
 * halve; the median of a few steadies it.
 */
export const HOST_PASSES = 3;

export interface BlkHostRun {
  /** The median pass. */
  seconds: number;
}

/** Reads `blocks` (units of w.requestBytes) from `path`, w.qd at a time, HOST_PASSES times. Throws if any read is short or wrong. */
export async function runBlkHostReference(w: BlkWorkload, path: string, blocks: Uint32Array): Promise<BlkHostRun> {
  const fh = await open(path, 'r');
  try {
    const buffers = Array.from({ length: w.qd }, () => Buffer.alloc(w.requestBytes));
    const passes: number[] = [];
    for (let p = 0; p < HOST_PASSES; p++) passes.push(await pass(w, fh, buffers, blocks));
    return { seconds: median(passes) };
  } finally {
    await fh.close();
  }
}

async function pass(w: BlkWorkload, fh: FileHandle, buffers: Buffer[], blocks: Uint32Array): Promise<number> {
  let next = 0;
  const failures: string[] = [];
  const lane = async (buf: Buffer): Promise<void> => {
    while (next < blocks.length) {
      const offset = blocks[next++]! * w.requestBytes;
      const { bytesRead } = await fh.read(buf, 0, w.requestBytes, offset);
      if (bytesRead !== w.requestBytes || buf.readUInt32LE(0) !== offset / BLOCK_WORD_BYTES) failures.push(`offset ${offset}: ${bytesRead} bytes, first word ${buf.readUInt32LE(0)}`);
    }
  };
  const t0 = performance.now();
  await Promise.all(buffers.map(lane));
  const seconds = (performance.now() - t0) / 1000;
  if (failures.length) throw new Error(`host reference: ${failures.length} reads were short or wrong, e.g. ${failures[0]}`);
  return seconds;
}
