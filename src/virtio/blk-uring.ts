import { uringError, type IoUring, type IoUringCompletion } from '../kvm/io-uring.js';
import { errnoCode } from '../kvm/errors.js';
import type { GuestRanges } from './guest-ranges.js';
import type { DescriptorChain } from './queue.js';
import { cannotPunch, describeBlkRequest, finishBlkRequest, planBlkRequest, punchHoleMode, ZEROES, type BlkDisk, type BlkFileOp, type BlkPlan } from './blk-request.js';

/**
 * virtio-blk requests carried out through an io_uring ring: many in flight
 * from one thread, where the synchronous path (blk-request.ts) takes one
 * at a time. The same plan (planBlkRequest) drives both, so the guest sees
 * the same bytes, statuses and used lengths whichever path ran; this file
 * turns a plan's file operations into ring operations and their
 * completions back into finished requests:
 *
 * - a read or write that comes back short goes on from where it stopped
 *   (as pread/pwrite loops do); a read that reaches the end of the file
 *   (0 bytes: the file shrank) fills the rest with zeroes;
 * - more views than one operation takes (IOV_MAX) are split across several;
 * - a hole punch the file system refuses is a no-op for discard and
 *   becomes zero writes for write-zeroes with UNMAP;
 * - any other error fails the request with IOERR, once all of its
 *   operations are back (the kernel may still be writing into its buffers
 *   until then).
 *
 * Nothing here touches a virtqueue: the caller pops chains, hands them to
 * `start`, and pushes what `settle` returns into the used rings. That keeps
 * this logic testable without KVM.
 */

/** Views per operation at most (Linux's UIO_MAXIOV). */
export const MAX_VIEWS_PER_OP = 1024;

/** What the engine needs of a ring: an IoUring, or in tests a scripted stand-in. */
export type BlkRing = Pick<IoUring, 'cqEntries' | 'readv' | 'writev' | 'fdatasync' | 'fallocate' | 'timeout' | 'submit' | 'reap'>;

/** A request finished: where its used element goes. */
export interface BlkCompletion {
  readonly queue: number;
  readonly head: number;
  readonly epoch: number;
  /** The used length (data bytes plus the status byte). */
  readonly used: number;
}

interface UringRequest {
  readonly queue: number;
  readonly chain: DescriptorChain;
  readonly epoch: number;
  readonly plan: BlkPlan;
  /** Operations queued or in the kernel. */
  outstanding: number;
  failure?: Error;
}

/** One ring operation and what is left of it. */
type UringOp =
  | { kind: 'read' | 'write'; request: UringRequest; at: number; views: Uint8Array[] }
  | { kind: 'flush'; request: UringRequest }
  | { kind: 'punch'; request: UringRequest; at: number; length: number; orZeroes: boolean }
  /** The test knob's delay before a request's operations start. */
  | { kind: 'delay'; request: UringRequest };

export interface BlkUringOptions {
  /** Hold every request this long before its file operations (test knob: a slow disk). */
  readonly delayNs?: number;
  /** The image file failed a request; `what` names the request. */
  readonly onFileError?: (what: string, e: Error) => void;
}

export class BlkUringEngine {
  private readonly ops = new Map<number, UringOp>();
  private nextId = 1;
  /** Operations queued but not yet submitted. */
  private queued = 0;
  private requestCount = 0;
  private finished: BlkCompletion[] = [];
  /** Operations the kernel may hold at once: the completion queue's size. */
  private readonly capacity: number;

  constructor(
    private readonly ring: BlkRing,
    private readonly ram: GuestRanges,
    private readonly disk: BlkDisk,
    private readonly options: BlkUringOptions = {},
  ) {
    this.capacity = ring.cqEntries;
  }

  /** Requests started and not yet finished. */
  get inFlight(): number {
    return this.requestCount;
  }

  /**
   * Whether another request should be started now. Half the completion
   * queue stays free for requests of several operations and for the
   * continuations of short transfers.
   */
  get hasRoom(): boolean {
    return this.ops.size < this.capacity / 2;
  }

  /** Plans `chain` (taken from queue `queue` in incarnation `epoch`) and queues its operations; submitted by the next `settle`. */
  start(queue: number, chain: DescriptorChain, epoch: number): void {
    const plan = planBlkRequest(this.ram, this.disk, chain);
    // Counts itself while queueing: making room may complete the operations queued first.
    const request: UringRequest = { queue, chain, epoch, plan, outstanding: 1 };
    this.requestCount++;
    if (this.options.delayNs && plan.ops.length) this.add({ kind: 'delay', request });
    else this.queueOps(request, plan.ops);
    if (--request.outstanding === 0) this.finish(request);
  }

  /**
   * Submits what is queued and takes what has completed, until nothing is
   * left to submit; with `wait`, first blocks until at least one
   * operation completes (when any is in the kernel). Returns the requests
   * that finished since the last call.
   */
  settle(wait = false): BlkCompletion[] {
    let waitFor = wait && this.ops.size > 0 ? 1 : 0;
    for (;;) {
      if (this.queued || waitFor) {
        this.queued -= this.ring.submit(waitFor);
        waitFor = 0;
      }
      const completions = this.ring.reap();
      for (const c of completions) this.complete(c);
      if (!completions.length && !this.queued) break;
    }
    const out = this.finished;
    this.finished = [];
    return out;
  }

  /** Waits for every request in flight and returns what finished since the last `settle`. */
  drain(): BlkCompletion[] {
    const out = this.settle();
    while (this.requestCount > 0) out.push(...this.settle(true));
    return out;
  }

  private queueOps(request: UringRequest, ops: readonly BlkFileOp[]): void {
    for (const op of ops) {
      switch (op.kind) {
        case 'read':
        case 'write':
          this.queueTransfer(request, op.kind, op.at, op.views);
          break;
        case 'flush':
          this.add({ kind: 'flush', request });
          break;
        case 'punch':
          if (op.length) this.add({ kind: 'punch', request, at: op.at, length: op.length, orZeroes: op.orZeroes });
          break;
        case 'zeroes':
          this.queueZeroes(request, op.at, op.length);
          break;
      }
    }
  }

  /** A read or write of `views` at `at`, as operations of at most MAX_VIEWS_PER_OP views. */
  private queueTransfer(request: UringRequest, kind: 'read' | 'write', at: number, views: readonly Uint8Array[]): void {
    for (let i = 0; i < views.length; i += MAX_VIEWS_PER_OP) {
      const part = views.slice(i, i + MAX_VIEWS_PER_OP);
      this.add({ kind, request, at, views: part });
      at += byteLength(part);
    }
  }

  private queueZeroes(request: UringRequest, at: number, length: number): void {
    const views: Uint8Array[] = [];
    for (let left = length; left > 0; left -= ZEROES.length) views.push(ZEROES.subarray(0, Math.min(left, ZEROES.length)));
    this.queueTransfer(request, 'write', at, views);
  }

  /** Queues `op`, making room first: submitting a full submission queue, waiting while the kernel holds `capacity` operations. */
  private add(op: UringOp): void {
    while (this.ops.size >= this.capacity) {
      this.queued -= this.ring.submit(1);
      for (const c of this.ring.reap()) this.complete(c);
    }
    const id = this.nextId;
    this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1;
    if (!this.tryQueue(op, id)) {
      this.queued -= this.ring.submit();
      if (!this.tryQueue(op, id)) throw new Error('internal: the io_uring submission queue stays full after a submit');
    }
    this.ops.set(id, op);
    this.queued++;
    op.request.outstanding++;
  }

  private tryQueue(op: UringOp, id: number): boolean {
    const fd = this.disk.fd;
    switch (op.kind) {
      case 'read':
        return this.ring.readv(fd, op.views, op.at, id);
      case 'write':
        return this.ring.writev(fd, op.views, op.at, id);
      case 'flush':
        return this.ring.fdatasync(fd, id);
      case 'punch':
        return this.ring.fallocate(fd, punchHoleMode(), op.at, op.length, id);
      case 'delay':
        return this.ring.timeout(this.options.delayNs ?? 0, id);
    }
  }

  private complete(c: IoUringCompletion): void {
    const op = this.ops.get(c.userData);
    if (!op) throw new Error(`internal: an io_uring completion for unknown operation ${c.userData}`);
    this.ops.delete(c.userData);
    // The operation's count is held until the end: continuations queued below keep the request open.
    const request = op.request;
    const res = c.result;
    switch (op.kind) {
      case 'delay':
        this.queueOps(request, request.plan.ops);
        break;
      case 'read':
      case 'write': {
        const left = byteLength(op.views);
        if (res < 0) request.failure ??= uringError(res, op.kind);
        else if (res === 0 && op.kind === 'read') zeroFill(op.views); // past the end of a file that shrank
        else if (res === 0) request.failure ??= uringError(-5, 'write'); // EIO: a write that makes no progress would loop for ever
        else if (res < left) this.add({ kind: op.kind, request, at: op.at + res, views: skipBytes(op.views, res) });
        break;
      }
      case 'flush':
        if (res < 0) request.failure ??= uringError(res, 'fdatasync');
        break;
      case 'punch':
        if (res < 0 && cannotPunch(errnoCode(uringError(res, 'fallocate')))) {
          if (op.orZeroes) this.queueZeroes(request, op.at, op.length);
        } else if (res < 0) request.failure ??= uringError(res, 'fallocate');
        break;
    }
    if (--request.outstanding === 0) this.finish(request);
  }

  private finish(request: UringRequest): void {
    const failed = request.failure !== undefined;
    if (failed) this.options.onFileError?.(describeBlkRequest(request.plan), request.failure!);
    const used = finishBlkRequest(this.ram, request.chain, request.plan, failed);
    this.requestCount--;
    this.finished.push({ queue: request.queue, head: request.chain.head, epoch: request.epoch, used });
  }
}

function byteLength(views: readonly Uint8Array[]): number {
  let n = 0;
  for (const v of views) n += v.length;
  return n;
}

/** `views` less their first `bytes` bytes. */
function skipBytes(views: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = bytes;
  for (const v of views) {
    if (skip >= v.length) {
      skip -= v.length;
      continue;
    }
    out.push(skip ? v.subarray(skip) : v);
    skip = 0;
  }
  return out;
}

function zeroFill(views: readonly Uint8Array[]): void {
  for (const v of views) v.fill(0);
}
