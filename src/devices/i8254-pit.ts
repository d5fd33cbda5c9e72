import type { AccessSize, BusDevice, DeviceHost } from './device.js';
import { Mutex } from '../sync/mutex.js';
import { defineLayout, f64, i32, loadState, mutex, repeat, required, saveState, type SavedState } from '../sync/state-layout.js';

/**
 * Intel 8254 programmable interval timer (datasheet order no. 231164) and
 * the PC's system control port B (port 0x61), which gates counter 2 and
 * shows its output.
 *
 * Port 0x61 lives in this module, as a second BusDevice over the same shared
 * state and mutex (`I8254Pit.port61`), because its two interesting bits are
 * counter 2's GATE input and OUT output: a separate device would need a
 * second lock taken inside the first for every calibration poll.
 */

/** The ports the PIT decodes, from base 0x40. */
export const PIT_PORT = 0x40;
export const PIT_PORT_COUNT = 4;
/** System control port B. */
export const PORT61 = 0x61;
export const PORT61_PORT_COUNT = 1;
/** ISA IRQ of counter 0 (the IRQ router moves it to IOAPIC pin 2). */
export const PIT_IRQ = 0;
/** The PIT's input clock: 14.31818 MHz / 12, fixed on every PC. */
export const PIT_HZ = 1_193_182;

/** Register offsets from port 0x40. */
export const PitReg = { Counter0: 0, Counter1: 1, Counter2: 2, Control: 3 } as const;

/** Control word fields (datasheet figure 7). */
export const PitControl = {
  /** Bits 7:6: the counter, or 3 for the read-back command. */
  SelectShift: 6,
  ReadBack: 3,
  /** Bits 5:4: 0 = counter latch command, 1 = LSB, 2 = MSB, 3 = LSB then MSB. */
  RwShift: 4,
  RwLatch: 0,
  RwLsb: 1,
  RwMsb: 2,
  RwWord: 3,
  /** Bits 3:1: the mode (6 and 7 alias 2 and 3). */
  ModeShift: 1,
  Bcd: 0x01,
} as const;

/** Read-back command bits (datasheet figure 10): both "don't latch" flags are active low. */
export const PitReadBack = { NoCount: 0x20, NoStatus: 0x10, Counter0: 0x02, Counter1: 0x04, Counter2: 0x08 } as const;

/** Status byte (datasheet figure 11): the programmed control bits 5:0 plus these. */
export const PitStatus = { Out: 0x80, NullCount: 0x40 } as const;

/** Port 0x61 bits. Bits 0-3 are written; bits 4-7 are read-only status. */
export const Port61Bits = {
  /** GATE input of counter 2. */
  Timer2Gate: 0x01,
  /** Speaker data enable (ANDed with counter 2's OUT on a real board). */
  SpeakerData: 0x02,
  /** Parity (SERR#) and channel (IOCHK#) check NMI disables, stored only. */
  ParityCheckDisable: 0x04,
  ChannelCheckDisable: 0x08,
  /** Refresh request toggle; here it toggles on every read, as QEMU does. */
  RefreshToggle: 0x10,
  /** OUT of counter 2; Linux's PIT TSC calibration polls it. */
  Timer2Out: 0x20,
  /** IOCHK# and SERR# NMI status: never set, nothing raises them. */
  ChannelCheck: 0x40,
  ParityError: 0x80,
} as const;

/** The shared state behind every thread's view of the PIT and port 0x61; structured-cloneable. */
export interface I8254PitState {
  /** Int32 words (the first is the mutex), then Float64 tick values and statistics. */
  readonly regs: SharedArrayBuffer;
}

export interface I8254PitOptions {
  /** The line counter 0's OUT drives (ISA IRQ 0). */
  irq: number;
  /**
   * Called, outside the mutex, after a guest access through this view moved
   * `nextDeadlineNs()` earlier (counter 0 reprogrammed): the VM's cue to wake
   * its timer thread, which may be asleep until a later (or no) deadline.
   */
  onDeadlineChange?: () => void;
}

export interface I8254PitStats {
  /** IRQ pulses driven for rising edges of counter 0's OUT. */
  irqPulses: number;
  /** Rising edges of counter 0's OUT that a late poll merged into one pulse. */
  missedTicks: number;
}

/**
 * All but `lock` are only touched with the lock held. Times are tick
 * numbers: ticks of the 1.193182 MHz clock since the Clock's origin.
 */
export const PIT_LAYOUT = defineLayout('i8254-pit', 1, {
  lock: mutex(),
  /** Bits 0-3 of port 0x61 as written. */
  p61: i32(),
  /** The refresh toggle, 0 or Port61Bits.RefreshToggle. */
  refresh: i32(),
  counter: repeat(3, {
    /** Mode bits as written (0-7). */
    mode: i32(),
    /** 1 = LSB, 2 = MSB, 3 = LSB then MSB. */
    rw: i32(),
    bcd: i32(),
    /** Phase. */
    phase: i32(),
    /** The count register as written (16 bits). */
    cr: i32(),
    /** LSB of a two-byte write in progress. */
    crLsb: i32(),
    /** The next count byte written is the MSB. */
    writeMsb: i32(),
    /** The next unlatched read returns the MSB. */
    readMsb: i32(),
    /** OlState. */
    ol: i32(),
    /** Output latch contents (encoded count). */
    olValue: i32(),
    stLatched: i32(),
    stValue: i32(),
    gate: i32(),
    /** OUT while no count is loaded: low in mode 0, high otherwise. */
    outIdle: i32(),
    /** A pending modes 2/3 count switch happens at the end of a high half. */
    switchHigh: i32(),
  }),
  counterTime: repeat(3, {
    /** Tick at which the counting element was (or will be) loaded. */
    l: f64(),
    /** The count of the current cycle (1..65536). */
    n: f64(),
    /** Modes 0/4 with GATE low: decrements made before counting stopped. */
    pauseE: f64(),
    /** The counting element while it does not count. */
    frozenCe: f64(),
    /** Modes 2/3: tick at which (L, N) replaces (PL, PN); -Infinity when none is pending. */
    s: f64(),
    pl: f64(),
    pn: f64(),
    /** NULL COUNT reads 1 before this tick. */
    nullUntil: f64(),
  }),
  /** Counter 0's rising edges up to this tick have been delivered. */
  irqDone: f64(),
  irqPulses: f64(),
  missed: f64(),
});
const { lock: LOCK, p61: P61, refresh: REFRESH } = PIT_LAYOUT.at;
const { base: COUNTER_WORDS, stride: WORDS_PER_COUNTER } = PIT_LAYOUT.at.counter;
const {
  mode: C_MODE, rw: C_RW, bcd: C_BCD, phase: C_PHASE, cr: C_CR, crLsb: C_CR_LSB, writeMsb: C_WRITE_MSB, readMsb: C_READ_MSB, ol: C_OL, olValue: C_OL_VALUE,
  stLatched: C_ST_LATCHED, stValue: C_ST_VALUE, gate: C_GATE, outIdle: C_OUT_IDLE, switchHigh: C_SWITCH_HIGH,
} = PIT_LAYOUT.at.counter.fields;
const WORDS = PIT_LAYOUT.f64ByteOffset / 4;
const FLOAT_BYTE_OFFSET = PIT_LAYOUT.f64ByteOffset;
const { base: FLOATS_BASE, stride: FLOATS_PER_COUNTER } = PIT_LAYOUT.at.counterTime;
const { l: F_L, n: F_N, pauseE: F_PAUSE_E, frozenCe: F_FROZEN_CE, s: F_S, pl: F_PL, pn: F_PN, nullUntil: F_NULL_UNTIL } = PIT_LAYOUT.at.counterTime.fields;
const { irqDone: F_IRQ_DONE, irqPulses: F_IRQ_PULSES, missed: F_MISSED } = PIT_LAYOUT.at;
const FLOATS = (PIT_LAYOUT.byteLength - PIT_LAYOUT.f64ByteOffset) / 8;

/** What the counting element is doing. */
const enum Phase {
  /** No count written since the control word. */
  Idle = 0,
  /** Modes 1 and 5: count written, waiting for a GATE rising edge. */
  WaitTrigger = 1,
  Running = 2,
  /** GATE low: modes 0/4 hold their count; modes 2/3 stop with OUT high. */
  Paused = 3,
  /** Mode 0 after the first byte of a two-byte count: counting disabled, OUT low. */
  Inhibited = 4,
}

/** Output latch states, QEMU's naming in spirit: what the next latched read returns. */
const enum OlState {
  None = 0,
  Lsb = 1,
  Msb = 2,
  WordLsb = 3,
  WordMsb = 4,
}

/** Clock ticks in `ns` nanoseconds, exact for any count below 2^53 ns (split to avoid rounding). */
export function pitTicks(ns: number): number {
  const s = Math.floor(ns / 1e9);
  return s * PIT_HZ + Math.floor(((ns - s * 1e9) * PIT_HZ) / 1e9);
}

/** The first nanosecond at which `pitTicks` reaches `tick`. */
export function nsAtPitTick(tick: number): number {
  const q = Math.floor(tick / PIT_HZ);
  return q * 1e9 + Math.ceil(((tick - q * PIT_HZ) * 1e9) / PIT_HZ);
}

function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}

function toBcd(v: number): number {
  return (v % 10) | ((Math.floor(v / 10) % 10) << 4) | ((Math.floor(v / 100) % 10) << 8) | ((Math.floor(v / 1000) % 10) << 12);
}

function fromBcd(v: number): number {
  return (v & 0xf) + ((v >> 4) & 0xf) * 10 + ((v >> 8) & 0xf) * 100 + ((v >> 12) & 0xf) * 1000;
}

/** Behavioural mode: 6 and 7 are "don't care" aliases of 2 and 3 (datasheet figure 7). */
function behaviour(modeBits: number): number {
  return modeBits >= 6 ? modeBits - 4 : modeBits;
}

/**
 * One counter's view over the shared arrays. Every method runs with the PIT
 * mutex held and takes `c`, the tick count now: the counting element
 * changes on clock edges, so everything is a function of whole ticks.
 */
class Counter {
  constructor(
    private readonly w: Int32Array,
    private readonly f: Float64Array,
    private readonly wb: number,
    private readonly fb: number,
  ) {}

  private word(i: number): number {
    return this.w[this.wb + i]!;
  }
  private setWord(i: number, v: number): void {
    this.w[this.wb + i] = v;
  }
  private float(i: number): number {
    return this.f[this.fb + i]!;
  }
  private setFloat(i: number, v: number): void {
    this.f[this.fb + i] = v;
  }

  /** Power-up: "undefined" per the datasheet; we pick mode 3, LSB then MSB, binary, no count, GATE high. */
  reset(gate: boolean): void {
    this.setWord(C_MODE, 3);
    this.setWord(C_RW, PitControl.RwWord);
    this.setWord(C_GATE, gate ? 1 : 0);
    this.setWord(C_OUT_IDLE, 1);
    this.setFloat(F_S, -Infinity);
    this.setFloat(F_NULL_UNTIL, Infinity);
  }

  get mode(): number {
    return behaviour(this.word(C_MODE));
  }
  private get modulus(): number {
    return this.word(C_BCD) ? 10000 : 65536;
  }
  get gate(): boolean {
    return this.word(C_GATE) !== 0;
  }

  /** The count the count register stands for; 0 is the largest count. */
  private countFromCr(): number {
    const cr = this.word(C_CR);
    const n = this.word(C_BCD) ? fromBcd(cr) || 10000 : cr || 65536;
    // A count of 1 is illegal in modes 2 and 3 (datasheet); run it as 2
    // rather than raise an interrupt on every clock.
    const m = this.mode;
    return (m === 2 || m === 3) && n < 2 ? 2 : n;
  }

  /** (L, N) of the counting cycle in force at tick `t`. */
  private segmentAt(t: number): [number, number] {
    return t < this.float(F_S) ? [this.float(F_PL), this.float(F_PN)] : [this.float(F_L), this.float(F_N)];
  }

  /** The counting element at tick `t`, unencoded (0..modulus-1). */
  ce(t: number): number {
    const phase = this.word(C_PHASE);
    const m = this.mode;
    if (phase === Phase.Paused && (m === 0 || m === 4)) return mod(this.float(F_N) - this.float(F_PAUSE_E), this.modulus);
    if (phase !== Phase.Running) return mod(this.float(F_FROZEN_CE), this.modulus);
    const [l, n] = this.segmentAt(t);
    if (t < l) return mod(this.float(F_FROZEN_CE), this.modulus);
    const d = t - l;
    if (m === 2) return mod(n - (d % n), this.modulus);
    if (m === 3) {
      // Datasheet, mode 3: even counts step N, N-2, ..., 2 in each half; odd
      // counts load N-1, and the high half lasts one clock longer.
      const p = d % n;
      const high = Math.ceil(n / 2);
      const start = n % 2 === 0 ? n : n - 1;
      return mod(p < high ? start - 2 * p : start - 2 * (p - high), this.modulus);
    }
    return mod(n - d, this.modulus);
  }

  /** OUT at tick `t`. */
  out(t: number): boolean {
    const m = this.mode;
    switch (this.word(C_PHASE)) {
      case Phase.Idle:
        return this.word(C_OUT_IDLE) !== 0;
      case Phase.WaitTrigger:
        return true;
      case Phase.Inhibited:
        return false;
      case Phase.Paused:
        if (m === 0) return this.float(F_PAUSE_E) >= this.float(F_N);
        if (m === 4) return this.float(F_PAUSE_E) !== this.float(F_N);
        return true;
    }
    const [l, n] = this.segmentAt(t);
    if (t < l) return m !== 0;
    const d = t - l;
    switch (m) {
      case 0:
      case 1:
        return d >= n; // low from the load until terminal count
      case 2:
        return d % n !== n - 1; // low for the one clock at count 1
      case 3:
        return d % n < Math.ceil(n / 2);
      default:
        return d !== n; // modes 4 and 5: a one-clock strobe at count 0
    }
  }

  /** NULL COUNT: a count was written that has not reached the counting element yet. */
  nullCount(t: number): boolean {
    return t < this.float(F_NULL_UNTIL);
  }

  /** Rising edges of OUT at ticks in (x, y], while the counter runs on its own. */
  risingEdges(x: number, y: number): number {
    if (this.word(C_PHASE) !== Phase.Running || y <= x) return 0;
    const m = this.mode;
    if (m === 2 || m === 3) {
      const s = this.float(F_S);
      let edges = 0;
      if (x < s) edges += periodicEdges(this.float(F_PL), this.float(F_PN), x, Math.min(y, s));
      if (y > s) edges += periodicEdges(this.float(F_L), this.float(F_N), Math.max(x, s), y);
      return edges;
    }
    const e = this.singleEdge();
    return x < e && e <= y ? 1 : 0;
  }

  /** The first rising edge of OUT after tick `x`, or Infinity. */
  nextRisingEdge(x: number): number {
    if (this.word(C_PHASE) !== Phase.Running) return Infinity;
    const m = this.mode;
    if (m === 2 || m === 3) {
      const s = this.float(F_S);
      if (x < s) {
        const e = nextPeriodicEdge(this.float(F_PL), this.float(F_PN), x);
        if (e <= s) return e;
      }
      return nextPeriodicEdge(this.float(F_L), this.float(F_N), Math.max(x, s));
    }
    const e = this.singleEdge();
    return e > x ? e : Infinity;
  }

  /** Modes 0 and 1 rise at terminal count; modes 4 and 5 one clock later, at the end of the strobe. */
  private singleEdge(): number {
    const m = this.mode;
    const l = this.float(F_L);
    const n = this.float(F_N);
    return m === 0 || m === 1 ? l + n : l + n + 1;
  }

  /** A control word selecting this counter (not a latch command): all its control logic resets. */
  program(rw: number, modeBits: number, bcd: boolean, c: number): void {
    this.setFloat(F_FROZEN_CE, this.ce(c));
    this.setWord(C_MODE, modeBits);
    this.setWord(C_RW, rw);
    this.setWord(C_BCD, bcd ? 1 : 0);
    this.setWord(C_PHASE, Phase.Idle);
    this.setWord(C_OUT_IDLE, behaviour(modeBits) === 0 ? 0 : 1);
    this.setWord(C_OL, OlState.None);
    this.setWord(C_ST_LATCHED, 0);
    this.setWord(C_WRITE_MSB, 0);
    this.setWord(C_READ_MSB, 0);
    this.setFloat(F_S, -Infinity);
    this.setFloat(F_NULL_UNTIL, Infinity);
  }

  /** Counter latch command: ignored while an earlier latch is unread (datasheet, "Counter Latch Command"). */
  latchCount(c: number): void {
    if (this.word(C_OL) !== OlState.None) return;
    this.setWord(C_OL_VALUE, this.encode(this.ce(c)));
    const rw = this.word(C_RW);
    this.setWord(C_OL, rw === PitControl.RwLsb ? OlState.Lsb : rw === PitControl.RwMsb ? OlState.Msb : OlState.WordLsb);
  }

  latchStatus(c: number): void {
    if (this.word(C_ST_LATCHED)) return;
    this.setWord(C_ST_LATCHED, 1);
    this.setWord(C_ST_VALUE, this.status(c));
  }

  status(c: number): number {
    return (
      (this.out(c) ? PitStatus.Out : 0) |
      (this.nullCount(c) ? PitStatus.NullCount : 0) |
      (this.word(C_RW) << PitControl.RwShift) |
      (this.word(C_MODE) << PitControl.ModeShift) |
      this.word(C_BCD)
    );
  }

  /** A read of the counter's port: latched status first, then the latched count, else the live count. */
  read(c: number): number {
    if (this.word(C_ST_LATCHED)) {
      this.setWord(C_ST_LATCHED, 0);
      return this.word(C_ST_VALUE);
    }
    const ol = this.word(C_OL);
    if (ol !== OlState.None) {
      const v = this.word(C_OL_VALUE);
      if (ol === OlState.WordLsb) {
        this.setWord(C_OL, OlState.WordMsb);
        return v & 0xff;
      }
      this.setWord(C_OL, OlState.None);
      return ol === OlState.Lsb ? v & 0xff : (v >> 8) & 0xff;
    }
    const v = this.encode(this.ce(c));
    switch (this.word(C_RW)) {
      case PitControl.RwLsb:
        return v & 0xff;
      case PitControl.RwMsb:
        return (v >> 8) & 0xff;
      default: {
        // Reads and writes have separate byte flip-flops, so they may be interleaved (datasheet, "Read Operations").
        const msb = this.word(C_READ_MSB) !== 0;
        this.setWord(C_READ_MSB, msb ? 0 : 1);
        return msb ? (v >> 8) & 0xff : v & 0xff;
      }
    }
  }

  /** A write of the counter's port: one byte of the count. */
  write(byte: number, c: number): void {
    const rw = this.word(C_RW);
    if (rw === PitControl.RwLsb) {
      this.setWord(C_CR, byte);
    } else if (rw === PitControl.RwMsb) {
      this.setWord(C_CR, byte << 8);
    } else if (!this.word(C_WRITE_MSB)) {
      this.setWord(C_CR_LSB, byte);
      this.setWord(C_WRITE_MSB, 1);
      // Mode 0: the first byte of a new count stops counting and sets OUT
      // low at once (datasheet, mode 0); other modes wait for the second.
      if (this.mode === 0) {
        this.setFloat(F_FROZEN_CE, this.ce(c));
        this.setWord(C_PHASE, Phase.Inhibited);
      }
      return;
    } else {
      this.setWord(C_CR, this.word(C_CR_LSB) | (byte << 8));
      this.setWord(C_WRITE_MSB, 0);
    }
    this.countWritten(c);
  }

  /** A complete count reached the count register at tick `c`. */
  private countWritten(c: number): void {
    const m = this.mode;
    const n = this.countFromCr();
    const phase = this.word(C_PHASE);
    if (m === 1 || m === 5) {
      // Loaded only by a trigger (a GATE rising edge); a running one-shot finishes with its old count.
      if (phase === Phase.Idle) this.setWord(C_PHASE, Phase.WaitTrigger);
      this.setFloat(F_NULL_UNTIL, Infinity);
      return;
    }
    if ((m === 2 || m === 3) && phase === Phase.Running) {
      this.newPeriodicCount(n, c);
      return;
    }
    // Modes 0 and 4 (re)start from the new count; modes 2 and 3 start their
    // first cycle. Loading takes the next clock edge, GATE or not.
    this.setFloat(F_FROZEN_CE, this.ce(c));
    this.setFloat(F_L, c + 1);
    this.setFloat(F_N, n);
    this.setFloat(F_S, -Infinity);
    this.setFloat(F_NULL_UNTIL, c + 1);
    if (this.gate) {
      this.setWord(C_PHASE, Phase.Running);
    } else if (m === 0 || m === 4) {
      this.setWord(C_PHASE, Phase.Paused);
      this.setFloat(F_PAUSE_E, 0);
    } else if (phase === Phase.Idle) {
      // Modes 2/3 with GATE low: the first count still loads, but does not count.
      this.setWord(C_PHASE, Phase.Paused);
      this.setFloat(F_FROZEN_CE, n);
    } else {
      // Stopped by GATE: a later count waits for the trigger that reloads.
      this.setFloat(F_NULL_UNTIL, Infinity);
    }
  }

  /**
   * A new count while modes 2/3 count: the current period (mode 2) or
   * half-cycle (mode 3) finishes with the old count (datasheet, modes 2
   * and 3). The switch is recorded as a new cycle (L, N) that takes over
   * from the old one (PL, PN) at tick S; in mode 3 a switch at the end of a
   * high half starts the new count in its low half, so L is placed one high
   * half before S.
   */
  private newPeriodicCount(n: number, c: number): void {
    const s = this.float(F_S);
    if (c < s) {
      // A switch is already pending: the newest count wins at the same instant.
      this.setFloat(F_L, this.word(C_SWITCH_HIGH) ? s - Math.ceil(n / 2) : s);
      this.setFloat(F_N, n);
      return;
    }
    const l = this.float(F_L);
    const old = this.float(F_N);
    if (c < l) {
      // Written in the same clock as the load it replaces.
      this.setFloat(F_N, n);
      return;
    }
    const p = (c - l) % old;
    let switchAt: number;
    let newLoad: number;
    let high = 0;
    if (this.mode === 3 && p < Math.ceil(old / 2)) {
      switchAt = c - p + Math.ceil(old / 2);
      newLoad = switchAt - Math.ceil(n / 2);
      high = 1;
    } else {
      switchAt = c - p + old;
      newLoad = switchAt;
    }
    this.setFloat(F_PL, l);
    this.setFloat(F_PN, old);
    this.setFloat(F_S, switchAt);
    this.setFloat(F_L, newLoad);
    this.setFloat(F_N, n);
    this.setWord(C_SWITCH_HIGH, high);
    this.setFloat(F_NULL_UNTIL, switchAt);
  }

  /** The GATE input changed level at tick `c`. */
  setGate(high: boolean, c: number): void {
    if (high === this.gate) return;
    const m = this.mode;
    const phase = this.word(C_PHASE);
    if (!high) {
      if (phase === Phase.Running && (m === 0 || m === 4)) {
        this.setFloat(F_PAUSE_E, Math.max(0, c - this.float(F_L)));
        this.setWord(C_PHASE, Phase.Paused);
      } else if (phase === Phase.Running && (m === 2 || m === 3)) {
        // Counting stops and OUT goes high at once.
        this.setFloat(F_FROZEN_CE, this.ce(c));
        this.setWord(C_PHASE, Phase.Paused);
      }
    } else if (phase === Phase.Paused && (m === 0 || m === 4)) {
      // Resume where counting stopped: the next clock edge makes the next decrement.
      this.setFloat(F_L, Math.max(this.float(F_L), c - this.float(F_PAUSE_E)));
      this.setWord(C_PHASE, Phase.Running);
    } else if ((phase === Phase.Paused && (m === 2 || m === 3)) || ((phase === Phase.WaitTrigger || phase === Phase.Running) && (m === 1 || m === 5))) {
      // A trigger: the count register loads on the next clock edge and a new cycle begins.
      this.setFloat(F_FROZEN_CE, this.ce(c));
      this.setFloat(F_L, c + 1);
      this.setFloat(F_N, this.countFromCr());
      this.setFloat(F_S, -Infinity);
      if (this.nullCount(c)) this.setFloat(F_NULL_UNTIL, c + 1);
      this.setWord(C_PHASE, Phase.Running);
    }
    this.setWord(C_GATE, high ? 1 : 0);
  }

  private encode(ce: number): number {
    return this.word(C_BCD) ? toBcd(ce % 10000) : ce;
  }
}

/** Edges of a periodic cycle loaded at `l` with period `n` (at l + kn, k >= 1) in (x, y]. */
function periodicEdges(l: number, n: number, x: number, y: number): number {
  if (y <= x) return 0;
  return Math.max(0, Math.floor((y - l) / n)) - Math.max(0, Math.floor((x - l) / n));
}

function nextPeriodicEdge(l: number, n: number, x: number): number {
  return l + Math.max(1, Math.floor((x - l) / n) + 1) * n;
}

/**
 * The PIT with its three counters, shared by every thread that builds a
 * view over one `I8254PitState`; every access runs under the state's mutex.
 *
 * Nothing counts: each counter remembers the tick its counting element was
 * loaded and derives the count and OUT from `host.clock` (1.193182 MHz
 * ticks since the clock's origin). Counters 0 and 1 have GATE tied high;
 * counter 2's GATE is port 0x61 bit 0. BCD counting is supported.
 *
 * IRQ 0: the line idles low, and every rising edge of counter 0's OUT is
 * delivered as a pulse (`setLevel(irq, true)` then `false`), which is what
 * the 8259 and the IOAPIC latch on an edge-triggered input. The edges are
 * found by `poll()`, which a timer thread calls once `nextDeadlineNs()`
 * has passed, and by every port access (so that reprogramming never drops
 * an edge that was already due). However many edges passed since the last
 * look, one pulse is sent and the rest are counted as missed: a late timer
 * thread never causes an interrupt storm. In modes 2 and 3 that is one
 * pulse per period; in modes 0 and 4 (Linux's one-shot) one per count.
 *
 * `host.irq.setLevel` is called with the mutex held; the irqchip must never
 * call back into the PIT.
 */
export class I8254Pit implements BusDevice {
  readonly name = 'i8254-pit';
  /** System control port B (0x61), over the same state and mutex; attach it with length 1. */
  readonly port61: BusDevice;
  private readonly words: Int32Array;
  private readonly floats: Float64Array;
  private readonly lock: Mutex;
  private readonly counters: readonly [Counter, Counter, Counter];

  static allocate(): I8254PitState {
    const regs = PIT_LAYOUT.allocate();
    const words = new Int32Array(regs, 0, WORDS);
    const floats = new Float64Array(regs, FLOAT_BYTE_OFFSET, FLOATS);
    for (let i = 0; i < 3; i++) {
      // Counter 2's gate is port 0x61 bit 0, which comes up clear.
      new Counter(words, floats, COUNTER_WORDS + i * WORDS_PER_COUNTER, FLOATS_BASE + i * FLOATS_PER_COUNTER).reset(i !== 2);
    }
    return { regs };
  }

  static save(state: I8254PitState): Record<string, SavedState> {
    return { regs: saveState(PIT_LAYOUT, state.regs) };
  }

  static load(state: I8254PitState, saved: Record<string, SavedState>): void {
    loadState(PIT_LAYOUT, state.regs, required(saved, 'regs'));
  }

  constructor(
    state: I8254PitState,
    private readonly host: DeviceHost,
    private readonly options: I8254PitOptions,
  ) {
    this.words = new Int32Array(state.regs, 0, WORDS);
    this.floats = new Float64Array(state.regs, FLOAT_BYTE_OFFSET, FLOATS);
    this.lock = new Mutex(this.words, LOCK);
    const counter = (i: number): Counter => new Counter(this.words, this.floats, COUNTER_WORDS + i * WORDS_PER_COUNTER, FLOATS_BASE + i * FLOATS_PER_COUNTER);
    this.counters = [counter(0), counter(1), counter(2)];
    this.port61 = {
      name: 'port61',
      read: () => this.readPort61(),
      write: (_offset, _size, value) => this.writePort61(value),
    };
  }

  /** Wider accesses act as consecutive byte accesses, as on the 8-bit bus the PIT sits on. */
  read(offset: number, size: AccessSize, _vcpu: number): number {
    return this.lock.with(() => {
      const c = this.catchUp();
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.readRegister(offset + i, c) << (8 * i);
      return value >>> 0;
    });
  }

  write(offset: number, size: AccessSize, value: number, _vcpu: number): void {
    const earlier = this.lock.with(() => {
      const c = this.catchUp();
      const before = this.deadlineLocked();
      for (let i = 0; i < size; i++) this.writeRegister(offset + i, (value >>> (8 * i)) & 0xff, c);
      return this.deadlineLocked() < before;
    });
    if (earlier) this.options.onDeadlineChange?.();
  }

  /** When counter 0's OUT next rises, in Clock ns (maybe already past); Infinity when it will not on its own. */
  nextDeadlineNs(): number {
    return this.lock.with(() => this.deadlineLocked());
  }

  /** Delivers counter 0's rising edges that are due (at most one pulse per call). Any thread. */
  poll(): void {
    this.lock.with(() => {
      this.catchUp();
    });
  }

  stats(): I8254PitStats {
    return this.lock.with(() => ({ irqPulses: this.floats[F_IRQ_PULSES]!, missedTicks: this.floats[F_MISSED]! }));
  }

  private deadlineLocked(): number {
    const edge = this.counters[0].nextRisingEdge(this.floats[F_IRQ_DONE]!);
    return edge === Infinity ? Infinity : nsAtPitTick(edge);
  }

  /** The tick count now, after delivering counter 0's edges up to it. */
  private catchUp(): number {
    const c = pitTicks(this.host.clock.nowNs());
    const f = this.floats;
    const done = f[F_IRQ_DONE]!;
    if (c <= done) return c;
    const edges = this.counters[0].risingEdges(done, c);
    f[F_IRQ_DONE] = c;
    if (edges > 0) {
      this.pulse();
      f[F_MISSED] = f[F_MISSED]! + edges - 1;
    }
    return c;
  }

  private pulse(): void {
    this.floats[F_IRQ_PULSES]!++;
    this.host.irq.setLevel(this.options.irq, true);
    this.host.irq.setLevel(this.options.irq, false);
  }

  private readRegister(reg: number, c: number): number {
    // The control register is write-only; the 8254 leaves the bus undriven.
    return reg < 3 ? this.counters[reg]!.read(c) : 0xff;
  }

  private writeRegister(reg: number, value: number, c: number): void {
    // Reprogramming can raise counter 0's OUT at once (e.g. a control word
    // during a low half in mode 3): that is an edge the PIC sees too.
    const out0 = this.counters[0].out(c);
    if (reg < 3) this.counters[reg]!.write(value, c);
    else if (reg === PitReg.Control) this.writeControl(value, c);
    if (!out0 && this.counters[0].out(c)) this.pulse();
  }

  private writeControl(value: number, c: number): void {
    const select = value >> PitControl.SelectShift;
    if (select === PitControl.ReadBack) {
      for (let i = 0; i < 3; i++) {
        if (!(value & (PitReadBack.Counter0 << i))) continue;
        // The latched status is read before the latched count (datasheet figure 12).
        if (!(value & PitReadBack.NoStatus)) this.counters[i]!.latchStatus(c);
        if (!(value & PitReadBack.NoCount)) this.counters[i]!.latchCount(c);
      }
      return;
    }
    const counter = this.counters[select]!;
    const rw = (value >> PitControl.RwShift) & 3;
    if (rw === PitControl.RwLatch) counter.latchCount(c);
    else counter.program(rw, (value >> PitControl.ModeShift) & 7, (value & PitControl.Bcd) !== 0, c);
  }

  /** Port 0x61 is one byte wide: the bus never hands a length-1 device a wider access. */
  private readPort61(): number {
    return this.lock.with(() => {
      const c = this.catchUp();
      const w = this.words;
      w[REFRESH] = w[REFRESH]! ^ Port61Bits.RefreshToggle;
      return w[P61]! | w[REFRESH]! | (this.counters[2].out(c) ? Port61Bits.Timer2Out : 0);
    });
  }

  private writePort61(value: number): void {
    this.lock.with(() => {
      const c = this.catchUp();
      const byte = value & 0x0f;
      this.words[P61] = byte;
      this.counters[2].setGate((byte & Port61Bits.Timer2Gate) !== 0, c);
    });
  }
}
