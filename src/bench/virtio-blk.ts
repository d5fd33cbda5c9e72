import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kvm } from '../kvm/kvm.js';
import { ioUringAvailability } from '../kvm/io-uring.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { BlkAio } from '../virtio/blk.js';
import type { BenchContext, Better, Metric, Suite, SuiteResult } from './types.js';
import { BLOCK_WORD_BYTES, blockSequence, blockSequenceHash, blkBenchImage, runBlkGuest, type BlkGuestRun, type BlkWorkload } from './virtio-blk-guest.js';
import { HOST_PASSES, runBlkHostReference, type BlkHostRun } from './virtio-blk-ref.js';
import { tscFrequency } from './scaling-tsc.js';
import { isSelected } from './select.js';
import { median, roundSig } from './stats.js';
import { QEMU_IO_POLL_NS } from '../vm/vm-config.js';

/**
 * The virtio-blk suite: 4 KiB random reads (IOPS) and 128 KiB sequential
 * reads (MiB/s) from a guest through virtio-blk and the I/O pool, at queue
 * depth 1 and 32, per irqchip mode, against the same reads done by Node on
 * the image file in the same run. The ratio guest/host is the VMM's cost
 * (1.0 = none). The guest's loop runs in ring 3 and polls, so on hosts
 * that emulate ring 0 it still runs natively; every notify is an exit.
 * Each repetition runs every case once, host reference first, so drift in
 * machine load hits guest and host alike. The image lives in the page
 * cache for both sides: this measures the path, not the disk. Disk
 * requests take the default path (io_uring where the host allows it;
 * each metric's `aio` parameter says what ran); some modes also run with
 * aio=sync, the synchronous fallback, paired with the default per
 * repetition (`io_uring-gain`).
 */

const MiB = 1 << 20;

/**
 * The I/O thread's poll limit in every run but the no-io-poll ones: QEMU's
 * default, set explicitly because the VM's default depends on the host's
 * CPU count (VmOptions ioPollNs).
 */
export const BENCH_IO_POLL_NS = QEMU_IO_POLL_NS;

export interface BlkBenchParams {
  imageBytes: number;
  modes: readonly IrqchipMode[];
  /**
   * Modes also measured with ioeventfds off (every notify an MMIO exit to
   * the vCPU thread), for `<mode>.exit-notify` and `<mode>.ioeventfd-gain`.
   */
  exitNotify: readonly IrqchipMode[];
  /** Modes also measured with the I/O thread's polling off, for `<mode>.no-io-poll` and `<mode>.io-poll-gain`. */
  noIoPoll: readonly IrqchipMode[];
  /** Modes also measured with aio=sync, for `<mode>.aio-sync` and `<mode>.io_uring-gain`. */
  syncAio: readonly IrqchipMode[];
  workloads: readonly BlkWorkload[];
}

export const DEFAULT_BLK_PARAMS: BlkBenchParams = {
  imageBytes: 64 * MiB,
  modes: ['user', 'split'],
  exitNotify: ['user'],
  noIoPoll: ['user'],
  syncAio: ['user'],
  // The warm-up: measured on the 2-core development host, the first ~10,000
  // requests of a run go at a tenth of the steady rate or less (36k against
  // 350k IOPS at QD 32) while the serving code warms up; the host reference
  // warms up in its own passes.
  workloads: [
    { pattern: 'randread', qd: 1, count: 4000, warmup: 16000, requestBytes: 4096 },
    { pattern: 'randread', qd: 32, count: 8000, warmup: 32000, requestBytes: 4096 },
    { pattern: 'seqread', qd: 1, count: 2048, warmup: 8192, requestBytes: 128 * 1024 },
    { pattern: 'seqread', qd: 32, count: 4096, warmup: 16384, requestBytes: 128 * 1024 },
  ],
};

function caseId(w: BlkWorkload): string {
  return `virtio-blk.${w.pattern}-${w.requestBytes / 1024}k.qd${w.qd}`;
}

interface Ids {
  host: string;
  guest: (mode: IrqchipMode) => string;
  ratio: (mode: IrqchipMode) => string;
  exit: (mode: IrqchipMode) => string;
  gain: (mode: IrqchipMode) => string;
  sync: (mode: IrqchipMode) => string;
  uringGain: (mode: IrqchipMode) => string;
  noPoll: (mode: IrqchipMode) => string;
  pollGain: (mode: IrqchipMode) => string;
}

function ids(w: BlkWorkload): Ids {
  const c = caseId(w);
  return {
    host: `${c}.host`,
    guest: (m) => `${c}.${m}`,
    ratio: (m) => `${c}.${m}.ratio-vs-host`,
    exit: (m) => `${c}.${m}.exit-notify`,
    gain: (m) => `${c}.${m}.ioeventfd-gain`,
    sync: (m) => `${c}.${m}.aio-sync`,
    uringGain: (m) => `${c}.${m}.io_uring-gain`,
    noPoll: (m) => `${c}.${m}.no-io-poll`,
    pollGain: (m) => `${c}.${m}.io-poll-gain`,
  };
}

/** One guest configuration of a workload: an irqchip mode, with ioeventfds or with exits, the default aio or sync. */
interface GuestRunSpec {
  mode: IrqchipMode;
  ioeventfd: boolean;
  /** Left out: the default (io_uring where available). */
  aio?: BlkAio;
  /** The I/O thread's poll limit, ns: BENCH_IO_POLL_NS but in the no-io-poll runs. */
  ioPollNs: number;
  /** The key its runs are kept under (the guest metric's id). */
  key: string;
}

/** IOPS for random reads, MiB/s for sequential ones. */
function rate(w: BlkWorkload, seconds: number): number {
  return w.pattern === 'randread' ? w.count / seconds : (w.count * w.requestBytes) / MiB / seconds;
}

/** The image: every 4 KiB block starts with its index, which both sides check. */
function writeImage(path: string, bytes: number): void {
  const image = Buffer.alloc(bytes);
  for (let at = 0; at < bytes; at += BLOCK_WORD_BYTES) image.writeUInt32LE(at / BLOCK_WORD_BYTES, at);
  writeFileSync(path, image);
  readFileSync(path); // into the page cache before anything is timed
}

/** What each workload needs measured, given `only`. */
function plan(p: BlkBenchParams, only: readonly string[] | undefined): { w: BlkWorkload; runs: GuestRunSpec[]; host: boolean }[] {
  return p.workloads
    .map((w) => {
      const i = ids(w);
      const exits = p.exitNotify.filter((m) => isSelected(i.exit(m), only) || (p.modes.includes(m) && isSelected(i.gain(m), only)));
      const syncs = p.syncAio.filter((m) => isSelected(i.sync(m), only) || (p.modes.includes(m) && isSelected(i.uringGain(m), only)));
      const noPolls = p.noIoPoll.filter((m) => isSelected(i.noPoll(m), only) || (p.modes.includes(m) && isSelected(i.pollGain(m), only)));
      const modes = p.modes.filter(
        (m) =>
          isSelected(i.guest(m), only) ||
          isSelected(i.ratio(m), only) ||
          (exits.includes(m) && isSelected(i.gain(m), only)) ||
          (syncs.includes(m) && isSelected(i.uringGain(m), only)) ||
          (noPolls.includes(m) && isSelected(i.pollGain(m), only)),
      );
      const poll = BENCH_IO_POLL_NS;
      const runs: GuestRunSpec[] = [
        ...modes.map((mode) => ({ mode, ioeventfd: true, ioPollNs: poll, key: i.guest(mode) })),
        ...exits.map((mode) => ({ mode, ioeventfd: false, ioPollNs: poll, key: i.exit(mode) })),
        ...noPolls.map((mode) => ({ mode, ioeventfd: true, ioPollNs: 0, key: i.noPoll(mode) })),
        ...syncs.map((mode) => ({ mode, ioeventfd: true, aio: 'sync' as const, ioPollNs: poll, key: i.sync(mode) })),
      ];
      return { w, runs, host: isSelected(i.host, only) || modes.some((m) => isSelected(i.ratio(m), only)) };
    })
    .filter((c) => c.runs.length || c.host);
}

export async function runVirtioBlkBench(ctx: BenchContext, params: BlkBenchParams = DEFAULT_BLK_PARAMS): Promise<SuiteResult> {
  const cases = plan(params, ctx.only);
  if (!cases.length) return { suite: 'virtio-blk', metrics: [], notes: [] };
  const total = ctx.repetitions * cases.reduce((n, c) => n + c.runs.length + (c.host ? 1 : 0), 0);
  let done = 0;
  ctx.progress(done, total, 'virtio-blk: building guests and the image');
  for (const c of cases) if (c.runs.length) blkBenchImage(c.w);
  const dir = mkdtempSync(join(tmpdir(), 'nodevisor-bench-blk-'));
  const image = join(dir, 'bench.img');
  // Other work on the machine moves both sides of a ratio, but not always alike: the report says how busy it was.
  const loadBefore = loadavg()[0]!;
  const guest = new Map<string, BlkGuestRun[]>();
  const host = new Map<string, BlkHostRun[]>();
  try {
    writeImage(image, params.imageBytes);
    for (let rep = 0; rep < ctx.repetitions; rep++) {
      for (const c of cases) {
        const i = ids(c.w);
        const blocks = blockSequence(c.w, Math.floor(params.imageBytes / c.w.requestBytes));
        if (c.host) {
          ctx.progress(done, total, `${i.host} (${rep + 1}/${ctx.repetitions})`);
          // The same blocks as the guest's timed requests; its own passes warm it up.
          host.set(i.host, [...(host.get(i.host) ?? []), await runBlkHostReference(c.w, image, blocks.subarray(c.w.warmup ?? 0))]);
          done++;
        }
        for (const r of c.runs) {
          ctx.progress(done, total, `${r.key} (${rep + 1}/${ctx.repetitions})`);
          const g = await runBlkGuest(c.w, image, r.mode, { ioeventfd: r.ioeventfd, ioPollNs: r.ioPollNs, ...(r.aio ? { aio: r.aio } : {}) });
          if (g.offsetHash !== blockSequenceHash(blocks)) throw new Error(`${r.key}: the guest read other blocks than the host reference`);
          guest.set(r.key, [...(guest.get(r.key) ?? []), g]);
          done++;
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  ctx.progress(total, total, 'virtio-blk: done');

  const calibrations = [...guest.values()].flat().map((g) => g.calibration);
  const tsc = calibrations.length ? tscFrequency(calibrations) : undefined;
  const metrics: Metric[] = [];
  for (const c of cases) {
    const i = ids(c.w);
    const unit = c.w.pattern === 'randread' ? 'IOPS' : 'MiB/s';
    const what = `${c.w.pattern === 'randread' ? 'random' : 'sequential'} ${c.w.requestBytes / 1024} KiB reads at queue depth ${c.w.qd}`;
    const base = { qd: c.w.qd, requestBytes: c.w.requestBytes, requests: c.w.count, warmupRequests: c.w.warmup ?? 0, pattern: c.w.pattern, imageMiB: params.imageBytes / MiB };
    const metric = (id: string, description: string, u: string, samples: number[], extra: Record<string, string | number> = {}): Metric => {
      const better: Better = 'higher';
      return { id, description, unit: u, better, samples, tolerance: 0.2, params: { ...base, ...extra } };
    };
    const hostRates = (host.get(i.host) ?? []).map((h) => rate(c.w, h.seconds));
    if (isSelected(i.host, ctx.only) && hostRates.length) {
      metrics.push(metric(i.host, `${what}: Node reading the image file directly (fs.promises, ${c.w.qd} in flight), the reference; median of ${HOST_PASSES} passes`, unit, hostRates, { hostPasses: HOST_PASSES }));
    }
    const ratesOf = (key: string): number[] => (guest.get(key) ?? []).map((g) => rate(c.w, g.tscTicks / tsc!.hz));
    for (const r of c.runs) {
      const m = r.mode;
      const runs = guest.get(r.key) ?? [];
      const rates = ratesOf(r.key);
      const aio = [...new Set(runs.map((g) => g.aio))].join(',');
      const extra = {
        irqchip: m,
        ioeventfd: r.ioeventfd ? 1 : 0,
        aio,
        ioPollNs: r.ioPollNs,
        notifiesPerRequest: roundSig(median(runs.map((g) => g.notifies / g.completed)), 3),
        pollWakesPerRequest: roundSig(median(runs.map((g) => g.pollWakes / (g.completed + (c.w.warmup ?? 0)))), 3),
        tscMHz: roundSig(tsc!.hz / 1e6, 6),
      };
      const how = `${r.ioeventfd ? 'notifies through ioeventfds' : 'every notify an MMIO exit (ioeventfds off)'}, ${r.aio ? `aio=${r.aio}` : 'the default aio'} (${aio} ran), I/O thread ${r.ioPollNs ? `polling up to ${r.ioPollNs} ns` : 'not polling'}`;
      if (isSelected(r.key, ctx.only)) {
        metrics.push(metric(r.key, `${what} from a guest (ring 3, polling) through virtio-blk, irqchip ${m}, ${how}`, unit, rates, extra));
      }
      if (r.aio && guest.has(i.guest(m)) && isSelected(i.uringGain(m), ctx.only)) {
        const gains = ratesOf(i.guest(m)).map((x, k) => x / rates[k]!);
        metrics.push(metric(i.uringGain(m), `${i.guest(m)} over ${r.key}, paired per repetition: what the default path (io_uring where available) gains over the synchronous one (above 1: it pays)`, 'ratio', gains, { irqchip: m, aio }));
      }
      if (r.key === i.guest(m) && isSelected(i.ratio(m), ctx.only)) {
        // Paired per repetition: both sides met the same machine load.
        const ratios = rates.map((x, k) => x / hostRates[k]!);
        metrics.push(metric(i.ratio(m), `${i.guest(m)} over ${i.host}, paired per repetition: the VMM's overhead (1.0 = none)`, 'ratio', ratios, extra));
      }
      if (r.key === i.noPoll(m) && guest.has(i.guest(m)) && isSelected(i.pollGain(m), ctx.only)) {
        const gains = ratesOf(i.guest(m)).map((x, k) => x / rates[k]!);
        metrics.push(metric(i.pollGain(m), `${i.guest(m)} over ${r.key}, paired per repetition: what the I/O thread's polling is worth (above 1: it pays)`, 'ratio', gains, { irqchip: m, ioPollNs: BENCH_IO_POLL_NS }));
      }
      if (!r.ioeventfd && !r.aio && guest.has(i.guest(m)) && isSelected(i.gain(m), ctx.only)) {
        const exits = rates;
        const gains = ratesOf(i.guest(m)).map((x, k) => x / exits[k]!);
        metrics.push(metric(i.gain(m), `${i.guest(m)} over ${r.key}, paired per repetition: what ioeventfds are worth (above 1: they pay)`, 'ratio', gains, { irqchip: m }));
      }
    }
  }
  const notes = [`image ${params.imageBytes / MiB} MiB in a temporary directory, in the page cache for guest and host alike; sequential reads wrap at its end`];
  notes.push(`host load average (1 min) ${loadBefore.toFixed(1)} before the runs, ${loadavg()[0]!.toFixed(1)} after`);
  const uring = ioUringAvailability();
  notes.push(uring.available ? 'disk requests through io_uring by default (aio=sync runs are the synchronous fallback)' : `io_uring is unavailable here (${uring.reason}): every run used the synchronous path`);
  if (tsc) notes.push(`guest TSC ${(tsc.hz / 1e6).toFixed(3)} MHz, from ${tsc.source === 'sysfs' ? 'sysfs tsc_freq_khz' : 'RDTSC against the ACPI PM timer in every run'}`);
  if (tsc?.note) notes.push(tsc.note);
  if (Kvm.isSoftwareVirtualised()) notes.push('this host\'s KVM virtualises in software (kvm_pvm): ring 0 is emulated and a notify that exits costs ~10 us');
  return { suite: 'virtio-blk', metrics, notes };
}

export const virtioBlkSuite: Suite = {
  name: 'virtio-blk',
  description: '4 KiB random read IOPS and 128 KiB sequential read MiB/s at queue depth 1 and 32 through virtio-blk (io_uring, and the synchronous fallback), per irqchip mode, against Node reading the image directly',
  run: (ctx) => runVirtioBlkBench(ctx),
};
