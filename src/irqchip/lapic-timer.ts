/**
 * The local APIC timer (SDM 11.5.4): one-shot, periodic and TSC-deadline.
 *
 * The APIC bus clock is 1 GHz, so one tick is 1 ns before the divider. The
 * counter is not stepped; it is derived from `Clock.nowNs()` and the time the
 * current count-down started. Expiry is noticed by `poll()`, which the run
 * loop (or a timer thread) calls once `nextDeadlineNs()` has passed.
 *
 * All timer state lives in the shared block under a per-APIC mutex, because
 * `poll()` may run on a thread other than the owning vCPU (the owner may be
 * inside KVM_RUN when the deadline passes) while the owner reprograms it.
 */
import { Mutex } from '../sync/mutex.js';
import type { Clock } from '../sync/clock.js';
import type { TscSource } from './types.js';
import {
  F_DEADLINE,
  F_START,
  F_TSC_DEADLINE,
  LVT_MASKED,
  LVT_TIMER_MODE_SHIFT,
  Lvt,
  TimerMode,
  W_LVT,
  W_TDCR,
  W_TIMER_LOCK,
  W_TMICT,
} from './lapic-regs.js';

/** ns per tick of the APIC bus clock before division. */
export const APIC_BUS_NS_PER_TICK = 1;

/**
 * The shortest period a periodic timer runs at. A shorter one (a count of
 * 1 is 1 ns) would have the vCPU do nothing but take timer interrupts, as
 * each costs far more than its period here; hardware cannot deliver them
 * that fast either. KVM's LAPIC clamps to the same 200 us
 * (kvm.min_timer_period_us), so every irqchip mode behaves alike.
 */
export const MIN_PERIODIC_NS = 200_000;

/** The divide configuration register's encoding: bits 0, 1 and 3 (SDM figure 11-10). */
export function timerDivisor(tdcr: number): number {
  const code = (tdcr & 3) | ((tdcr >> 1) & 4);
  return 1 << ((code + 1) & 7); // 000 -> 2, ..., 110 -> 128, 111 -> 1
}

/** A periodic timer's period for a count-down of `ns`. */
function periodNs(ns: number): number {
  return Math.max(ns, MIN_PERIODIC_NS);
}

function timerMode(lvt: number): number {
  return (lvt >>> LVT_TIMER_MODE_SHIFT) & 3;
}

export class LapicTimer {
  private readonly lock: Mutex;
  private readonly lvtIndex: number;

  /**
   * @param fire called, outside the lock, with the LVT timer value current
   *   at expiry when an unmasked expiry is due; it raises the interrupt.
   */
  constructor(
    private readonly i32: Int32Array,
    private readonly f64: Float64Array,
    private readonly w: number,
    private readonly f: number,
    private readonly clock: Clock,
    private readonly tsc: TscSource | undefined,
    private readonly fire: (lvt: number) => void,
  ) {
    this.lock = new Mutex(i32, w + W_TIMER_LOCK);
    this.lvtIndex = w + W_LVT + Lvt.Timer;
  }

  /** Power-up / INIT state: masked one-shot, counts zero, disarmed. */
  reset(): void {
    this.lock.lock();
    Atomics.store(this.i32, this.lvtIndex, LVT_MASKED);
    this.i32[this.w + W_TMICT] = 0;
    this.i32[this.w + W_TDCR] = 0;
    this.f64[this.f + F_START] = 0;
    this.f64[this.f + F_DEADLINE] = Infinity;
    this.f64[this.f + F_TSC_DEADLINE] = 0;
    this.lock.unlock();
  }

  lvt(): number {
    return Atomics.load(this.i32, this.lvtIndex);
  }

  initialCount(): number {
    return Atomics.load(this.i32, this.w + W_TMICT) >>> 0;
  }

  divideConfig(): number {
    return Atomics.load(this.i32, this.w + W_TDCR);
  }

  /**
   * Writes the LVT timer entry. Expiries due under the old entry are taken
   * first (silently if it was masked: a masked timer keeps counting but
   * raises nothing). Switching into or out of TSC-deadline mode disarms the
   * timer (SDM 11.5.4.1); one-shot <-> periodic applies at the next expiry.
   */
  writeLvt(value: number): void {
    this.poll();
    this.lock.lock();
    const old = this.lvt();
    if ((timerMode(old) === TimerMode.TscDeadline) !== (timerMode(value) === TimerMode.TscDeadline)) {
      this.disarmLocked();
    }
    Atomics.store(this.i32, this.lvtIndex, value);
    this.lock.unlock();
  }

  /** Initial-count write: starts (or, with 0, stops) a count-down. Ignored in TSC-deadline mode. */
  writeInitialCount(value: number): void {
    this.poll();
    this.lock.lock();
    if (timerMode(this.lvt()) !== TimerMode.TscDeadline) {
      Atomics.store(this.i32, this.w + W_TMICT, value | 0);
      const count = value >>> 0;
      if (count === 0) {
        this.f64[this.f + F_DEADLINE] = Infinity;
      } else {
        const now = this.clock.nowNs();
        const ns = count * this.tickNs();
        this.f64[this.f + F_START] = now;
        this.f64[this.f + F_DEADLINE] = now + (timerMode(this.lvt()) === TimerMode.Periodic ? periodNs(ns) : ns);
      }
    }
    this.lock.unlock();
  }

  /**
   * Divide-configuration write. A running count-down keeps its current count
   * and continues at the new rate (what KVM does; the SDM leaves it open).
   */
  writeDivide(value: number): void {
    this.poll();
    this.lock.lock();
    const oldTick = this.tickNs();
    Atomics.store(this.i32, this.w + W_TDCR, value & 0xb);
    const deadline = this.f64[this.f + F_DEADLINE]!;
    if (timerMode(this.lvt()) !== TimerMode.TscDeadline && deadline !== Infinity) {
      const now = this.clock.nowNs();
      const newTick = this.tickNs();
      const remaining = Math.max(0, deadline - now) / oldTick;
      const newDeadline = now + remaining * newTick;
      this.f64[this.f + F_DEADLINE] = newDeadline;
      this.f64[this.f + F_START] = newDeadline - this.initialCount() * newTick;
    }
    this.lock.unlock();
  }

  /** The current-count register. */
  currentCount(): number {
    this.lock.lock();
    const count = this.currentCountLocked();
    this.lock.unlock();
    return count;
  }

  /** IA32_TSC_DEADLINE as read: the armed deadline, or 0 once fired / outside TSC-deadline mode. */
  readTscDeadline(): number {
    this.poll();
    this.lock.lock();
    const v = timerMode(this.lvt()) === TimerMode.TscDeadline ? this.f64[this.f + F_TSC_DEADLINE]! : 0;
    this.lock.unlock();
    return v;
  }

  /**
   * IA32_TSC_DEADLINE write: arms at that TSC value (0 disarms); ignored
   * outside TSC-deadline mode (SDM 11.5.4.1). A deadline already passed
   * fires at once.
   */
  writeTscDeadline(ticks: number): void {
    const tsc = this.tsc;
    if (tsc === undefined) return;
    this.poll();
    this.lock.lock();
    if (timerMode(this.lvt()) === TimerMode.TscDeadline) {
      this.f64[this.f + F_TSC_DEADLINE] = ticks;
      if (ticks === 0) {
        this.f64[this.f + F_DEADLINE] = Infinity;
      } else {
        const now = this.clock.nowNs();
        const ahead = Math.max(0, ticks - tsc.nowTicks());
        this.f64[this.f + F_DEADLINE] = now + (ahead * 1e6) / tsc.khz;
      }
    }
    this.lock.unlock();
    this.poll();
  }

  /**
   * When `poll()` next has something to do, in `Clock` ns; Infinity when
   * disarmed or masked (a masked timer's expiries are caught up silently on
   * the next register access or poll, so nobody needs to wake for them).
   */
  nextDeadlineNs(): number {
    this.lock.lock();
    const d = this.lvt() & LVT_MASKED ? Infinity : this.f64[this.f + F_DEADLINE]!;
    this.lock.unlock();
    return d;
  }

  /**
   * Takes an expiry if the deadline has passed: at most one interrupt per
   * call. A periodic timer is re-armed at its next period boundary after
   * now, so a late poll catches up without a burst of interrupts.
   */
  poll(): void {
    this.lock.lock();
    const lvt = this.pollLocked();
    this.lock.unlock();
    if (lvt >= 0) this.fire(lvt);
  }

  /** Returns the LVT value to fire with, or -1. */
  private pollLocked(): number {
    const deadline = this.f64[this.f + F_DEADLINE]!;
    if (deadline === Infinity) return -1;
    const now = this.clock.nowNs();
    if (now < deadline) return -1;
    const lvt = this.lvt();
    const mode = timerMode(lvt);
    if (mode === TimerMode.TscDeadline) {
      // The MSR reads 0 once the deadline has been reached.
      this.f64[this.f + F_TSC_DEADLINE] = 0;
      this.f64[this.f + F_DEADLINE] = Infinity;
    } else if (mode === TimerMode.Periodic) {
      const period = periodNs(this.initialCount() * this.tickNs());
      let start = this.f64[this.f + F_START]!;
      start += Math.floor((now - start) / period) * period;
      let next = start + period;
      if (next <= now) {
        // Floating-point rounding: never leave a deadline that is already due.
        start = next;
        next += period;
      }
      this.f64[this.f + F_START] = start;
      this.f64[this.f + F_DEADLINE] = next;
    } else {
      // One-shot (and the reserved mode 3, treated alike): stops at zero.
      this.f64[this.f + F_DEADLINE] = Infinity;
    }
    return lvt & LVT_MASKED ? -1 : lvt;
  }

  private currentCountLocked(): number {
    const lvt = this.lvt();
    const mode = timerMode(lvt);
    const deadline = this.f64[this.f + F_DEADLINE]!;
    const initial = this.initialCount();
    if (mode === TimerMode.TscDeadline || deadline === Infinity || initial === 0) return 0;
    const elapsed = Math.floor((this.clock.nowNs() - this.f64[this.f + F_START]!) / this.tickNs());
    if (elapsed <= 0) return initial;
    if (mode === TimerMode.Periodic) return initial - (elapsed % initial);
    return elapsed >= initial ? 0 : initial - elapsed;
  }

  private disarmLocked(): void {
    Atomics.store(this.i32, this.w + W_TMICT, 0);
    this.f64[this.f + F_DEADLINE] = Infinity;
    this.f64[this.f + F_TSC_DEADLINE] = 0;
  }

  private tickNs(): number {
    return timerDivisor(this.divideConfig()) * APIC_BUS_NS_PER_TICK;
  }
}
