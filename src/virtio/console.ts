import type { AccessSize } from '../devices/device.js';
import { VirtioDeviceId } from './constants.js';
import type { VirtioContext, VirtioDeviceModel, VirtioDeviceType } from './device.js';
import { chainViews, writeChain } from './chain-io.js';
import type { SplitVirtqueue } from './queue.js';
import { serveQueue } from './serve-queue.js';

/**
 * virtio-console (VIRTIO 1.2, 5.3) with a single port and no features: the
 * driver's hvc0. A notify from a vCPU only sets the queue's bit in a shared
 * kick word; the main thread (console-pump.ts) moves the bytes, so output
 * can wait for a slow terminal (the guest's transmit queue fills up and
 * its writes block) and input waits for receive buffers, never dropped.
 */

export const VirtioConsoleQueue = { Receive: 0, Transmit: 1 } as const;
export const VIRTIO_CONSOLE_QUEUE_SIZE = 128;
/** Bytes taken from one transmit buffer at most: hvc writes a page at a time; a larger one is a broken or hostile driver. */
export const VIRTIO_CONSOLE_MAX_TX = 64 * 1024;
/** The kick word bit that asks the pump to stop. */
export const CONSOLE_KICK_CLOSE = 1 << 31;

// Class 0x07 (communication), subclass 0x80 (other), as QEMU reports virtio-console.
export const VIRTIO_CONSOLE_TYPE: VirtioDeviceType = {
  deviceId: VirtioDeviceId.Console,
  classCode: 0x078000,
  queueSizes: [VIRTIO_CONSOLE_QUEUE_SIZE, VIRTIO_CONSOLE_QUEUE_SIZE],
};

/** cols, rows (u16 each; meaningful only with VIRTIO_CONSOLE_F_SIZE), max_nr_ports, emerg_wr. */
const CONFIG_SIZE = 12;

export interface VirtioConsoleState {
  /** Int32 word 0: a bit per notified queue, CONSOLE_KICK_CLOSE to stop the pump. */
  readonly kick: SharedArrayBuffer;
}

export function allocateVirtioConsole(): VirtioConsoleState {
  return { kick: new SharedArrayBuffer(4) };
}

export class VirtioConsole implements VirtioDeviceModel {
  readonly name = 'virtio-console';
  readonly features = 0n;
  readonly configSize = CONFIG_SIZE;
  readonly kick: Int32Array;

  constructor(
    state: VirtioConsoleState,
    private readonly ctx: VirtioContext,
  ) {
    this.kick = new Int32Array(state.kick);
  }

  configRead(offset: number, size: AccessSize): number {
    // max_nr_ports (offset 8) is 1; the rest reads as zero.
    return offset === 8 && size === 4 ? 1 : 0;
  }

  /** Nothing is writable without VIRTIO_CONSOLE_F_EMERG_WRITE, which is not offered. */
  configWrite(): void {}

  notify(index: number): void {
    if (index !== VirtioConsoleQueue.Receive && index !== VirtioConsoleQueue.Transmit) return;
    Atomics.or(this.kick, 0, 1 << index);
    Atomics.notify(this.kick, 0, 1);
  }

  reset(): void {}

  /**
   * Main thread: the bytes of every buffer the driver queued for
   * transmission, in order, each buffer returned to the driver. Stops early
   * once `limit` bytes are taken so a flood cannot hold the event loop.
   */
  transmit(limit = 1 << 20): Uint8Array {
    const chunks: Uint8Array[] = [];
    let total = 0;
    this.serve(VirtioConsoleQueue.Transmit, (q) => {
      let pushed = 0;
      while (total < limit) {
        const chain = q.pop();
        if (!chain) break;
        for (const v of chainViews(this.ctx.ram, chain.readable, 0, Math.min(chain.readableLength, VIRTIO_CONSOLE_MAX_TX))) {
          chunks.push(v.slice());
          total += v.length;
        }
        q.push(chain.head, 0);
        pushed++;
      }
      return pushed;
    });
    return Buffer.concat(chunks, total);
  }

  /** Main thread: fills the driver's receive buffers from `bytes`; returns how many were taken (0 while it has posted none). */
  receive(bytes: Uint8Array): number {
    let taken = 0;
    this.serve(VirtioConsoleQueue.Receive, (q) => {
      let pushed = 0;
      while (taken < bytes.length) {
        const chain = q.pop();
        if (!chain) break;
        const n = writeChain(this.ctx.ram, chain.writable, 0, bytes.subarray(taken));
        q.push(chain.head, n);
        taken += n;
        pushed++;
      }
      return pushed;
    });
    return taken;
  }

  /** Runs `fn` (which returns how many chains it pushed) on queue `index` if the device is live. */
  private serve(index: number, fn: (q: SplitVirtqueue) => number): void {
    if (this.ctx.live()) serveQueue(this.ctx, index, fn);
  }
}
