import { getSystemErrorMap } from 'node:util';
import { native, k } from './addon.js';
import { errnoCode } from './errors.js';

/**
 * An io_uring ring (liburing, through the addon) as TypeScript sees it:
 * queue operations, submit, reap completions. The addon only wraps the
 * calls; whether io_uring is usable at all, and with which operations, is
 * decided here. A ring belongs to the thread that opened it.
 */

/** Operations nodevisor's virtio-blk path queues; a kernel without one of them gets the synchronous path. */
const NEEDED_OPS = ['IORING_OP_READV', 'IORING_OP_WRITEV', 'IORING_OP_READ', 'IORING_OP_WRITE', 'IORING_OP_FSYNC', 'IORING_OP_FALLOCATE', 'IORING_OP_TIMEOUT'] as const;
/**
 * NODROP: a full completion queue never loses a completion. SUBMIT_STABLE:
 * the kernel has read an operation's iovecs once submitted, so the addon
 * may reuse their memory. Both since Linux 5.5; FALLOCATE needs 5.6.
 */
const NEEDED_FEATURES = ['IORING_FEAT_NODROP', 'IORING_FEAT_SUBMIT_STABLE'] as const;

/** io_uring cannot be used here; `reason` says why in a sentence fragment ("io_uring_setup: EPERM (...)"). */
export class IoUringUnavailable extends Error {
  constructor(
    readonly reason: string,
    readonly code?: string,
  ) {
    super(`io_uring is unavailable: ${reason}`);
    this.name = 'IoUringUnavailable';
  }
}

/** Why io_uring_setup failed, in words a user can act on. */
export function setupFailure(e: unknown): IoUringUnavailable {
  const code = errnoCode(e);
  switch (code) {
    case 'ENOSYS':
      return new IoUringUnavailable('the kernel has no io_uring (io_uring_setup: ENOSYS)', code);
    case 'EPERM':
      return new IoUringUnavailable('io_uring_setup was refused (EPERM: sysctl kernel.io_uring_disabled, or a seccomp filter such as a container runtime\'s)', code);
    default:
      return new IoUringUnavailable(`io_uring_setup failed (${e instanceof Error ? e.message : String(e)})`, code);
  }
}

/** One completion: the userData it was queued with and the operation's result (bytes, 0, or -errno). */
export interface IoUringCompletion {
  readonly userData: number;
  readonly result: number;
}

export class IoUring {
  readonly fd: number;
  /** The completion queue's size: more operations than this in the kernel at once would overflow it. */
  readonly cqEntries: number;
  private readonly handle: number;
  private readonly reaped: Float64Array;
  private closed = false;

  /** Opens a ring of `entries` submission entries; throws IoUringUnavailable when this kernel or sandbox cannot give one nodevisor can use. */
  static open(entries: number): IoUring {
    let r: ReturnType<typeof native.uringSetup>;
    try {
      r = native.uringSetup(entries);
    } catch (e) {
      throw setupFailure(e);
    }
    const ring = new IoUring(r.handle, r.fd, r.cqEntries);
    try {
      const missingFeatures = NEEDED_FEATURES.filter((f) => !(r.features & k(f)));
      if (missingFeatures.length) throw new IoUringUnavailable(`the kernel's io_uring lacks ${missingFeatures.join(' and ')} (Linux 5.5 or later has them)`);
      const supported = new Set(native.uringProbe(r.handle));
      const missingOps = NEEDED_OPS.filter((op) => !supported.has(k(op)));
      if (missingOps.length) throw new IoUringUnavailable(`the kernel's io_uring lacks ${missingOps.join(', ')} (Linux 5.6 or later has them)`);
    } catch (e) {
      ring.close();
      throw e;
    }
    return ring;
  }

  private constructor(handle: number, fd: number, cqEntries: number) {
    this.handle = handle;
    this.fd = fd;
    this.cqEntries = cqEntries;
    this.reaped = new Float64Array(2 * cqEntries);
  }

  // Each queue call returns false when the submission queue is full; submit() empties it.
  readv(fd: number, views: readonly Uint8Array[], offset: number, userData: number): boolean {
    return native.uringReadv(this.handle, fd, views, offset, userData);
  }

  writev(fd: number, views: readonly Uint8Array[], offset: number, userData: number): boolean {
    return native.uringWritev(this.handle, fd, views, offset, userData);
  }

  /** fdatasync(2) as an operation. */
  fdatasync(fd: number, userData: number): boolean {
    return native.uringFsync(this.handle, fd, true, userData);
  }

  fallocate(fd: number, mode: number, offset: number, length: number, userData: number): boolean {
    return native.uringFallocate(this.handle, fd, mode, offset, length, userData);
  }

  /** An operation that completes with -ETIME after `ns`. */
  timeout(ns: number, userData: number): boolean {
    return native.uringTimeout(this.handle, ns, userData);
  }

  /** Hands queued operations to the kernel and, with `waitFor`, blocks until that many completions wait; how many it took. */
  submit(waitFor = 0): number {
    return native.uringSubmit(this.handle, waitFor);
  }

  /** Takes the waiting completions (at most cqEntries), oldest first. */
  reap(): IoUringCompletion[] {
    const n = native.uringReap(this.handle, this.reaped);
    const out: IoUringCompletion[] = new Array<IoUringCompletion>(n);
    for (let i = 0; i < n; i++) out[i] = { userData: this.reaped[2 * i]!, result: this.reaped[2 * i + 1]! };
    return out;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native.uringClose(this.handle);
  }
}

/** The errno name and message of a negative io_uring result, as an Error like Node's fs errors ("ENOSPC: no space left on device, write"). */
export function uringError(result: number, syscall: string): Error & { code: string; errno: number } {
  const [code, description] = getSystemErrorMap().get(result) ?? [`E${-result}`, `error ${-result}`];
  return Object.assign(new Error(`${code}: ${description}, ${syscall}`), { code, errno: -result, syscall });
}

export type IoUringAvailability = { readonly available: true } | { readonly available: false; readonly reason: string };

let availability: IoUringAvailability | undefined;

/**
 * Whether this process can use io_uring for disks: probed once (a
 * one-entry ring opened and closed). Threads still open their own rings,
 * which can fail on their own (memory limits); they fall back then.
 */
export function ioUringAvailability(): IoUringAvailability {
  if (!availability) {
    try {
      IoUring.open(1).close();
      availability = { available: true };
    } catch (e) {
      if (!(e instanceof IoUringUnavailable)) throw e;
      availability = { available: false, reason: e.reason };
    }
  }
  return availability;
}
