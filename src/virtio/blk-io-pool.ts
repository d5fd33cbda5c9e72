import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { native, k } from '../kvm/addon.js';
import type { BlkIoData, BlkIoDisk, BlkServeTask } from './blk-io-worker.js';

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
 * The virtio-blk I/O threads: a piscina pool whose every task serves one
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
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** An I/O thread threw (its queues are no longer served). */
  readonly failed: (error: Error) => void;
}

export class BlkIoPool {
  private readonly pool: Piscina<BlkServeTask, void>;
  private readonly stopFd: number;
  private readonly assistFds: number[];
  private readonly served: Promise<void>[] = [];

  constructor(o: BlkIoPoolOptions) {
    const perDisk = o.threadsPerDisk ?? defaultIoThreads();
    const groups = o.plan.disks.flatMap((d, disk) =>
      Array.from({ length: perDisk }, (_, g) => ({ disk, queues: Array.from({ length: d.blk.queues }, (_, q) => q).filter((q) => q % perDisk === g) })),
    );
    this.stopFd = native.eventfd(0, k('EFD_CLOEXEC'));
    this.assistFds = o.plan.disks.map(() => native.eventfd(0, k('EFD_SEMAPHORE') | k('EFD_NONBLOCK') | k('EFD_CLOEXEC')));
    const data: BlkIoData = { ...o.plan, disks: o.plan.disks.map((d, i) => ({ ...d, assistFd: this.assistFds[i]! })) };
    this.pool = new Piscina<BlkServeTask, void>({
      filename: new URL('./blk-io-worker.js', import.meta.url).href,
      workerData: data,
      minThreads: groups.length,
      maxThreads: groups.length,
      // One serving task per thread: each occupies its thread for the VM's life.
      concurrentTasksPerWorker: 1,
      idleTimeout: Infinity,
    });
    for (const g of groups) {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (m: { level: 'info' | 'warn' | 'error'; message: string }) => o.log(m.level, m.message));
      port1.unref();
      const task: BlkServeTask = { ...g, stopFd: this.stopFd, log: port2 };
      this.served.push(
        this.pool.run(task, { transferList: [port2] }).then(
          () => port1.close(),
          (e: Error) => {
            port1.close();
            o.failed(e);
          },
        ),
      );
    }
  }

  /** Stops the I/O threads (each finishes the request in hand) and ends the pool. */
  async close(): Promise<void> {
    native.eventfdWrite(this.stopFd, 1);
    await Promise.all(this.served);
    await this.pool.destroy();
    for (const fd of [this.stopFd, ...this.assistFds]) native.close(fd);
  }
}
