import { createRequire } from 'node:module';
import type { AccessSize } from '../devices/device.js';
import { VirtioDeviceId } from './constants.js';
import type { VirtioContext, VirtioDeviceModel, VirtioDeviceType } from './device.js';
import { chainViews } from './chain-io.js';
import { serveQueue } from './serve-queue.js';

/**
 * virtio-rng, the entropy device (VIRTIO 1.2, 5.4): one request queue of
 * device-writable buffers that the device fills from the host's CSPRNG
 * (crypto.randomFillSync). No features, no configuration space. Requests
 * are served on the notifying vCPU: filling a few hundred bytes costs less
 * than handing them to another thread.
 */
export const VIRTIO_RNG_TYPE: VirtioDeviceType = { deviceId: VirtioDeviceId.Entropy, classCode: 0xff0000, queueSizes: [64] };
/** Bytes served per request at most; more would let one request hold the vCPU long. */
export const VIRTIO_RNG_MAX_REQUEST = 64 * 1024;

// Loaded on the first request, not with the module: every vCPU thread loads
// this module, and node:crypto costs each thread that loads it ~0.5 MiB.
let randomFillSync: ((view: Uint8Array) => void) | undefined;
function randomFill(view: Uint8Array): void {
  randomFillSync ??= (createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')).randomFillSync;
  randomFillSync(view);
}

export class VirtioRng implements VirtioDeviceModel {
  readonly name = 'virtio-rng';
  readonly features = 0n;
  readonly configSize = 0;

  constructor(private readonly ctx: VirtioContext) {}

  configRead(_offset: number, _size: AccessSize): number {
    return 0;
  }

  configWrite(): void {}

  reset(): void {}

  notify(index: number): void {
    serveQueue(this.ctx, index, (q) => {
      let served = 0;
      for (let chain = q.pop(); chain; chain = q.pop()) {
        let written = 0;
        for (const view of chainViews(this.ctx.ram, chain.writable, 0, Math.min(chain.writableLength, VIRTIO_RNG_MAX_REQUEST))) {
          randomFill(view);
          written += view.length;
        }
        q.push(chain.head, written);
        served++;
      }
      return served;
    });
  }
}
