import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildGuest, GUEST_LIB, PACKAGE_ROOT } from '../guests/build.js';
import { Vm } from '../vm/vm.js';
import type { FlatImage } from '../vm/options.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import { PM_TIMER_HZ } from '../devices/acpi-pm.js';
import type { TestKnobs } from './types.js';

/**
 * One boot of the scaling benchmark guest (guests/bench/scaling.c): build,
 * run, read the per-vCPU records it leaves in guest RAM.
 */

export type ScalingWorkload = 'compute' | 'memory' | 'contention' | 'ipi';
export const SCALING_WORKLOADS: readonly ScalingWorkload[] = ['compute', 'memory', 'contention', 'ipi'];
/** The workloads that run in ring 3 and so also exist as host threads (bench/ref/scaling-threads.c). */
export const HOST_WORKLOADS: readonly ScalingWorkload[] = ['compute', 'memory', 'contention'];

const WORKLOAD_DEFINE: Record<ScalingWorkload, string> = {
  compute: 'WL_COMPUTE',
  memory: 'WL_MEMORY',
  contention: 'WL_CONTENTION',
  ipi: 'WL_IPI',
};

export const BENCH_GUESTS = join(PACKAGE_ROOT, 'guests', 'bench');
/** Kernels shared by the guest and the host reference. */
export const WORKLOADS_HEADER = join(BENCH_GUESTS, 'scaling-workloads.h');

// Guest layout; mirrors the comment and structs at the top of scaling.c.
const LOAD_ADDRESS = 0x100000;
const RESULTS = 0x1000000;
const CTL_CAL_TSC = RESULTS + 0x40;
const CTL_CAL_PM = RESULTS + 0x50;
const CTL_CAL_WIDTH = RESULTS + 0x60;
const RECORDS = RESULTS + 0x1000;
const RECORD_BYTES = 128;
const BUFFERS = 0x2000000;
const EXIT_OK = 0x31;
const PM_TIMER_MASK = 0xffffff;
/** MAX_CPUS in guests/lib/guest.h: start64.S parks vCPUs beyond it, which would never check in. */
export const SCALING_MAX_VCPUS = 256;
const MiB = 1 << 20;

export interface GuestTiming {
  /** Unmeasured ticks (1 ms each) once every vCPU is running. */
  warmupMs: number;
  /** Measured ticks. */
  measureMs: number;
  /** Per-vCPU copy source (the destination is as large) for the memory workload. */
  memBufBytes: number;
}

export const DEFAULT_TIMING: GuestTiming = { warmupMs: 30, measureMs: 250, memBufBytes: 4 * MiB };

export interface VcpuRecord {
  /** Work done inside the measured window: iterations, bytes, increments, or IPIs sent. */
  ops: number;
  /** Length of this vCPU's window in guest TSC ticks. */
  tscTicks: number;
  /** LAPIC timer interrupts this vCPU took inside its window. */
  timerTicks: number;
  /** IPIs this vCPU took (ipi workload). */
  ipisTaken: number;
}

/** Guest TSC against the ACPI PM timer (the host's monotonic clock), taken by vCPU 0 over the window. */
export interface TscCalibration {
  tscTicks: number;
  pmTicks: number;
  /** Widest RDTSC bracket around the two PM timer reads, in TSC ticks. */
  bracketTicks: number;
}

export interface GuestRun {
  workload: ScalingWorkload;
  vcpus: number;
  records: VcpuRecord[];
  calibration: TscCalibration;
}

export function calibratedTscHz(c: TscCalibration): number {
  return c.tscTicks / (c.pmTicks / PM_TIMER_HZ);
}

/** Builds (cached) the guest for one workload. */
export function scalingImage(workload: ScalingWorkload, timing: GuestTiming = DEFAULT_TIMING): FlatImage {
  const source = buildGuest({
    sources: [join(GUEST_LIB, 'start64.S'), join(BENCH_GUESTS, 'scaling.c')],
    loadAddress: LOAD_ADDRESS,
    defines: {
      WORKLOAD: WORKLOAD_DEFINE[workload],
      WARMUP_TICKS: timing.warmupMs,
      MEASURE_TICKS: timing.measureMs,
      MEM_BUF_BYTES: `${timing.memBufBytes}ul`,
      // buildGuest's cache key covers the sources but not what they include.
      SCALING_WORKLOADS_H: createHash('sha256').update(readFileSync(WORKLOADS_HEADER)).digest('hex').slice(0, 16),
    },
  });
  return { source, mode: 'long', loadAddress: LOAD_ADDRESS, startup: 'all' };
}

/** Guest RAM for `vcpus`: image, results and stacks below 32 MiB, then two buffers per vCPU. */
export function scalingMemory(vcpus: number, timing: GuestTiming = DEFAULT_TIMING): number {
  return Math.max(64 * MiB, BUFFERS + Math.ceil((vcpus * 2 * timing.memBufBytes) / MiB) * MiB);
}

export interface GuestRunOptions {
  timing?: GuestTiming;
  irqchip?: IrqchipMode;
  testKnobs?: TestKnobs;
  /** Stop the VM and fail if it has not finished by then (default 30 s plus 1 s per vCPU). */
  timeoutMs?: number;
}

/** Boots the guest on `vcpus` vCPUs and returns what each measured. Throws on any failure. */
export async function runScalingGuest(workload: ScalingWorkload, vcpus: number, options: GuestRunOptions = {}): Promise<GuestRun> {
  const timing = options.timing ?? DEFAULT_TIMING;
  if (vcpus > SCALING_MAX_VCPUS) throw new Error(`the scaling guest supports at most ${SCALING_MAX_VCPUS} vCPUs (asked for ${vcpus})`);
  const what = `scaling ${workload} guest on ${vcpus} vCPU${vcpus === 1 ? '' : 's'}`;
  const vm = new Vm({
    vcpus,
    memory: scalingMemory(vcpus, timing),
    irqchip: options.irqchip,
    image: scalingImage(workload, timing),
    testKnobs: options.testKnobs,
  });
  await vm.start();
  let timedOut = false;
  const watchdog = setTimeout(() => {
    timedOut = true;
    void vm.stop();
  }, options.timeoutMs ?? 30_000 + 1_000 * vcpus);
  const result = await vm.wait().finally(() => clearTimeout(watchdog));
  if (timedOut) throw new Error(`${what} did not finish in time`);
  if (result.reason.kind !== 'debug-exit' || result.reason.code !== EXIT_OK) throw new Error(`${what} failed: ${result.message}`);

  const mem = vm.memory;
  const records: VcpuRecord[] = [];
  for (let i = 0; i < vcpus; i++) {
    const at = RECORDS + i * RECORD_BYTES;
    const start = mem.readU64(at);
    const end = mem.readU64(at + 8);
    const rec: VcpuRecord = {
      ops: Number(mem.readU64(at + 16)),
      tscTicks: Number(end - start),
      timerTicks: Number(mem.readU64(at + 32)),
      ipisTaken: Number(mem.readU64(at + 48)),
    };
    const done = mem.readU32(at + 56);
    const alive = mem.readU32(at + 60);
    if (alive !== i + 1 || done !== 1 || end <= start || rec.ops <= 0) {
      throw new Error(`${what}: vCPU ${i} left no valid record (alive ${alive}, done ${done}, ops ${rec.ops}, TSC ${start}..${end})`);
    }
    records.push(rec);
  }
  const pm0 = Number(mem.readU64(CTL_CAL_PM));
  const pm1 = Number(mem.readU64(CTL_CAL_PM + 8));
  const calibration: TscCalibration = {
    tscTicks: Number(mem.readU64(CTL_CAL_TSC + 8) - mem.readU64(CTL_CAL_TSC)),
    // The PM timer is 24 bits wide: it wraps every 4.7 s, far longer than a window.
    pmTicks: (pm1 - pm0) & PM_TIMER_MASK,
    bracketTicks: Math.max(Number(mem.readU64(CTL_CAL_WIDTH)), Number(mem.readU64(CTL_CAL_WIDTH + 8))),
  };
  if (calibration.tscTicks <= 0 || calibration.pmTicks <= 0) throw new Error(`${what}: no TSC calibration (TSC ${calibration.tscTicks}, PM timer ${calibration.pmTicks} ticks)`);
  return { workload, vcpus, records, calibration };
}
