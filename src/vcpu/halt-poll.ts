/**
 * Adaptive halt polling for vCPUs whose HLT the VMM handles (the userspace
 * LAPIC). A halted vCPU's thread sleeps in the kernel until a waker
 * notifies it, and on a busy host that sleep-and-wake costs tens of
 * microseconds: the bulk of an IPI round trip between two halted vCPUs. KVM's
 * own LAPIC avoids it by polling for a while before it sleeps
 * (`halt_poll_ns`); this is the same policy for our halts, with the same
 * tunables and defaults, so that `user` mode and `kernel` mode halt alike.
 *
 * The window grows when a halt ends soon after it would have stopped
 * polling (a wake-up the next halt can catch by polling longer) and shrinks
 * when halts last longer than the most it may poll (an idle vCPU), so a vCPU
 * that sleeps for milliseconds between timer ticks stops burning a core.
 */
export interface HaltPollOptions {
  /** The longest a vCPU polls before it sleeps, in ns (0: never poll). KVM's default: 200,000. */
  maxNs: number;
  /** The first window when polling starts, in ns (KVM: 10,000). */
  growStartNs?: number;
  /** Factor the window grows by (KVM: 2). */
  grow?: number;
  /** Divisor the window shrinks by, 0: straight back to no polling (KVM: 2). */
  shrink?: number;
}

export const KVM_HALT_POLL_NS = 200_000;

export class HaltPoll {
  /** How long the next halt polls, in ns. */
  windowNs = 0;
  private readonly maxNs: number;
  private readonly growStartNs: number;
  private readonly grow: number;
  private readonly shrink: number;

  constructor(o: HaltPollOptions) {
    if (!Number.isFinite(o.maxNs) || o.maxNs < 0) throw new RangeError(`halt poll limit must be a non-negative number of ns, not ${o.maxNs}`);
    this.maxNs = o.maxNs;
    this.growStartNs = Math.min(o.growStartNs ?? 10_000, o.maxNs);
    this.grow = o.grow ?? 2;
    this.shrink = o.shrink ?? 2;
  }

  get enabled(): boolean {
    return this.maxNs > 0;
  }

  /**
   * Learns from a halt that lasted `haltNs` (from HLT until the vCPU had
   * work again), polling for up to `windowNs` of it.
   */
  afterHalt(haltNs: number): void {
    if (this.maxNs === 0) return;
    // Caught by the poll: the window is right.
    if (haltNs <= this.windowNs) return;
    if (haltNs > this.maxNs) {
      // Longer than any poll would wait: polling only burnt the core.
      if (this.windowNs > 0) this.windowNs = this.shrink === 0 ? 0 : Math.floor(this.windowNs / this.shrink);
      if (this.windowNs < this.growStartNs) this.windowNs = 0;
      return;
    }
    // Short enough that a longer poll would have caught it.
    this.windowNs = Math.min(this.maxNs, Math.max(this.growStartNs, this.windowNs * this.grow));
  }
}
