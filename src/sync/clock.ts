/**
 * Time source for device and irqchip models. Every thread must agree on it,
 * so it is CLOCK_MONOTONIC (process.hrtime), not `performance.now()`, whose
 * origin differs per worker. Tests pass a `FakeClock`.
 */
export interface Clock {
  /** Nanoseconds on a process-wide monotonic clock. */
  nowNs(): number;
}

export const monotonicClock: Clock = {
  nowNs(): number {
    const [s, ns] = process.hrtime();
    return s * 1e9 + ns;
  },
};

/** A clock that moves only when told to; for deterministic model tests. */
export class FakeClock implements Clock {
  constructor(private ns = 0) {}
  nowNs(): number {
    return this.ns;
  }
  advance(ns: number): void {
    this.ns += ns;
  }
  set(ns: number): void {
    this.ns = ns;
  }
}
