import type { VmControl } from '../devices/device.js';
import type { VmControlBlock } from '../vcpu/control.js';
import type { GuestRanges } from './guest-ranges.js';
import type { BlkDisk } from './blk-request.js';
import { IoStat, type BlkAio, type VirtioBlkState } from './blk.js';
import type { VirtioPciState, VirtioPciTransport } from './pci-transport.js';
import { serveQueue } from './serve-queue.js';
import { native } from '../kvm/addon.js';
import type { QueuePoller } from './queue-poller.js';
import type { DescriptorChain } from './queue.js';

/** One disk as its I/O threads see it (vm/threads/blk-io-worker.ts). */
export interface BlkIoDisk {
  readonly transport: VirtioPciState;
  readonly blk: VirtioBlkState;
  /** The image file, opened by the main thread (descriptors are process-wide). */
  readonly fd: number;
  readonly id: string;
  /** The image's path, for messages. */
  readonly path: string;
  /** How its requests reach the file: decided by the main thread (blk-io-pool.ts). */
  readonly aio: BlkAio;
  /** EFD_SEMAPHORE eventfd: each token asks one more thread to take chains from this disk's queues. */
  readonly assistFd: number;
}

/**
 * What an I/O thread's serving loop works with, whichever way it carries
 * requests out (blk-serve-sync.ts, blk-serve-uring.ts), and the
 * bookkeeping both do the same way.
 */
export interface BlkServeContext {
  readonly transport: VirtioPciTransport;
  readonly d: BlkIoDisk;
  readonly disk: BlkDisk;
  /** The queues whose notification eventfds this thread waits on. */
  readonly queues: readonly number[];
  /** Readable once the pool is closing. */
  readonly stopFd: number;
  readonly ram: GuestRanges;
  readonly control: VmControlBlock;
  /** The disk's IoStat counters. */
  readonly stats: Int32Array;
  readonly log: VmControl['log'];
  /** Polls the queues before sleeping (VmOptions ioPollNs); absent: sleep at once. */
  readonly poller?: QueuePoller;
  /** Test knob: hold every request this long. */
  readonly delayUs?: number;
  /** Test knob: throw once this many requests of the disk have completed. */
  readonly failAfter?: number;
}

/** Records which engine this thread serves its disk with (IoStat.Engines bits), for the VM's stats. */
export function noteEngine(ctx: BlkServeContext, engine: number): void {
  Atomics.or(ctx.stats, IoStat.Engines, engine);
}

/** Counts a request as being carried out, keeping the disk's high-water mark. */
export function noteStarted(stats: Int32Array): void {
  const inFlight = Atomics.add(stats, IoStat.InFlight, 1) + 1;
  for (let max = Atomics.load(stats, IoStat.MaxInFlight); inFlight > max; max = Atomics.load(stats, IoStat.MaxInFlight)) {
    if (Atomics.compareExchange(stats, IoStat.MaxInFlight, max, inFlight) === max) break;
  }
}

/** Logs the first file error of the disk, from whichever thread meets it first: a full disk fails every write after. */
export function fileErrorReporter(ctx: BlkServeContext): (what: string, e: Error) => void {
  return (what, e) => {
    if (Atomics.add(ctx.stats, IoStat.FileErrors, 1) === 0) ctx.log('error', `virtio-blk ${ctx.d.path}: a ${what} failed on the image file (${e.message}); the guest gets I/O errors (reported once)`);
  };
}

/** The blkFailAfter test knob: a thread that throws, as a nodevisor bug would. */
export function failIfAsked(ctx: BlkServeContext): void {
  if (ctx.failAfter !== undefined && Atomics.load(ctx.stats, IoStat.Completed) >= ctx.failAfter) throw new Error('failing as the blkFailAfter test knob asks');
}

/**
 * Returns finished requests of queue `index` to the driver under one
 * acquisition of its lock, with at most one interrupt. A request taken
 * before a reset (another epoch) is dropped.
 */
export function completeRequests(ctx: BlkServeContext, index: number, done: ReadonlyArray<{ head: number; used: number; epoch: number }>): void {
  Atomics.sub(ctx.stats, IoStat.InFlight, done.length);
  serveQueue(ctx.transport, index, (q) => {
    let pushed = 0;
    for (const r of done) {
      q.endService();
      if (q.epoch !== r.epoch || !q.ready) continue;
      q.push(r.head, r.used);
      pushed++;
    }
    Atomics.add(ctx.stats, IoStat.Completed, pushed);
    return pushed;
  });
}

/** Takes up to `max` chains of queue `index` under one acquisition of its lock; each counts as in service until completed. */
export function takeChains(ctx: BlkServeContext, index: number, max: number): { chains: DescriptorChain[]; epoch: number; more: boolean } {
  const chains: DescriptorChain[] = [];
  let epoch = 0;
  let more = false;
  serveQueue(ctx.transport, index, (q) => {
    epoch = q.epoch;
    const arm = ctx.poller?.arming ?? true;
    for (let chain = chains.length < max ? q.pop(arm) : null; chain; chain = chains.length < max ? q.pop(arm) : null) {
      q.beginService();
      chains.push(chain);
    }
    more = chains.length > 0 && q.hasAvailable();
    return 0;
  });
  return { chains, epoch, more };
}

/** Waits until the thread has something to do: poll(2)'s readiness bits over `fds` (the queues' eventfds first; see QueuePoller.wait). */
export function waitForWork(ctx: BlkServeContext, fds: readonly number[], mayPoll = true): number {
  return ctx.poller ? ctx.poller.wait(fds, mayPoll) : native.pollReadable(fds, -1);
}
