import { monotonicClock, type Clock } from './clock.js';

/**
 * The guest's clock for device and irqchip models: CLOCK_MONOTONIC minus
 * the time the VM has spent paused, so that a pause neither fires timers
 * nor makes them jump afterwards. Lives in shared memory so every thread
 * reads the same value; only the main thread pauses and resumes it.
 *
 * Words (BigInt64): [0] offset from the host clock in ns, [1] the frozen
 * reading while paused (0 while running). Resume publishes the new offset
 * before clearing [1], so a reader never sees a running clock with the old
 * offset.
 */
export class VmClock implements Clock {
  private readonly w: BigInt64Array;

  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(16);
  }

  constructor(
    buffer: SharedArrayBuffer,
    private readonly host: Clock = monotonicClock,
  ) {
    this.w = new BigInt64Array(buffer, 0, 2);
  }

  nowNs(): number {
    const frozen = Atomics.load(this.w, 1);
    if (frozen !== 0n) return Number(frozen);
    return this.host.nowNs() - Number(Atomics.load(this.w, 0));
  }

  /** Host CLOCK_MONOTONIC ns at which this clock reads `vmNs` (for timers armed in host time). */
  toHostNs(vmNs: number): number {
    return vmNs + Number(Atomics.load(this.w, 0));
  }

  get paused(): boolean {
    return Atomics.load(this.w, 1) !== 0n;
  }

  /** Total ns this clock has been held. */
  get heldNs(): number {
    return Number(Atomics.load(this.w, 0));
  }

  /** Makes the clock read `vmNs` now (a restored VM continues its snapshot's time); only before any thread reads it. */
  setReading(vmNs: number): void {
    Atomics.store(this.w, 0, BigInt(Math.round(this.host.nowNs() - vmNs)));
    Atomics.store(this.w, 1, 0n);
  }

  /** Stops the clock at its current reading. */
  freeze(): void {
    if (this.paused) return;
    Atomics.store(this.w, 1, BigInt(Math.max(1, Math.round(this.nowNs()))));
  }

  /** Lets the clock run again from where it stopped; returns how long it was held, in ns. */
  thaw(): number {
    const frozen = Atomics.load(this.w, 1);
    if (frozen === 0n) return 0;
    const offset = BigInt(Math.round(this.host.nowNs())) - frozen;
    const held = Number(offset - Atomics.load(this.w, 0));
    Atomics.store(this.w, 0, offset);
    Atomics.store(this.w, 1, 0n);
    return held;
  }
}
