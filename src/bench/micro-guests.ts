/**
 * Runs the `micro` benchmark guests (guests/bench/micro-*.c) and turns what
 * they recorded into microseconds.
 *
 * Clock: the guests time events with RDTSC and record the TSC and the ACPI
 * PM timer at both ends of the measured window (at least 10 ms). The PM
 * timer is a 3.579545 MHz count the VMM derives from the host's
 * CLOCK_MONOTONIC, so TSC ticks per microsecond = dTSC / (dPM / 3.579545).
 * This needs no vCPU fd (KVM_GET_TSC_KHZ), no sysfs file that most hosts
 * lack (tsc_freq_khz), and no trust in /proc/cpuinfo's "cpu MHz"; the error
 * is one port exit (a few us) over the window, below 0.1%.
 */
import { basename } from 'node:path';
import { PM_TIMER_HZ } from '../devices/acpi-pm.js';
import { Vm } from '../vm/vm.js';
import type { FlatImage, VmOptions } from '../vm/options.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { TestKnobs } from './types.js';
import { kitGuest } from './guests.js';

// Mirrors guests/bench/micro-common.h.
const RESULTS = 0x1000000;
const SAMPLES = RESULTS + 0x1000;
const REF_SAMPLES = RESULTS + 0x41000;
const MAX_SAMPLES = 0x10000;
const MICRO_MAGIC = 0x6f7263696dn;
const MICRO_EXIT = 0x3c;
const H = { magic: 0, tsc0: 1, pm0: 2, tsc1: 3, pm1: 4, count: 5, refCount: 6 } as const;
const PM_MASK = 0xffffff;
/** The 24-bit PM timer wraps after 4.69 s; a run that took longer on the host cannot be calibrated. */
const MAX_RUN_MS = 4500;
const WATCHDOG_MS = 30_000;

export const WARMUP = 10;

export interface GuestTiming {
  /** The guest's samples in microseconds, warm-up dropped. */
  us: number[];
  /** Its reference samples (if any) in microseconds. */
  refUs: number[];
  /** TSC frequency found by calibration against the PM timer. */
  tscMHz: number;
  /** EOIs the vCPUs completed through paravirtual EOI over the run (VmStats). */
  pvEois: number;
  /** Halts that a wake-up ended while the vCPU polled (see VmOptions haltPollNs). */
  haltPollWakes: number;
}

export interface GuestRunOptions {
  vcpus: number;
  irqchip: IrqchipMode;
  testKnobs?: TestKnobs;
  /** Leading samples to drop (caches, first-touch page faults, lazily built state). */
  warmup: number;
  /** VM options beyond the above (e.g. to compare with a feature off). */
  vm?: Pick<VmOptions, 'pvEoi' | 'haltPollNs'>;
}

/** Boots `image`, waits for it to report, and converts its TSC samples. */
export async function runTimedGuest(image: FlatImage, o: GuestRunOptions): Promise<GuestTiming> {
  const vm = new Vm({ ...o.vm, vcpus: o.vcpus, memory: '32M', irqchip: o.irqchip, image, testKnobs: o.testKnobs });
  const began = performance.now();
  await vm.start();
  const watchdog = setTimeout(() => void vm.stop(), WATCHDOG_MS);
  const result = await vm.wait().finally(() => clearTimeout(watchdog));
  const ms = performance.now() - began;
  const name = typeof image.source === 'string' ? basename(image.source) : 'image';
  if (result.reason.kind !== 'debug-exit' || result.reason.code !== MICRO_EXIT) {
    const why = result.reason.kind === 'stopped' ? `did not finish in ${WATCHDOG_MS / 1000} s` : `stopped unexpectedly: ${result.message}`;
    throw new Error(`benchmark guest ${name} (irqchip ${o.irqchip}) ${why}`);
  }
  if (ms > MAX_RUN_MS) throw new Error(`benchmark guest ${name} ran ${Math.round(ms)} ms, too long to calibrate its TSC against the 24-bit PM timer`);
  const vcpus = vm.stats().vcpus;
  const pvEois = vcpus.reduce((n, v) => n + v.pvEois, 0);
  const haltPollWakes = vcpus.reduce((n, v) => n + v.haltPollWakes, 0);
  const mem = vm.memory;
  const hdr = (i: number): bigint => mem.readU64(RESULTS + i * 8);
  if (hdr(H.magic) !== MICRO_MAGIC) throw new Error(`benchmark guest ${name} exited without publishing its results`);
  const dTsc = Number(hdr(H.tsc1) - hdr(H.tsc0));
  const dPm = (Number(hdr(H.pm1)) - Number(hdr(H.pm0))) & PM_MASK;
  const tscPerUs = dTsc / ((dPm / PM_TIMER_HZ) * 1e6);
  if (!(tscPerUs > 10 && tscPerUs < 20_000)) throw new Error(`TSC calibration failed: ${dTsc} TSC ticks over ${dPm} PM timer ticks`);
  const read = (base: number, count: number, skip: number): number[] => {
    if (count > MAX_SAMPLES) throw new Error(`benchmark guest reported ${count} samples (at most ${MAX_SAMPLES} fit)`);
    const out: number[] = [];
    for (let i = skip; i < count; i++) out.push(mem.readU32(base + i * 4) / tscPerUs);
    return out;
  };
  const us = read(SAMPLES, Number(hdr(H.count)), o.warmup);
  if (us.length === 0) throw new Error(`benchmark guest ${name} recorded no samples after warm-up`);
  return { us, refUs: read(REF_SAMPLES, Number(hdr(H.refCount)), 0), tscMHz: tscPerUs, pvEois, haltPollWakes };
}

const common = { with: ['micro-common.c'], headers: ['micro-common.h'] };
export const TIMER_WARMUP = 10;
/**
 * Round trips the IPI guest does before the ones it reports. Measured on a
 * 2-core kvm_pvm host, in 250-round medians: the first 250-500 run at about
 * twice the steady state in every irqchip mode, kernel mode included (56 ->
 * 28 us), so the settling is the host's (idle states, KVM's own halt-poll
 * window), not ours; a short warm-up measured that instead of the IPI path.
 */
export const IPI_WARMUP = 500;

/** Guest images (built once, then cached on disk by buildGuest). */
export const microImages = {
  ipi: (busy: boolean, rounds: number): FlatImage => kitGuest('micro-ipi', { ...common, defines: { ROUNDS: rounds, WARMUP: IPI_WARMUP, BUSY: busy ? 1 : 0 } }),
  irq: (rounds: number): FlatImage => kitGuest('micro-irq', { ...common, defines: { ROUNDS: rounds, WARMUP } }),
  timer: (periodUs: number, ticks: number): FlatImage => kitGuest('micro-timer', { ...common, defines: { PERIOD: Math.round(periodUs * 1000), TICKS: ticks, WARMUP: TIMER_WARMUP } }),
};

/** IPI round trips between two vCPUs (see guests/bench/micro-ipi.c); `busy` keeps both spinning instead of halted. */
export function ipiRoundTrips(irqchip: IrqchipMode, busy: boolean, rounds: number, testKnobs?: TestKnobs, vm?: GuestRunOptions['vm']): Promise<GuestTiming> {
  return runTimedGuest(microImages.ipi(busy, rounds), { vcpus: 2, irqchip, testKnobs, warmup: IPI_WARMUP, ...(vm ? { vm } : {}) });
}

/** Device interrupt latencies, UART IRQ 4 through the IOAPIC (see guests/bench/micro-irq.c). */
export function deviceIrqLatencies(irqchip: IrqchipMode, rounds: number, testKnobs?: TestKnobs): Promise<GuestTiming> {
  return runTimedGuest(microImages.irq(rounds), { vcpus: 1, irqchip, testKnobs, warmup: WARMUP });
}

/** LAPIC periodic timer periods in us for a requested `periodUs` (see guests/bench/micro-timer.c). */
export function timerPeriods(irqchip: IrqchipMode, periodUs: number, ticks: number, testKnobs?: TestKnobs): Promise<GuestTiming> {
  return runTimedGuest(microImages.timer(periodUs, ticks), { vcpus: 1, irqchip, testKnobs, warmup: TIMER_WARMUP });
}
