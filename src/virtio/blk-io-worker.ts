import { workerData } from 'piscina';
import { native } from '../kvm/addon.js';
import { monotonicClock } from '../sync/clock.js';
import { ioThreadHost, ioThreadViews, type IoThreadData } from './io-thread.js';
import type { ServingTask } from './serving-pool.js';
import { executeBlkRequest, type BlkDisk } from './blk-request.js';
import { VirtioBlk, IoStat, type VirtioBlkState } from './blk.js';
import { VirtioPciTransport, type VirtioPciState } from './pci-transport.js';
import { VirtqueueError, type DescriptorChain } from './queue.js';

/**
 * An I/O thread (a piscina worker) of the virtio-blk devices. Its one task
 * serves one disk until the VM stops. It blocks in poll(2) on the
 * notification eventfds of the queues it owns, and on the disk's "assist"
 * eventfd; it takes one validated chain at a time, carries the request out
 * directly between the image file and the shared guest RAM, completes it
 * into the used ring under the queue's lock and raises the queue's
 * interrupt (MSI-X vector or INTx) through its own irqchip views. While
 * requests take long (a slow disk), a thread that takes a chain and sees
 * more waiting posts an assist token, so an idle sibling joins in and one
 * queue's requests run in parallel. Fast requests (the page cache) are
 * not worth a sibling's wake-up, which on a small host also competes for
 * the same core: the thread keeps them to itself.
 */

export interface BlkIoDisk {
  readonly transport: VirtioPciState;
  readonly blk: VirtioBlkState;
  /** The image file, opened by the main thread (descriptors are process-wide). */
  readonly fd: number;
  readonly id: string;
  /** EFD_SEMAPHORE eventfd: each token asks one more thread to take chains from this disk's queues. */
  readonly assistFd: number;
}

export interface BlkIoData extends IoThreadData {
  readonly disks: BlkIoDisk[];
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
const ram = views.ram;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
/** A request that takes longer than this (smoothed) is worth waking a sibling for: several thread wake-ups. */
export const ASSIST_AFTER_NS = 100_000;

/** Serves `task` until the stop eventfd becomes readable. */
export default function serve(task: BlkServeTask): void {
  const d = data.disks[task.disk]!;
  const transport = new VirtioPciTransport(d.transport, ioThreadHost(views, task.log), (ctx) => new VirtioBlk(d.blk, ctx));
  const server = new QueueServer(transport, d);
  const fds = [...task.queues.map((q) => d.blk.eventfds[q]!), d.assistFd, task.stopFd];
  const assistBit = 1 << task.queues.length;
  const stopBit = assistBit << 1;
  try {
    for (;;) {
      const ready = native.pollReadable(fds, -1);
      if (ready & stopBit) return;
      task.queues.forEach((q, i) => {
        if (!(ready & (1 << i))) return;
        transport.countEventfdNotifications(native.eventfdRead(fds[i]!));
        // The exit path checks this before signalling; KVM cannot.
        if (transport.accepting(q)) server.drain(q);
      });
      // A token (one per read: EFD_SEMAPHORE) says some queue of this disk has a backlog; siblings race for it.
      if (ready & assistBit && native.eventfdRead(d.assistFd)) {
        for (let q = 0; q < transport.queues.length; q++) if (transport.accepting(q)) server.drain(q);
      }
    }
  } finally {
    task.log.close();
  }
}

class QueueServer {
  private readonly disk: BlkDisk;
  private readonly stats: Int32Array;
  /** Smoothed time this thread's requests take, ns. */
  private serviceNs = 0;

  constructor(
    private readonly transport: VirtioPciTransport,
    private readonly d: BlkIoDisk,
  ) {
    this.disk = { fd: d.fd, size: d.blk.size, readonly: d.blk.readonly, id: d.id };
    this.stats = new Int32Array(d.blk.io);
  }

  /** Carries out queue `index`'s requests one at a time until it has none, asking for help while more wait. */
  drain(index: number): void {
    const q = this.transport.queues[index]!;
    for (;;) {
      let chain: DescriptorChain | null = null;
      let epoch = 0;
      let more = false;
      try {
        q.withLock(() => {
          epoch = q.epoch;
          chain = q.pop();
          more = chain !== null && q.hasAvailable();
        });
      } catch (e) {
        if (!(e instanceof VirtqueueError)) throw e;
        this.transport.fail(e.message);
        return;
      }
      if (!chain) return;
      if (more && this.serviceNs > ASSIST_AFTER_NS) native.eventfdWrite(this.d.assistFd, 1);
      const started = monotonicClock.nowNs();
      this.execute(index, chain, epoch);
      this.serviceNs += (monotonicClock.nowNs() - started - this.serviceNs) / 4;
    }
  }

  private execute(index: number, chain: DescriptorChain, epoch: number): void {
    const q = this.transport.queues[index]!;
    const s = this.stats;
    const inFlight = Atomics.add(s, IoStat.InFlight, 1) + 1;
    for (let max = Atomics.load(s, IoStat.MaxInFlight); inFlight > max; max = Atomics.load(s, IoStat.MaxInFlight)) {
      if (Atomics.compareExchange(s, IoStat.MaxInFlight, max, inFlight) === max) break;
    }
    if (data.delayUs) Atomics.wait(sleeper, 0, 0, data.delayUs / 1000);
    if (data.failAfter !== undefined && Atomics.load(s, IoStat.Completed) >= data.failAfter) throw new Error('failing as the blkFailAfter test knob asks');
    const written = executeBlkRequest(ram, this.disk, chain);
    Atomics.sub(s, IoStat.InFlight, 1);
    // Complete it at once: the driver may go on. A reset since the pop drops it.
    const interrupt = q.withLock(() => {
      if (q.epoch !== epoch || !q.ready) return false;
      q.push(chain.head, written);
      Atomics.add(s, IoStat.Completed, 1);
      return q.needsInterrupt();
    });
    if (interrupt) this.transport.interruptQueue(index);
  }
}
