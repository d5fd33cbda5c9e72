import { workerData } from 'piscina';
import { IoUring, IoUringUnavailable } from '../../kvm/io-uring.js';
import { ioThreadHost, ioThreadViews, type IoThreadData } from './io-thread.js';
import type { ServingTask } from './serving-pool.js';
import { VirtioBlk } from '../../virtio/blk.js';
import { VirtioPciTransport } from '../../virtio/pci-transport.js';
import type { BlkIoDisk, BlkServeContext } from '../../virtio/blk-serve-context.js';
import { serveSync } from '../../virtio/blk-serve-sync.js';
import { serveUring } from '../../virtio/blk-serve-uring.js';
import { PollWindow } from '../../sync/poll-window.js';
import { QueuePoller } from '../../virtio/queue-poller.js';
import { IoStat } from '../../virtio/blk.js';

/**
 * An I/O thread (a piscina worker) of the virtio-blk devices. Its one task
 * serves one disk until the VM stops. It blocks in poll(2) on the
 * notification eventfds of the queues it owns, takes validated chains,
 * carries the requests out directly between the image file and the shared
 * guest RAM, completes them into the used ring under the queue's lock and
 * raises the queue's interrupt (MSI-X vector or INTx) through its own
 * irqchip views. With io_uring (blk-serve-uring.ts) one thread keeps many
 * requests in flight; without it (blk-serve-sync.ts) it carries out one at
 * a time and wakes siblings when a slow disk builds a backlog.
 */

export type { BlkIoDisk };

export interface BlkIoData extends IoThreadData {
  readonly disks: BlkIoDisk[];
  /** The longest an idle thread polls its queues before it sleeps, in ns (0: never). */
  readonly pollNs: number;
  /** Test-only: hold every request this long (a slow disk). */
  readonly delayUs?: number;
  /** Test-only: throw once this many requests of the disk have completed. */
  readonly failAfter?: number;
}

export interface BlkServeTask extends ServingTask {
  readonly disk: number;
  /** The queues whose notifications this thread takes. */
  readonly queues: readonly number[];
}

const data = workerData as BlkIoData;
const views = ioThreadViews(data);
/** Submission entries per thread's ring: a queue's worth of requests (128) twice over. */
const RING_ENTRIES = 256;

/** Serves `task` until the stop eventfd becomes readable. */
export default function serve(task: BlkServeTask): void {
  const d = data.disks[task.disk]!;
  const host = ioThreadHost(views, task.report);
  const transport = new VirtioPciTransport(d.transport, host, (ctx) => new VirtioBlk(d.blk, ctx));
  const stats = new Int32Array(d.blk.io);
  const ctx: BlkServeContext = {
    transport,
    d,
    disk: { fd: d.fd, size: d.blk.size, readonly: d.blk.readonly, id: d.id },
    queues: task.queues,
    stopFd: task.stopFd,
    ram: views.ram,
    control: views.control,
    stats,
    log: host.vm.log,
    // Threads that own no queue (a disk's assistants) wait for tokens only: nothing to poll.
    ...(data.pollNs > 0 && task.queues.length
      ? {
          poller: new QueuePoller({
            owner: transport,
            queues: task.queues,
            window: new PollWindow({ maxNs: data.pollNs }),
            paused: () => views.control.pauseRequested,
            onCaught: () => Atomics.add(stats, IoStat.PollWakes, 1),
          }),
        }
      : {}),
    ...(data.delayUs !== undefined ? { delayUs: data.delayUs } : {}),
    ...(data.failAfter !== undefined ? { failAfter: data.failAfter } : {}),
  };
  try {
    const ring = d.aio === 'io_uring' ? openRing(ctx) : undefined;
    if (ring) serveUring(ctx, ring);
    else serveSync(ctx);
  } finally {
    task.report.close();
  }
}

/** This thread's ring, or undefined (and a warning) where the kernel will not give it one although the pool's probe succeeded (memory limits). */
function openRing(ctx: BlkServeContext): IoUring | undefined {
  try {
    return IoUring.open(RING_ENTRIES);
  } catch (e) {
    if (!(e instanceof IoUringUnavailable)) throw e;
    ctx.log('warn', `virtio-blk ${ctx.d.path}: an I/O thread serves its queues synchronously: ${e.reason}`);
    return undefined;
  }
}

