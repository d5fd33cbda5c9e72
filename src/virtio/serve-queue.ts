import type { VirtioContext } from './device.js';
import { VirtqueueError, type SplitVirtqueue } from './queue.js';

/** What serving a queue needs of its device: the transport, or a model's context. */
export type QueueOwner = Pick<VirtioContext, 'queues' | 'fail' | 'interruptQueue'>;

/**
 * Runs `fn` on queue `index` of `owner` under the queue's lock and, if it
 * returns a nonzero count of used buffers, interrupts the driver when it
 * asked for that. Every ring access a device makes goes through here, so
 * a malformed ring or chain (VirtqueueError), on whichever thread meets
 * it, means DEVICE_NEEDS_RESET for this device only: never an exception
 * that stops the VM. Returns false when the device failed.
 */
export function serveQueue(owner: QueueOwner, index: number, fn: (q: SplitVirtqueue) => number): boolean {
  const q = owner.queues[index];
  if (!q) return false;
  let interrupt = false;
  try {
    q.withLock(() => {
      interrupt = fn(q) > 0 && q.needsInterrupt();
    });
  } catch (e) {
    if (!(e instanceof VirtqueueError)) throw e;
    owner.fail(`queue ${index}: ${e.message}`);
    return false;
  }
  if (interrupt) owner.interruptQueue(index);
  return true;
}
