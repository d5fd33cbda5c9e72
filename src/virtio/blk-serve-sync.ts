import { native } from '../kvm/addon.js';
import { monotonicClock } from '../sync/clock.js';
import { executeBlkRequest } from './blk-request.js';
import { BlkEngine } from './blk.js';
import { completeRequests, failIfAsked, fileErrorReporter, noteEngine, noteStarted, takeChains, waitForWork, type BlkServeContext } from './blk-serve-context.js';
import type { DescriptorChain } from './queue.js';

/**
 * The synchronous way an I/O thread serves its queues, where io_uring is
 * unavailable or the disk asks for it (aio=sync): one request at a time,
 * pread/pwrite between the image and guest RAM. While requests take long
 * (a slow disk), a thread that takes a chain and sees more waiting posts
 * an assist token, so an idle sibling joins in and one queue's requests
 * run in parallel. Fast requests (the page cache) are not worth a
 * sibling's wake-up, which on a small host also competes for the same
 * core: the thread keeps them to itself.
 */

/** A request that takes longer than this (smoothed) is worth waking a sibling for: several thread wake-ups. */
export const ASSIST_AFTER_NS = 100_000;

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Serves the context's queues until its stop eventfd becomes readable. */
export function serveSync(ctx: BlkServeContext): void {
  noteEngine(ctx, BlkEngine.Sync);
  const server = new SyncQueueServer(ctx);
  const { transport, d } = ctx;
  const fds = [...ctx.queues.map((q) => d.blk.eventfds[q]!), d.assistFd, ctx.stopFd];
  const assistBit = 1 << ctx.queues.length;
  const stopBit = assistBit << 1;
  for (;;) {
    const ready = waitForWork(ctx, fds);
    if (ready & stopBit) return;
    ctx.queues.forEach((q, i) => {
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
}

class SyncQueueServer {
  private readonly onFileError: (what: string, e: Error) => void;
  /** Smoothed time this thread's requests take, ns. */
  private serviceNs = 0;

  constructor(private readonly ctx: BlkServeContext) {
    this.onFileError = fileErrorReporter(ctx);
  }

  /** Carries out queue `index`'s requests one at a time until it has none, asking for help while more wait. */
  drain(index: number): void {
    const ctx = this.ctx;
    // A request that failed the device (DEVICE_NEEDS_RESET) ends the drain
    // too; so does a pause: a paused VM's disks change no more (a snapshot
    // relies on it), and resume() notifies every queue again.
    while (ctx.transport.accepting(index) && !ctx.control.pauseRequested) {
      const { chains, epoch, more } = takeChains(ctx, index, 1);
      const chain = chains[0];
      if (!chain) return;
      if (more && this.serviceNs > ASSIST_AFTER_NS) native.eventfdWrite(ctx.d.assistFd, 1);
      const started = monotonicClock.nowNs();
      this.execute(index, chain, epoch);
      this.serviceNs += (monotonicClock.nowNs() - started - this.serviceNs) / 4;
    }
  }

  private execute(index: number, chain: DescriptorChain, epoch: number): void {
    const ctx = this.ctx;
    noteStarted(ctx.stats);
    if (ctx.delayUs) Atomics.wait(sleeper, 0, 0, ctx.delayUs / 1000);
    failIfAsked(ctx);
    const used = executeBlkRequest(ctx.ram, ctx.disk, chain, this.onFileError);
    // Complete it at once: the driver may go on. A reset since the pop drops it.
    completeRequests(ctx, index, [{ head: chain.head, used, epoch }]);
  }
}
