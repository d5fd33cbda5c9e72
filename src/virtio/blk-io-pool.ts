import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { native, k } from '../kvm/addon.js';
import type { BlkIoData, BlkServeTask } from './blk-io-worker.js';

/**
 * The virtio-blk I/O threads: a piscina pool whose every task serves a
 * group of one disk's queues for the VM's life (blk-io-worker.ts). A disk
 * with n queues gets min(n, threadsPerDisk) threads, queue q on thread
 * q mod that, so the queues of different vCPUs run in parallel while each
 * thread blocks in poll(2) on its queues' eventfds between requests.
 */
export interface BlkIoPoolOptions {
  readonly data: BlkIoData;
  /** Threads per disk at most (default 4). */
  readonly threadsPerDisk?: number;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class BlkIoPool {
  private readonly pool: Piscina<BlkServeTask, void>;
  private readonly stopFd: number;
  private readonly served: Promise<void>[] = [];

  constructor(o: BlkIoPoolOptions) {
    const perDisk = o.threadsPerDisk ?? 4;
    const groups = o.data.disks.flatMap((d, disk) => {
      const n = Math.min(d.blk.queues, perDisk);
      return Array.from({ length: n }, (_, g) => ({ disk, queues: Array.from({ length: d.blk.queues }, (_, q) => q).filter((q) => q % n === g) }));
    });
    this.stopFd = native.eventfd(0, k('EFD_CLOEXEC'));
    this.pool = new Piscina<BlkServeTask, void>({
      filename: new URL('./blk-io-worker.js', import.meta.url).href,
      workerData: o.data,
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
          (e: Error) => o.log('error', `virtio-blk I/O thread failed: ${e.stack ?? e.message}`),
        ),
      );
    }
  }

  /** Stops the I/O threads (each finishes the request in hand) and ends the pool. */
  async close(): Promise<void> {
    native.eventfdWrite(this.stopFd, 1);
    await Promise.all(this.served);
    await this.pool.destroy();
    native.close(this.stopFd);
  }
}
