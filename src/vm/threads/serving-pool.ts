import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { native, k } from '../../kvm/addon.js';
import type { StopReason } from '../../devices/device.js';
import type { LogLevel, ThreadReport } from './thread-control.js';

/**
 * A piscina pool of I/O threads whose every task serves its share of the
 * VM's devices for the VM's life (virtio-blk disks, virtio-net queue
 * pairs): one task per thread, each blocking in poll(2) between requests
 * and returning once the pool's stop eventfd becomes readable. Log lines
 * and stop requests come back over a MessagePort per task.
 */

/** What every serving task gets from the pool besides its own fields. */
export interface ServingTask {
  /** Readable once the pool is closing (never read by the tasks, so every thread sees it). */
  readonly stopFd: number;
  /** Where log lines and stop requests go (ThreadReport messages): the VM's log and its stop are the main thread's. */
  readonly report: MessagePort;
}

export type { LogLevel };

export interface ServingPoolOptions<T extends ServingTask> {
  /** The worker module (its default export serves one task). */
  readonly filename: string;
  readonly workerData: unknown;
  readonly tasks: readonly Omit<T, keyof ServingTask>[];
  readonly log: (level: LogLevel, message: string) => void;
  /** A task asked for the VM to stop (a device's requestStop). */
  readonly requestStop: (reason: StopReason) => void;
  /** A task threw (what it served is no longer served). */
  readonly failed: (error: Error) => void;
}

export class ServingPool<T extends ServingTask> {
  private readonly pool: Piscina<T, void>;
  private readonly stopFd: number;
  private readonly served: Promise<void>[] = [];

  constructor(o: ServingPoolOptions<T>) {
    this.stopFd = native.eventfd(0, k('EFD_CLOEXEC'));
    this.pool = new Piscina<T, void>({
      filename: o.filename,
      workerData: o.workerData,
      minThreads: o.tasks.length,
      maxThreads: o.tasks.length,
      // One serving task per thread: each occupies its thread for the VM's life.
      concurrentTasksPerWorker: 1,
      idleTimeout: Infinity,
    });
    for (const t of o.tasks) {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (m: ThreadReport) => (m.type === 'stop' ? o.requestStop(m.reason) : o.log(m.level, m.message)));
      port1.unref();
      const task = { ...t, stopFd: this.stopFd, report: port2 } as T;
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

  /** Stops the tasks (each finishes what it has in hand) and ends the pool. */
  async close(): Promise<void> {
    native.eventfdWrite(this.stopFd, 1);
    await Promise.all(this.served);
    await this.pool.destroy();
    native.close(this.stopFd);
  }
}
