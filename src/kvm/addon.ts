import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Byte offsets of one C struct, plus its size, read from the kernel headers. */
export type StructLayout = { readonly size: number } & Readonly<Record<string, number>>;

/** The native addon (native/addon.cc): thin ioctl wrappers, no policy. */
export interface NativeAddon {
  open(path: string, write?: boolean): number;
  close(fd: number): void;
  ioctl(fd: number, request: number, arg?: number | bigint | ArrayBufferView): number;
  memfdCreate(name: string, size: number): number;
  /** mmap(2) of `fd` as a SharedArrayBuffer: MAP_SHARED, or MAP_PRIVATE (copy-on-write) with `copyOnWrite`. */
  mapShared(fd: number, offset: number, size: number, copyOnWrite?: boolean): { buffer: SharedArrayBuffer; address: bigint };
  /** lseek(2); -1 where SEEK_DATA/SEEK_HOLE find nothing (ENXIO). */
  seek(fd: number, offset: number, whence: number): number;
  addressOf(view: ArrayBufferView): bigint;
  attachVcpu(fd: number, runSize: number, stats?: Float64Array): { slot: number; run: ArrayBuffer; tid: number };
  /** Frees the slot and unmaps its run page, first detaching `run` (attachVcpu's buffer); on the vCPU's thread, after its last run. */
  detachVcpu(slot: number, run?: ArrayBuffer): void;
  run(slot: number): number;
  kick(slot: number): void;
  /** sched_yield(2): lets a thread waiting for this CPU run (a polling thread calls it between looks). */
  yieldCpu(): void;
  /** Kicks the slot's thread at CLOCK_MONOTONIC `deadlineNs` (0 disarms); call on that thread. */
  setTimer(slot: number, deadlineNs: number): void;
  /** Atomic 16-byte compare-and-swap at `offset` (16-aligned); on failure `expected` gets the current value. */
  cmpxchg16b(view: ArrayBufferView, offset: number, expected: BigUint64Array, replacement: BigUint64Array): boolean;
  gettid(): number;
  /** mallopt(M_ARENA_MAX): at most `n` glibc malloc arenas for the whole process (threads beyond share them). */
  setMallocArenaMax(n: number): void;
  /** eventfd(2): a new eventfd (flags: EFD_NONBLOCK, EFD_CLOEXEC). */
  eventfd(initval: number, flags: number): number;
  /** Reads (and so resets) an eventfd's counter; 0 when it was 0 on a non-blocking eventfd. */
  eventfdRead(fd: number): number;
  eventfdWrite(fd: number, value: number): void;
  /** fallocate(2) on `fd` (mode: FALLOC_FL_* bits). */
  fallocate(fd: number, mode: number, offset: number, length: number): void;
  /** Blocks until one of `fds` (at most 31) is readable or `timeoutMs` passes (< 0: no limit); a bit mask of the readable ones, 0 on timeout. */
  pollReadable(fds: readonly number[], timeoutMs: number): number;
  /** io_uring_setup(2) through liburing; throws its errno (ENOSYS, EPERM, ENOMEM...). The ring belongs to the calling thread. */
  uringSetup(entries: number): { handle: number; fd: number; features: number; sqEntries: number; cqEntries: number };
  uringClose(handle: number): void;
  /** The IORING_OP_* numbers the kernel supports; [] where it cannot say. */
  uringProbe(handle: number): number[];
  /** Queues a read into `views` (1 to IOV_MAX) from `offset`; false when the submission queue is full. */
  uringReadv(handle: number, fd: number, views: readonly Uint8Array[], offset: number, userData: number): boolean;
  uringWritev(handle: number, fd: number, views: readonly Uint8Array[], offset: number, userData: number): boolean;
  uringFsync(handle: number, fd: number, datasync: boolean, userData: number): boolean;
  uringFallocate(handle: number, fd: number, mode: number, offset: number, length: number, userData: number): boolean;
  /** Queues an operation that completes with -ETIME after `ns`. */
  uringTimeout(handle: number, ns: number, userData: number): boolean;
  /** Submits what is queued, then waits for `waitFor` completions; how many the kernel took (0 on EINTR/EAGAIN/EBUSY). */
  uringSubmit(handle: number, waitFor: number): number;
  /** Takes up to out.length / 2 completions as [userData, result] pairs; how many. */
  uringReap(handle: number, out: Float64Array): number;
  /** readv(2)/writev(2) with at most IOV_MAX buffers: bytes moved, or -EAGAIN/-EINTR; other errors throw. */
  readv(fd: number, buffers: readonly ArrayBufferView[]): number;
  writev(fd: number, buffers: readonly ArrayBufferView[]): number;
  /** A connected AF_UNIX stream socket pair (close-on-exec). */
  socketpair(): [number, number];
  setNonBlocking(fd: number, on: boolean): void;
  /** poll(2) over up to 64 fds: fills `revents`, returns how many have events (0 on timeout or EINTR). */
  poll(fds: Int32Array, events: Int32Array, revents: Int32Array, timeoutMs: number): number;
  readonly constants: Readonly<Record<string, number>>;
  readonly layout: Readonly<Record<string, StructLayout>>;
}

function load(): NativeAddon {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const candidates = ['build/Release/nodevisor.node', 'build/Debug/nodevisor.node'];
  const require = createRequire(import.meta.url);
  for (const c of candidates) {
    const p = root + c;
    if (existsSync(p)) return require(p) as NativeAddon;
  }
  throw new Error(`nodevisor's native addon is not built (looked for ${candidates.join(', ')} under ${root}); run \`npm install\` (needs g++, make and python3)`);
}

export const native: NativeAddon = load();

/** A named constant from <linux/kvm.h>; throws if the addon lacks it (a build mismatch). */
export function k(name: string): number {
  const v = native.constants[name];
  if (v === undefined) throw new Error(`internal: KVM constant ${name} missing from the addon`);
  return v;
}

/** The layout of a named struct from <linux/kvm.h>. */
export function layoutOf(name: string): StructLayout {
  const l = native.layout[name];
  if (!l) throw new Error(`internal: struct ${name} missing from the addon`);
  return l;
}

/** Field offset `field` of `struct name`. */
export function off(name: string, field: string): number {
  const v = layoutOf(name)[field];
  if (v === undefined) throw new Error(`internal: ${name}.${field} missing from the addon`);
  return v;
}
