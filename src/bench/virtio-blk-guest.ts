import { Vm } from '../vm/vm.js';
import type { FlatImage } from '../vm/options.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { BlkAio } from '../virtio/blk.js';
import { kitGuest } from './guests.js';
import type { TscCalibration } from './scaling-guest.js';

/**
 * One boot of the virtio-blk benchmark guest (guests/bench/virtio-blk.c):
 * build, run against an image, read what the ring-3 loop measured. Also the
 * request sequence, which the host reference (virtio-blk-ref.ts) replays.
 */

export type BlkPattern = 'randread' | 'seqread';

export interface BlkWorkload {
  pattern: BlkPattern;
  /** Requests kept outstanding. */
  qd: number;
  /** Requests per run that are timed. */
  count: number;
  /** Requests before the timed ones, the same workload (default 0): the VMM's serving code warms up over the first thousands. */
  warmup?: number;
  /** Bytes per request; a multiple of 4 KiB. */
  requestBytes: number;
}

/** The image's contract with the guest: every 4 KiB block starts with its index (u32 LE). */
export const BLOCK_WORD_BYTES = 4096;
/** Seed of the random pattern's LCG, the same for guest and host. */
export const LCG_SEED = 0x2545f491;
const MAX_QD = 42; // 3 descriptors per request in a queue of 128

// Mirrors guests/bench/micro-common.h and struct report of virtio-blk.c.
const RESULTS = 0x1000000;
const H = { magic: 0, tsc0: 1, pm0: 2, tsc1: 3, pm1: 4 } as const;
const MICRO_MAGIC = 0x6f7263696dn;
const MICRO_EXIT = 0x3c;
const REPORT = RESULTS + 0x100;
const PM_MASK = 0xffffff;
/** The 24-bit PM timer wraps after 4.69 s: a longer run cannot be calibrated. */
const MAX_RUN_MS = 4500;
const WATCHDOG_MS = 30_000;

export interface BlkGuestRun {
  /** Guest TSC ticks of the measured loop. */
  tscTicks: number;
  calibration: TscCalibration;
  completed: number;
  errors: number;
  /** Notifications the guest sent during the timed requests. */
  notifies: number;
  /** FNV-1a of the block numbers in issue order (blockSequenceHash). */
  offsetHash: number;
  /** How the disk's requests reached the image, as the VM's stats say. */
  aio: BlkAio | 'io_uring+sync';
  /** Waits of the I/O threads that polling ended (warm-up included). */
  pollWakes: number;
}

/** Block numbers (in units of requestBytes) the workload reads, in issue order (warm-up first), over `blocks` blocks. */
export function blockSequence(w: BlkWorkload, blocks: number): Uint32Array {
  const total = (w.warmup ?? 0) + w.count;
  const out = new Uint32Array(total);
  let x = LCG_SEED;
  for (let r = 0; r < total; r++) {
    if (w.pattern === 'seqread') {
      out[r] = r % blocks;
      continue;
    }
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[r] = Math.floor((x * blocks) / 2 ** 32);
  }
  return out;
}

export function blockSequenceHash(blocks: Uint32Array): number {
  let h = 0x811c9dc5;
  for (const b of blocks) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

function checkWorkload(w: BlkWorkload): void {
  if (!Number.isInteger(w.qd) || w.qd < 1 || w.qd > MAX_QD) throw new RangeError(`queue depth ${w.qd} is not 1-${MAX_QD}`);
  if (!Number.isInteger(w.count) || w.count < 1) throw new RangeError(`request count ${w.count} is not a positive integer`);
  if (w.warmup !== undefined && (!Number.isInteger(w.warmup) || w.warmup < 0)) throw new RangeError(`warm-up request count ${w.warmup} is not a non-negative integer`);
  if (!Number.isInteger(w.requestBytes) || w.requestBytes <= 0 || w.requestBytes % BLOCK_WORD_BYTES !== 0 || w.requestBytes > 1 << 20) {
    throw new RangeError(`request size ${w.requestBytes} is not a multiple of 4 KiB up to 1 MiB`);
  }
}

/** Builds (cached) the guest for a workload. */
export function blkBenchImage(w: BlkWorkload): FlatImage {
  checkWorkload(w);
  return kitGuest('virtio-blk', {
    with: ['micro-common.c'],
    headers: ['micro-common.h'],
    defines: { PATTERN: w.pattern === 'randread' ? 'RANDOM' : 'SEQUENTIAL', QD: w.qd, COUNT: w.count, WARMUP: w.warmup ?? 0, REQ_BYTES: w.requestBytes, SEED: `${LCG_SEED}u` },
  });
}

export interface BlkGuestOptions {
  /** Default true. */
  ioeventfd?: boolean;
  /** Left out: the default (io_uring where available). */
  aio?: BlkAio;
  /** The I/O thread's poll limit (VmOptions ioPollNs); left out: the VM's default. */
  ioPollNs?: number;
}

/** Boots the guest on `imagePath` (read-only) and returns what its loop measured. Throws on any failure. */
export async function runBlkGuest(w: BlkWorkload, imagePath: string, irqchip: IrqchipMode, o: BlkGuestOptions = {}): Promise<BlkGuestRun> {
  const { ioeventfd = true, aio, ioPollNs } = o;
  const what = `virtio-blk ${w.pattern} QD ${w.qd} guest (irqchip ${irqchip}${ioeventfd ? '' : ', no ioeventfd'}${aio ? `, aio=${aio}` : ''}${ioPollNs !== undefined ? `, ioPollNs ${ioPollNs}` : ''})`;
  const vm = new Vm({ vcpus: 1, memory: '64M', irqchip, ioeventfd, ...(ioPollNs !== undefined ? { ioPollNs } : {}), image: blkBenchImage(w), disks: [{ path: imagePath, readonly: true, ...(aio ? { aio } : {}) }] });
  const began = performance.now();
  await vm.start();
  const watchdog = setTimeout(() => void vm.stop(), WATCHDOG_MS);
  const result = await vm.wait().finally(() => clearTimeout(watchdog));
  const ms = performance.now() - began;
  const mem = vm.memory;
  const report = (i: number): number => Number(mem.readU64(REPORT + 8 * i));
  if (result.reason.kind !== 'debug-exit' || result.reason.code !== MICRO_EXIT) {
    const why = result.reason.kind === 'stopped' ? `did not finish in ${WATCHDOG_MS / 1000} s` : `stopped: ${result.message}`;
    const setup = report(7) ? ` (set-up check at virtio-blk.c:${report(7)} failed)` : '';
    throw new Error(`${what} ${why}${setup}`);
  }
  if (ms > MAX_RUN_MS) throw new Error(`${what} ran ${Math.round(ms)} ms, too long to calibrate its TSC against the 24-bit PM timer: fewer requests`);
  const hdr = (i: number): bigint => mem.readU64(RESULTS + 8 * i);
  if (hdr(H.magic) !== MICRO_MAGIC) throw new Error(`${what} exited without publishing its results`);
  const run: BlkGuestRun = {
    tscTicks: report(1) - report(0),
    calibration: { tscTicks: Number(hdr(H.tsc1) - hdr(H.tsc0)), pmTicks: (Number(hdr(H.pm1)) - Number(hdr(H.pm0))) & PM_MASK, bracketTicks: 0 },
    completed: report(2),
    errors: report(3),
    notifies: report(5),
    offsetHash: report(6),
    aio: vm.stats().virtio[0]!.requests!.aio,
    pollWakes: vm.stats().virtio[0]!.requests!.pollWakes,
  };
  if (run.completed !== w.count) throw new Error(`${what} completed ${run.completed} of ${w.count} requests`);
  if (run.errors) throw new Error(`${what}: ${run.errors} requests failed (status, length or data)`);
  if (!(run.tscTicks > 0) || !(run.calibration.pmTicks > 0)) throw new Error(`${what}: no timing (TSC ${run.tscTicks}, PM timer ${run.calibration.pmTicks} ticks)`);
  return run;
}
