import { Piscina } from 'piscina';
import type { VirtioPciTransport } from './pci-transport.js';
import { VirtqueueError } from './queue.js';
import { native, type FdWatch } from '../kvm/addon.js';
import type { BlkIoData, BlkTask, BlkTaskResult } from './blk-io-worker.js';

/**
 * The main thread's part of virtio-blk: learns of notifications from each
 * queue's ioeventfd (a libuv watch; KVM signals it without a guest exit)
 * or, without one, by waiting (without blocking the event loop) on the
 * disk's kick word that the notifying vCPU sets; takes the chains the
 * driver made available, validated, and hands each to the piscina I/O
 * pool as one task, so requests of one queue and of different queues run
 * in parallel.
 */
export interface BlkDispatcherOptions {
  readonly data: BlkIoData;
  /** Main-thread transports of the disks, index-aligned with `data.disks`. */
  readonly transports: readonly VirtioPciTransport[];
  /** I/O threads (default 4: requests block in pread/pwrite/fdatasync). */
  readonly threads?: number;
  readonly log: (level: 'warn' | 'error', message: string) => void;
}

export class BlkDispatcher {
  private readonly pool: Piscina<BlkTask, BlkTaskResult>;
  private running = true;
  private readonly loops: Promise<void>[];
  private readonly watches: FdWatch[] = [];

  constructor(private readonly o: BlkDispatcherOptions) {
    const threads = o.threads ?? 4;
    this.pool = new Piscina<BlkTask, BlkTaskResult>({
      filename: new URL('./blk-io-worker.js', import.meta.url).href,
      workerData: o.data,
      minThreads: threads,
      maxThreads: threads,
      // Requests never wait in a worker's own queue while another is idle.
      concurrentTasksPerWorker: 1,
      idleTimeout: Infinity,
    });
    this.loops = o.data.disks.map((d, i) => this.serve(i, new Int32Array(d.blk.kick)));
    o.transports.forEach((transport, disk) => {
      for (let q = 0; q < transport.queues.length; q++) {
        const fd = transport.notifyEventfd(q);
        if (fd === undefined) continue;
        this.watches.push(
          native.watchReadable(fd, () => {
            transport.countEventfdNotifications(native.eventfdRead(fd));
            // The vCPU path checks this before kicking; KVM cannot.
            if (this.running && transport.accepting(q)) this.drain(disk, transport, q);
          }),
        );
      }
    });
  }

  /** Stops taking requests and ends the pool (in-flight requests finish first). */
  async close(): Promise<void> {
    this.running = false;
    for (const w of this.watches.splice(0)) native.unwatch(w);
    for (const d of this.o.data.disks) {
      const kick = new Int32Array(d.blk.kick);
      Atomics.or(kick, 0, 1 << 31);
      Atomics.notify(kick, 0);
    }
    await Promise.all(this.loops);
    await this.pool.destroy();
  }

  private async serve(disk: number, kick: Int32Array): Promise<void> {
    const transport = this.o.transports[disk]!;
    while (this.running) {
      const wait = Atomics.waitAsync(kick, 0, 0);
      if (wait.async) await wait.value;
      const pending = Atomics.exchange(kick, 0, 0);
      if (!this.running) return;
      for (let q = 0; q < transport.queues.length; q++) if (pending & (1 << q)) this.drain(disk, transport, q);
    }
  }

  private drain(disk: number, transport: VirtioPciTransport, index: number): void {
    const q = transport.queues[index]!;
    const tasks: BlkTask[] = [];
    try {
      q.withLock(() => {
        const epoch = q.epoch;
        for (let chain = q.pop(); chain; chain = q.pop()) tasks.push({ disk, queue: index, epoch, chain });
      });
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      transport.fail(e.message);
    }
    for (const task of tasks) {
      this.pool.run(task).then(
        (failure) => failure && transport.fail(failure),
        (e: Error) => this.o.log('error', `virtio-blk I/O worker failed: ${e.stack ?? e.message}`),
      );
    }
  }
}
