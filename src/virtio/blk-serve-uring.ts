import { native } from '../kvm/addon.js';
import type { IoUring } from '../kvm/io-uring.js';
import { BlkEngine } from './blk.js';
import { BlkUringEngine, type BlkCompletion } from './blk-uring.js';
import { completeRequests, failIfAsked, fileErrorReporter, noteEngine, noteStarted, takeChains, waitForWork, type BlkServeContext } from './blk-serve-context.js';

/**
 * How an I/O thread serves its queues through io_uring: it takes every
 * chain its queues hold (as long as the ring has room), queues their file
 * operations, submits them in one system call, and completes what is done
 * into the used rings, a queue's batch under one lock with at most one
 * interrupt. It waits in poll(2) on the queues' eventfds, the stop eventfd
 * and the ring itself (readable while completions wait), so one thread
 * keeps a whole queue depth in flight and needs no siblings' help; with
 * nothing in flight it may poll the queues a while first (waitForWork).
 */

/** Serves the context's queues through `ring` until the stop eventfd becomes readable; then waits for what is in flight and closes the ring. */
export function serveUring(ctx: BlkServeContext, ring: IoUring): void {
  noteEngine(ctx, BlkEngine.Uring);
  const { transport, d } = ctx;
  const engine = new BlkUringEngine(ring, ctx.ram, ctx.disk, { delayNs: (ctx.delayUs ?? 0) * 1000, onFileError: fileErrorReporter(ctx) });
  const fds = [...ctx.queues.map((q) => d.blk.eventfds[q]!), ctx.stopFd, ring.fd];
  const stopBit = 1 << ctx.queues.length;
  /** Queues left with chains when the ring ran out of room. */
  const starved = new Set<number>();
  let started = 0;

  const complete = (done: readonly BlkCompletion[]): void => {
    if (!done.length) return;
    const byQueue = new Map<number, BlkCompletion[]>();
    for (const c of done) byQueue.set(c.queue, [...(byQueue.get(c.queue) ?? []), c]);
    for (const [q, list] of byQueue) completeRequests(ctx, q, list);
  };

  const drain = (index: number): void => {
    starved.delete(index);
    // A paused VM's disks change no more (a snapshot relies on it); resume() notifies every queue again.
    while (transport.accepting(index) && !ctx.control.pauseRequested) {
      if (!engine.hasRoom) {
        starved.add(index);
        return;
      }
      const room = ctx.failAfter === undefined ? Infinity : Math.max(1, ctx.failAfter - started);
      const { chains, epoch } = takeChains(ctx, index, room);
      if (!chains.length) return;
      for (const chain of chains) {
        if (ctx.failAfter !== undefined && started >= ctx.failAfter) {
          // Let what was started finish first, so the knob's count is exact.
          complete(engine.drain());
          failIfAsked(ctx);
        }
        noteStarted(ctx.stats);
        started++;
        engine.start(index, chain, epoch);
      }
    }
  };

  try {
    for (;;) {
      // Polling sees new chains, not completions: only while the kernel holds nothing of ours.
      const ready = waitForWork(ctx, fds, engine.inFlight === 0);
      if (ready & stopBit) {
        complete(engine.drain());
        return;
      }
      ctx.queues.forEach((q, i) => {
        if (!(ready & (1 << i))) return;
        transport.countEventfdNotifications(native.eventfdRead(fds[i]!));
        // The exit path checks this before signalling; KVM cannot.
        if (transport.accepting(q)) drain(q);
      });
      // Completions free room: queues that had to wait get their turn, until nothing moves.
      for (let done = engine.settle(); done.length; done = engine.settle()) {
        complete(done);
        for (const q of [...starved]) drain(q);
      }
    }
  } finally {
    ring.close();
  }
}
