import { availableParallelism } from 'node:os';
import { native, k } from '../../kvm/addon.js';
import type { BlkIoData, BlkIoDisk, BlkServeTask } from './blk-io-worker.js';
import { ServingPool, type LogLevel } from './serving-pool.js';
import type { StopReason } from '../../devices/device.js';

export const MAX_IO_THREADS = 16;

/**
 * Threads per disk unless the VM says otherwise: a core is left to the
 * vCPUs and the main thread (on a 2-core host extra I/O threads only
 * compete for the same core), and 4 cover the default 4 queues.
 */
export function defaultIoThreads(): number {
  return Math.min(4, Math.max(1, availableParallelism() - 1));
}

/** What the VM gives the pool: BlkIoData less what the pool makes itself. */
export type BlkIoPlan = Omit<BlkIoData, 'disks'> & { readonly disks: readonly Omit<BlkIoDisk, 'assistFd'>[] };

/**
 * The virtio-blk I/O threads: a serving pool whose every task serves one
 * disk for the VM's life (blk-io-worker.ts). Each disk gets
 * `threadsPerDisk` threads; queue q's notifications wake thread q mod that,
 * and a thread that finds a backlog wakes a sibling through the disk's
 * assist eventfd, so up to that many requests of one disk run at once.
 * Between requests every thread blocks in poll(2).
 */
export interface BlkIoPoolOptions {
  readonly plan: BlkIoPlan;
  /** Threads per disk (default defaultIoThreads()). */
  readonly threadsPerDisk?: number;
  readonly log: (level: LogLevel, message: string) => void;
  /** A device on an I/O thread asked for the VM to stop. */
  readonly requestStop: (reason: StopReason) => void;
  /** An I/O thread threw (its queues are no longer served). */
  readonly failed: (error: Error) => void;
}

export class BlkIoPool {
  private readonly pool: ServingPool<BlkServeTask>;
  private readonly assistFds: number[];

  constructor(o: BlkIoPoolOptions) {
    const perDisk = o.threadsPerDisk ?? defaultIoThreads();
    const tasks = o.plan.disks.flatMap((d, disk) =>
      Array.from({ length: perDisk }, (_, g) => ({ disk, queues: Array.from({ length: d.blk.queues }, (_, q) => q).filter((q) => q % perDisk === g) })),
    );
    this.assistFds = o.plan.disks.map(() => native.eventfd(0, k('EFD_SEMAPHORE') | k('EFD_NONBLOCK') | k('EFD_CLOEXEC')));
    const data: BlkIoData = { ...o.plan, disks: o.plan.disks.map((d, i) => ({ ...d, assistFd: this.assistFds[i]! })) };
    this.pool = new ServingPool<BlkServeTask>({ filename: new URL('./blk-io-worker.js', import.meta.url).href, workerData: data, tasks, log: o.log, requestStop: o.requestStop, failed: o.failed });
  }

  /** Stops the I/O threads (each finishes the request in hand) and ends the pool. */
  async close(): Promise<void> {
    await this.pool.close();
    for (const fd of this.assistFds) native.close(fd);
  }
}
