import { native } from '../kvm/addon.js';
import { monotonicClock } from './clock.js';

/**
 * How long a thread that is out of work polls for more before it sleeps:
 * KVM's `halt_poll_ns` policy, used for halted vCPUs of the userspace LAPIC
 * (vcpu/run-loop.ts) and for idle virtio I/O threads. A sleeping thread's
 * wake-up costs tens of microseconds on a busy host - the bulk of an IPI
 * round trip between two halted vCPUs, or of a request at queue depth 1 -
 * and a thread that polls a little first skips it when work comes soon.
 *
 * The window grows when an idle spell ends soon after polling would have
 * stopped (the next one can catch it by polling longer) and shrinks when
 * idle spells last longer than the most it may poll, so a thread that idles
 * for milliseconds at a time stops burning a core.
 */
export interface PollWindowOptions {
  /** The longest a thread polls before it sleeps, in ns (0: never poll). KVM's halt default: 200,000. */
  maxNs: number;
  /** The first window when polling starts, in ns (KVM: 10,000). */
  growStartNs?: number;
  /** Factor the window grows by (KVM: 2). */
  grow?: number;
  /** Divisor the window shrinks by, 0: straight back to no polling (KVM: 2). */
  shrink?: number;
}

export const KVM_HALT_POLL_NS = 200_000;

/** Looks per clock read in `pollUntil`: reading the clock costs more than the looks polled for. */
const LOOKS_PER_CLOCK_READ = 16;

/**
 * Calls `look` until it returns something truthy, which it returns, or until
 * the monotonic clock passes `untilNs`, when it returns the last (falsy)
 * result. Between rounds of looks it yields the CPU: where the scheduler put
 * the thread being waited for on this CPU, that thread runs instead of
 * waiting for the poll to end (KVM's poll stops when another task needs its
 * CPU, which JavaScript cannot see).
 */
export function pollUntil<T>(untilNs: number, look: () => T): T {
  for (;;) {
    let r = look();
    for (let i = 1; i < LOOKS_PER_CLOCK_READ && !r; i++) r = look();
    if (r || monotonicClock.nowNs() >= untilNs) return r;
    native.yieldCpu();
  }
}

export class PollWindow {
  /** How long the next idle spell polls, in ns. */
  windowNs = 0;
  private readonly maxNs: number;
  private readonly growStartNs: number;
  private readonly grow: number;
  private readonly shrink: number;

  constructor(o: PollWindowOptions) {
    if (!Number.isFinite(o.maxNs) || o.maxNs < 0) throw new RangeError(`poll limit must be a non-negative number of ns, not ${o.maxNs}`);
    this.maxNs = o.maxNs;
    this.growStartNs = Math.min(o.growStartNs ?? 10_000, o.maxNs);
    this.grow = o.grow ?? 2;
    this.shrink = o.shrink ?? 2;
  }

  /**
   * Learns from an idle spell that lasted `idleNs` (for a vCPU: from HLT
   * until it had work again), polling for up to `windowNs` of it.
   */
  afterIdle(idleNs: number): void {
    if (this.maxNs === 0) return;
    // Caught by the poll: the window is right.
    if (idleNs <= this.windowNs) return;
    if (idleNs > this.maxNs) {
      // Longer than any poll would wait: polling only burnt the core.
      if (this.windowNs > 0) this.windowNs = this.shrink === 0 ? 0 : Math.floor(this.windowNs / this.shrink);
      if (this.windowNs < this.growStartNs) this.windowNs = 0;
      return;
    }
    // Short enough that a longer poll would have caught it.
    this.windowNs = Math.min(this.maxNs, Math.max(this.growStartNs, this.windowNs * this.grow));
  }
}
