/**
 * The `micro` suite: the costs everything else is built from, each in every
 * irqchip mode where the mode matters. Every probe runs once per
 * repetition and repetitions are interleaved (probe A, B, C, A, B, C...),
 * so a slow spell on the host spreads over all metrics instead of sinking
 * one. A sample is one repetition's value (a median of many in-guest
 * observations for latencies); the observations go in `distribution`.
 *
 * What each metric measures exactly is in its description and in the guest
 * sources (guests/bench/micro-*.c); clocks are explained in micro-guests.ts.
 */
import { readFileSync } from 'node:fs';
import { Kvm } from '../kvm/kvm.js';
import { IRQCHIP_MODES } from '../vm/options.js';
import { defaultPollNs } from '../vm/vm-config.js';
import { KVM_HALT_POLL_NS } from '../sync/poll-window.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { BenchContext, Better, Metric, Suite, SuiteResult, TestKnobs } from './types.js';
import { exitRatePair, nodeExitRate, prepareExitRtt, type ExitRttSetup } from './exit-rtt.js';
import { attachTop, TOP_POLL_MS } from './exit-rtt-top.js';
import { deviceIrqLatencies, ipiRoundTrips, IPI_WARMUP, microImages, timerPeriods, type GuestTiming } from './micro-guests.js';
import { wakeRoundTrips } from './micro-wake.js';
import { isSelected } from './select.js';
import { fmtSig, median, roundSig } from './stats.js';

const EXITS_PER_RUN = 50_000;
const IPI_ROUNDS = 200;
const IRQ_ROUNDS = 200;
const TIMER_PERIOD_US = 1000;
const TIMER_TICKS = 200;
const WAKE_ROUNDS = 1000;
const WAKE_WARMUP = 100;
const RATIO_VS_C_TARGET = 0.9;
const USER_VS_KERNEL_TARGET = 1.6;
const WITH_TOP_TARGET = 0.98;

type Params = Record<string, string | number | boolean>;

interface MetricSpec {
  id: string;
  description: string;
  unit: string;
  better: Better;
  tolerance: number;
  params?: Params;
}

/** What one repetition of a probe yields for one of its metrics. */
interface Observation {
  sample: number;
  distribution?: number[];
  /** Numeric context that varies per repetition (reported as the median over repetitions). */
  measured?: Record<string, number>;
}

interface Probe {
  metrics: MetricSpec[];
  /** Builds what the timed part needs (guests, the C reference) before any repetition. */
  prepare(): void;
  measure(knobs?: TestKnobs): Promise<Map<string, Observation>>;
}

/** Keeps distributions at ns resolution: more digits are noise and bulk in the JSON. */
const ns = (us: number): number => Math.round(us * 1000) / 1000;

function latencyObservation(t: GuestTiming, extra: Record<string, number> = {}): Observation {
  return { sample: median(t.us), distribution: t.us.map(ns), measured: { tscMHz: t.tscMHz, ...extra } };
}

function exitProbe(): Probe {
  let setup: ExitRttSetup | undefined;
  return {
    metrics: [
      {
        id: 'micro.exit-rtt',
        description: `PIO exit round trips per second: a real-mode guest writes port 0x80 ${EXITS_PER_RUN} times, each a KVM exit handled by the vCPU's worker (time in KVM_RUN plus handling)`,
        unit: 'exits/s',
        better: 'higher',
        tolerance: 0.1,
        params: { exitsPerRun: EXITS_PER_RUN },
      },
      {
        id: 'micro.exit-rtt.ratio-vs-c',
        description: `nodevisor's exit rate over a minimal C VMM's (bench/ref/exit-latency.c) on the same guest, run alternately in each repetition (target >= ${RATIO_VS_C_TARGET})`,
        unit: 'ratio',
        better: 'higher',
        tolerance: 0.1,
        params: { target: RATIO_VS_C_TARGET },
      },
    ],
    prepare() {
      setup ??= prepareExitRtt(EXITS_PER_RUN);
    },
    async measure(knobs) {
      const pair = await exitRatePair(setup!, knobs);
      return new Map<string, Observation>([
        ['micro.exit-rtt', { sample: pair.node, measured: { usPerExit: 1e6 / pair.node } }],
        ['micro.exit-rtt.ratio-vs-c', { sample: pair.node / pair.c, measured: { cReferenceExitsPerSecond: pair.c } }],
      ]);
    },
  };
}

/**
 * Runs two measurements back to back, `a` first in the 1st, 3rd... call and
 * `b` first in the others: each pair meets the same machine load, and a drift
 * in it favours neither. Returns [a's, b's].
 */
function alternating(): <T>(a: () => Promise<T>, b: () => Promise<T>) => Promise<[T, T]> {
  let calls = 0;
  return async (a, b) => {
    if (calls++ % 2 === 0) {
      const x = await a();
      return [x, await b()];
    }
    const y = await b();
    return [await a(), y];
  };
}

function exitWithTopProbe(): Probe {
  let setup: ExitRttSetup | undefined;
  const pair = alternating();
  return {
    metrics: [
      {
        id: 'micro.exit-rtt.with-top',
        description: `exit rate with a top client attached (the API socket served, stats polled every ${TOP_POLL_MS} ms) over the rate without, run back to back in each repetition, in alternating order (target >= ${WITH_TOP_TARGET})`,
        unit: 'ratio',
        better: 'higher',
        tolerance: 0.05,
        params: { target: WITH_TOP_TARGET, pollMs: TOP_POLL_MS, exitsPerRun: EXITS_PER_RUN },
      },
    ],
    prepare() {
      setup ??= prepareExitRtt(EXITS_PER_RUN);
    },
    async measure(knobs) {
      const [plain, watched] = await pair(
        () => nodeExitRate(setup!, knobs),
        () => nodeExitRate(setup!, knobs, attachTop),
      );
      return new Map([['micro.exit-rtt.with-top', { sample: watched / plain, measured: { withTopExitsPerSecond: watched, withoutExitsPerSecond: plain } }]]);
    },
  };
}

/**
 * The halt polling of the user-halt-poll probe: the host KVM's own
 * `halt_poll_ns`, which its LAPIC (split and kernel modes) applies to the
 * same halts, whatever the VM's default on this host would be.
 */
function userHaltPollNs(): number {
  try {
    const n = Number(readFileSync('/sys/module/kvm/parameters/halt_poll_ns', 'utf8').trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : KVM_HALT_POLL_NS;
  } catch {
    return KVM_HALT_POLL_NS;
  }
}

function ipiProbe(mode: IrqchipMode): Probe {
  const id = `micro.ipi-rtt.${mode}`;
  // The VM's defaults: with the userspace LAPIC, halt polling as a 2-vCPU VM gets it on this host.
  const poll: Record<string, number> = mode === 'user' ? { haltPollNs: defaultPollNs(KVM_HALT_POLL_NS, 2) } : {};
  return {
    metrics: [
      {
        id,
        description: `IPI round trip between two halted vCPUs, irqchip ${mode}: guest TSC from the PING's ICR write to the PONG handler (median of ${IPI_ROUNDS})${mode === 'user' ? `; the VM's default halt polling (haltPollNs ${poll['haltPollNs']} here; see micro.ipi-rtt.user-halt-poll)` : ''}`,
        unit: 'us',
        better: 'lower',
        tolerance: 0.25,
        params: { irqchip: mode, roundsPerRepetition: IPI_ROUNDS, ...poll },
      },
    ],
    prepare() {
      microImages.ipi(false, IPI_ROUNDS);
    },
    async measure(knobs) {
      return new Map([[id, latencyObservation(await ipiRoundTrips(mode, false, IPI_ROUNDS, knobs))]]);
    },
  };
}

/**
 * Halt polling's worth on the userspace LAPIC, whatever the VM's default:
 * the halted IPI round trip with polling as long as the host KVM's
 * `halt_poll_ns` (the window KVM's LAPIC polls in the other modes) and
 * with none, paired in each repetition in alternating order.
 * `pollWakesPerRoundTrip` shows it caught the wake-ups (two per round trip
 * when every one is caught). On a host where the two vCPU threads share a
 * core part of the time it is bimodal (see the README).
 */
function haltPollProbe(): Probe {
  const withPoll = 'micro.ipi-rtt.user-halt-poll';
  const gain = 'micro.ipi-rtt.halt-poll-gain';
  const pollNs = userHaltPollNs();
  const pair = alternating();
  return {
    metrics: [
      {
        id: withPoll,
        description: `micro.ipi-rtt.user with halted vCPUs polling up to the host KVM's halt_poll_ns (${pollNs} ns), as KVM's LAPIC does in the other modes (median of ${IPI_ROUNDS})`,
        unit: 'us',
        better: 'lower',
        tolerance: 0.25,
        params: { irqchip: 'user', haltPollNs: pollNs, roundsPerRepetition: IPI_ROUNDS },
      },
      {
        id: gain,
        description: 'IPI round trip without halt polling (haltPollNs 0) over with it, irqchip user, both in each repetition in alternating order (above 1: polling saves time)',
        unit: 'ratio',
        better: 'higher',
        tolerance: 0.2,
        params: { irqchip: 'user', roundsPerRepetition: IPI_ROUNDS, haltPollNs: pollNs },
      },
    ],
    prepare() {
      microImages.ipi(false, IPI_ROUNDS);
    },
    async measure(knobs) {
      const run = (haltPollNs: number) => (): Promise<GuestTiming> => ipiRoundTrips('user', false, IPI_ROUNDS, knobs, { haltPollNs });
      const [off, on] = await pair(run(0), run(pollNs));
      const onObservation = latencyObservation(on);
      return new Map([
        [withPoll, onObservation],
        [gain, { sample: median(off.us) / onObservation.sample, measured: { withoutUs: median(off.us), pollWakesPerRoundTrip: on.haltPollWakes / (IPI_ROUNDS + IPI_WARMUP), pollWakesWithout: off.haltPollWakes } }],
      ]);
    },
  };
}

function irqProbe(mode: IrqchipMode): Probe {
  const id = `micro.irq-injection.${mode}`;
  return {
    metrics: [
      {
        id,
        description: `device interrupt latency, irqchip ${mode}: guest TSC from the OUT that makes the UART raise IRQ 4 (IOAPIC, edge) to the handler; includes that port exit (see portExitUs) (median of ${IRQ_ROUNDS})`,
        unit: 'us',
        better: 'lower',
        tolerance: 0.25,
        params: { irqchip: mode, roundsPerRepetition: IRQ_ROUNDS },
      },
    ],
    prepare() {
      microImages.irq(IRQ_ROUNDS);
    },
    async measure(knobs) {
      const t = await deviceIrqLatencies(mode, IRQ_ROUNDS, knobs);
      return new Map([[id, latencyObservation(t, { portExitUs: median(t.refUs) })]]);
    },
  };
}

function timerProbe(mode: IrqchipMode): Probe {
  const id = `micro.timer-accuracy.${mode}`;
  return {
    metrics: [
      {
        id,
        description: `LAPIC periodic timer, irqchip ${mode}: achieved over requested period for ${TIMER_PERIOD_US} us, ${TIMER_TICKS} ticks timed by the guest TSC (1.0 = exact; above = late or lost ticks)`,
        unit: 'ratio',
        better: 'lower',
        tolerance: 0.1,
        params: { irqchip: mode, requestedPeriodUs: TIMER_PERIOD_US, ticksPerRepetition: TIMER_TICKS },
      },
    ],
    prepare() {
      microImages.timer(TIMER_PERIOD_US, TIMER_TICKS);
    },
    async measure(knobs) {
      const t = await timerPeriods(mode, TIMER_PERIOD_US, TIMER_TICKS, knobs);
      // The achieved period is elapsed time over ticks (the mean), which is
      // what a guest keeping time by counting ticks sees; single periods
      // (the distribution) show the jitter.
      const mean = t.us.reduce((a, b) => a + b, 0) / t.us.length;
      return new Map([[id, { sample: mean / TIMER_PERIOD_US, distribution: t.us.map((p) => ns(p / TIMER_PERIOD_US)), measured: { tscMHz: t.tscMHz } }]]);
    },
  };
}

function wakeProbe(): Probe {
  const id = 'micro.wake.notify';
  return {
    metrics: [
      {
        id,
        description: `cross-thread wake round trip: two worker_threads ping-pong through WakeWord (Atomics.notify to a thread in Atomics.wait, both ways) (median of ${WAKE_ROUNDS})`,
        unit: 'us',
        better: 'lower',
        tolerance: 0.3,
        params: { roundsPerRepetition: WAKE_ROUNDS },
      },
    ],
    prepare() {},
    async measure() {
      const us = await wakeRoundTrips(WAKE_ROUNDS, WAKE_WARMUP);
      return new Map([[id, { sample: median(us), distribution: us.map(ns) }]]);
    },
  };
}

function kickProbe(): Probe {
  const id = 'micro.wake.kick';
  return {
    metrics: [
      {
        id,
        description: `kick path: IPI round trip between two vCPUs spinning in the guest (irqchip user), so each delivery kicks a thread out of KVM_RUN (signal + immediate_exit); compare micro.ipi-rtt.user (halted: futex wake) (median of ${IPI_ROUNDS})`,
        unit: 'us',
        better: 'lower',
        tolerance: 0.3,
        params: { irqchip: 'user', roundsPerRepetition: IPI_ROUNDS },
      },
    ],
    prepare() {
      microImages.ipi(true, IPI_ROUNDS);
    },
    async measure(knobs) {
      return new Map([[id, latencyObservation(await ipiRoundTrips('user', true, IPI_ROUNDS, knobs))]]);
    },
  };
}

/**
 * Paravirtual EOI's worth on the userspace LAPIC: the halted IPI round trip
 * with it (the default) and without, back to back in each repetition in
 * alternating order, paired. `pvEoisPerRoundTrip` shows it was in use.
 */
function pvEoiProbe(): Probe {
  const without = 'micro.ipi-rtt.user-no-pv-eoi';
  const gain = 'micro.ipi-rtt.pv-eoi-gain';
  const pair = alternating();
  return {
    metrics: [
      {
        id: without,
        description: `micro.ipi-rtt.user with paravirtual EOI not offered to the guest (pvEoi: false): every EOI is a register write and an exit (median of ${IPI_ROUNDS})`,
        unit: 'us',
        better: 'lower',
        tolerance: 0.25,
        params: { irqchip: 'user', pvEoi: false, roundsPerRepetition: IPI_ROUNDS },
      },
      {
        id: gain,
        description: 'IPI round trip without paravirtual EOI over with it, irqchip user, both in each repetition in alternating order (above 1: PV EOI saves time)',
        unit: 'ratio',
        better: 'higher',
        tolerance: 0.2,
        params: { irqchip: 'user', roundsPerRepetition: IPI_ROUNDS },
      },
    ],
    prepare() {
      microImages.ipi(false, IPI_ROUNDS);
    },
    async measure(knobs) {
      const [off, on] = await pair(
        () => ipiRoundTrips('user', false, IPI_ROUNDS, knobs, { pvEoi: false }),
        () => ipiRoundTrips('user', false, IPI_ROUNDS, knobs),
      );
      const onUs = median(on.us);
      const offObservation = latencyObservation(off);
      return new Map([
        [without, offObservation],
        [gain, { sample: offObservation.sample / onUs, measured: { withUs: onUs, pvEoisPerRoundTrip: on.pvEois / (IPI_ROUNDS + IPI_WARMUP), pvEoisWithout: off.pvEois } }],
      ]);
    },
  };
}

const USER_VS_KERNEL: MetricSpec = {
  id: 'micro.ipi-rtt.user-vs-kernel',
  description: `micro.ipi-rtt.user over micro.ipi-rtt.kernel, paired per repetition: the cost of the userspace LAPIC (target <= ${USER_VS_KERNEL_TARGET})`,
  unit: 'ratio',
  better: 'lower',
  tolerance: 0.25,
  params: { target: USER_VS_KERNEL_TARGET },
};

function allProbes(): Probe[] {
  return [
    exitProbe(),
    exitWithTopProbe(),
    ...IRQCHIP_MODES.map(ipiProbe),
    pvEoiProbe(),
    haltPollProbe(),
    ...IRQCHIP_MODES.map(irqProbe),
    ...IRQCHIP_MODES.map(timerProbe),
    wakeProbe(),
    kickProbe(),
  ];
}

class Collected {
  samples: number[] = [];
  distribution: number[] = [];
  measured = new Map<string, number[]>();

  add(o: Observation): void {
    this.samples.push(o.sample);
    if (o.distribution) this.distribution.push(...o.distribution);
    for (const [k, v] of Object.entries(o.measured ?? {})) {
      if (!this.measured.has(k)) this.measured.set(k, []);
      this.measured.get(k)!.push(v);
    }
  }

  toMetric(spec: MetricSpec): Metric {
    const params: Params = { ...spec.params };
    for (const [k, v] of this.measured) params[k] = roundSig(median(v), 5);
    const m: Metric = { ...spec, samples: this.samples, params };
    if (this.distribution.length) m.distribution = this.distribution;
    return m;
  }
}

export async function runMicro(ctx: BenchContext): Promise<SuiteResult> {
  const wantRatio = isSelected(USER_VS_KERNEL.id, ctx.only);
  const needed = (p: Probe): boolean =>
    p.metrics.some((m) => isSelected(m.id, ctx.only) || (wantRatio && (m.id === 'micro.ipi-rtt.user' || m.id === 'micro.ipi-rtt.kernel')));
  const probes = allProbes().filter(needed);
  const notes: string[] = [];
  if (probes.length === 0) return { suite: 'micro', metrics: [], notes };

  const collected = new Map<string, Collected>();
  const total = probes.length * ctx.repetitions;
  let done = 0;
  ctx.progress(done, total, 'building guests');
  for (const p of probes) p.prepare();
  for (let rep = 0; rep < ctx.repetitions; rep++) {
    for (const p of probes) {
      const label = p.metrics[0]!.id;
      ctx.progress(done, total, `${label} (${rep + 1}/${ctx.repetitions})`);
      let results: Map<string, Observation>;
      try {
        results = await p.measure(ctx.testKnobs);
      } catch (e) {
        throw new Error(`${label}, repetition ${rep + 1}: ${(e as Error).message}`, { cause: e });
      }
      for (const [id, o] of results) {
        if (!collected.has(id)) collected.set(id, new Collected());
        collected.get(id)!.add(o);
        ctx.log(`${id} repetition ${rep + 1}: ${fmtSig(o.sample, 4)}`);
      }
      ctx.progress(++done, total, label);
    }
  }

  const metrics: Metric[] = [];
  for (const p of probes) for (const spec of p.metrics) if (collected.has(spec.id)) metrics.push(collected.get(spec.id)!.toMetric(spec));
  const user = collected.get('micro.ipi-rtt.user')?.samples;
  const kernel = collected.get('micro.ipi-rtt.kernel')?.samples;
  if (wantRatio && user && kernel) {
    const ratio = user.map((u, i) => u / kernel[i]!);
    metrics.push({ ...USER_VS_KERNEL, samples: ratio, params: { ...USER_VS_KERNEL.params } });
    const r = median(ratio);
    notes.push(`IPI round trip, user over kernel irqchip: ${r.toFixed(2)}x (target <= ${USER_VS_KERNEL_TARGET}: ${r <= USER_VS_KERNEL_TARGET ? 'met' : 'missed'})`);
  }
  const vsC = collected.get('micro.exit-rtt.ratio-vs-c')?.samples;
  if (vsC) {
    const r = median(vsC);
    notes.push(`exit rate over the C reference's: ${r.toFixed(3)} (target >= ${RATIO_VS_C_TARGET}: ${r >= RATIO_VS_C_TARGET ? 'met' : 'missed'})`);
  }
  const withTop = collected.get('micro.exit-rtt.with-top')?.samples;
  if (withTop) {
    const r = median(withTop);
    notes.push(`exit rate with a top client attached over without: ${r.toFixed(3)} (target >= ${WITH_TOP_TARGET}: ${r >= WITH_TOP_TARGET ? 'met' : 'missed'})`);
  }
  const tsc = metrics.map((m) => m.params?.tscMHz).filter((v): v is number => typeof v === 'number');
  if (tsc.length) notes.push(`guest TSC calibrated against the ACPI PM timer: ${roundSig(median(tsc), 5)} MHz`);
  if (Kvm.isSoftwareVirtualised()) {
    notes.push('this host\'s KVM virtualises in software (kvm_pvm): guest ring 0 is emulated, so in-guest latencies here are far above what hardware KVM gives');
  }
  if (ctx.testKnobs && Object.values(ctx.testKnobs).some((v) => v)) notes.push(`test knobs in effect: ${JSON.stringify(ctx.testKnobs)} (deliberately slowed; not a real measurement)`);
  return { suite: 'micro', metrics, notes };
}

export const microSuite: Suite = {
  name: 'micro',
  description: 'exit round trip vs a C VMM; IPI, device interrupt and LAPIC timer behaviour per irqchip mode; wake and kick costs',
  run: runMicro,
};
