import type { AccessSize, BusDevice, DeviceHost } from './device.js';
import { Mutex } from '../sync/mutex.js';
import { bytes, defineLayout, f64, i32, loadState, mutex, required, saveState, type SavedState } from '../sync/state-layout.js';

/**
 * Motorola MC146818A real-time clock and CMOS RAM, as on every PC at ports
 * 0x70 (index) and 0x71 (data), IRQ 8. Register semantics follow the
 * MC146818A datasheet (and the compatible DS12887's).
 */

export const RTC_PORT = 0x70;
export const RTC_PORT_COUNT = 2;
export const RTC_IRQ = 8;

/** Port offsets from 0x70. */
export const RtcPort = { Index: 0, Data: 1 } as const;
/** Bit 7 of a write to the index port masks NMI on a PC; the RTC only records it. */
export const RTC_NMI_DISABLE = 0x80;
/** Bytes of CMOS RAM, clock registers included. */
export const CMOS_SIZE = 128;

/** CMOS indexes: the clock registers, then the PC's conventional RAM bytes. */
export const CmosReg = {
  Seconds: 0x00,
  SecondsAlarm: 0x01,
  Minutes: 0x02,
  MinutesAlarm: 0x03,
  Hours: 0x04,
  HoursAlarm: 0x05,
  DayOfWeek: 0x06,
  DayOfMonth: 0x07,
  Month: 0x08,
  Year: 0x09,
  A: 0x0a,
  B: 0x0b,
  C: 0x0c,
  D: 0x0d,
  /** Base memory in KiB (640), low byte then high byte. */
  BaseMemLow: 0x15,
  BaseMemHigh: 0x16,
  /** Extended memory above 1 MiB in KiB, capped at 0xFFFF (and its POST copy at 0x30-0x31). */
  ExtMemLow: 0x17,
  ExtMemHigh: 0x18,
  ExtMemPostLow: 0x30,
  ExtMemPostHigh: 0x31,
  /** The century, BCD or binary like the other time registers (the ACPI FADT CENTURY index). */
  Century: 0x32,
  /** Memory between 16 MiB and 4 GiB in 64 KiB units, capped at 0xFFFF. */
  HighMemLow: 0x34,
  HighMemHigh: 0x35,
  /** Memory above 4 GiB in 64 KiB units, three bytes (SeaBIOS / QEMU convention). */
  Above4GLow: 0x5b,
  Above4GMid: 0x5c,
  Above4GHigh: 0x5d,
  /** Number of CPUs minus one (SeaBIOS / QEMU convention). */
  CpuCountMinusOne: 0x5f,
} as const;

/** Register A: UIP (read-only), the divider (DV2-0) and the periodic rate (RS3-0). */
export const RtcA = { UIP: 0x80, DividerMask: 0x70, Divider32k: 0x20, DividerReset: 0x70, RateMask: 0x0f } as const;
/** Register B. */
export const RtcB = { SET: 0x80, PIE: 0x40, AIE: 0x20, UIE: 0x10, SQWE: 0x08, DM: 0x04, H24: 0x02, DSE: 0x01 } as const;
/** Register C (read-only; a read clears it). */
export const RtcC = { IRQF: 0x80, PF: 0x40, AF: 0x20, UF: 0x10 } as const;
/** Register D: valid RAM and time, always. */
export const RtcD = { VRT: 0x80 } as const;
/** An alarm byte with both top bits set matches every value ("don't care"). */
export const RTC_ALARM_DONT_CARE = 0xc0;

/** The shared state behind every thread's view; structured-cloneable. */
export interface CmosRtcState {
  readonly regs: SharedArrayBuffer;
}

export interface CmosRtcAllocateOptions {
  /**
   * What the clock reads when the first view is built: the Date's UTC
   * fields are the RTC's fields. Default: the host's time, in UTC.
   */
  baseTime?: Date;
  /** Minutes added to the base time (e.g. for guests that keep the RTC in local time). Default 0. */
  utcOffsetMinutes?: number;
  /** Guest RAM below 4 GiB, in bytes, for the memory-size bytes. Default 0. */
  ramBelow4G?: number;
  /** Guest RAM above 4 GiB, in bytes. Default 0. */
  ramAbove4G?: number;
  /** Number of CPUs, for byte 0x5F. Default 1. */
  cpus?: number;
}

export interface CmosRtcOptions {
  /** The line the RTC's IRQ output drives (ISA IRQ 8). */
  irq: number;
  /**
   * Called, outside the mutex, after a guest access through this view moved
   * `nextDeadlineNs()` earlier (an interrupt enabled, a rate or alarm
   * changed, register C read so IRQF can rise again): the VM's cue to wake
   * its timer thread.
   */
  onDeadlineChange?: () => void;
}

export interface CmosRtcStats {
  /** Rising edges driven on the IRQ line (IRQF going to 1). */
  interrupts: number;
  /** Enabled periodic/update/alarm events merged into an interrupt already raised or raised once for several. */
  coalesced: number;
}

/** All but `lock` are only touched with the lock held. */
export const RTC_LAYOUT = defineLayout('cmos-rtc', 1, {
  lock: mutex(),
  index: i32(),
  nmi: i32(),
  irqLevel: i32(),
  started: i32(),
  /** The RTC's seconds (calendar seconds since 1970, as if UTC) at `anchor`. */
  baseSec: f64(),
  /** A clock ns at which an update made the seconds `baseSec`: the divider's phase. */
  anchor: f64(),
  /** Flags are up to date with the clock up to this ns. */
  evaluatedTo: f64(),
  /** allocate's baseTime in ms; NaN for the host's time. */
  baseMs: f64(),
  /** Minutes. */
  utcOffset: f64(),
  interrupts: f64(),
  coalesced: f64(),
  /** Bytes 0x0A-0x0C hold A (without UIP), B and C's flags; time registers hold the time only while the clock is frozen. */
  ram: bytes(CMOS_SIZE),
});
const { lock: LOCK, index: INDEX, nmi: NMI, irqLevel: IRQ_LEVEL, started: STARTED, ram: RAM_OFFSET } = RTC_LAYOUT.at;
const {
  baseSec: F_BASE_SEC, anchor: F_ANCHOR, evaluatedTo: F_EVAL, baseMs: F_BASE_MS, utcOffset: F_UTC_OFFSET, interrupts: F_INTERRUPTS, coalesced: F_COALESCED,
} = RTC_LAYOUT.at;
const WORDS = RTC_LAYOUT.f64ByteOffset / 4;
const FLOAT_OFFSET = RTC_LAYOUT.f64ByteOffset;
const FLOATS = (RTC_LAYOUT.bytesByteOffset - RTC_LAYOUT.f64ByteOffset) / 8;

/** 32.768 kHz divider ticks per second; an update happens every 32768. */
const HZ = 32768;
/** UIP rises 244 us (8 ticks) before an update (datasheet, "Update Cycle"). */
const UIP_TICKS = 8;
/** After the divider leaves reset, the first update comes half a second later (datasheet, register A). */
const FIRST_UPDATE_NS = 500_000_000;
const TIME_REGISTERS: readonly number[] = [
  CmosReg.Seconds,
  CmosReg.Minutes,
  CmosReg.Hours,
  CmosReg.DayOfWeek,
  CmosReg.DayOfMonth,
  CmosReg.Month,
  CmosReg.Year,
  CmosReg.Century,
];

/** Divider ticks in `ns` (which may be negative), exact for |ns| below 2^53. */
function ticks32k(ns: number): number {
  const s = Math.floor(ns / 1e9);
  return s * HZ + Math.floor(((ns - s * 1e9) * HZ) / 1e9);
}

/** Nanoseconds from the anchor to divider tick `tick` (exact: 1e9 / 32768 is a binary fraction). */
function nsAt32k(tick: number): number {
  const q = Math.floor(tick / HZ);
  return q * 1e9 + Math.ceil(((tick - q * HZ) * 1e9) / HZ);
}

/** Periodic interrupt period in divider ticks for RS3-0 (datasheet table 5, 32.768 kHz time base); 0 = none. */
export function rtcPeriodTicks(rate: number): number {
  const rs = rate & RtcA.RateMask;
  if (rs === 0) return 0;
  return rs <= 2 ? 1 << (rs + 6) : 1 << (rs - 1);
}

/** DV2-0 = 000, 001, 010 run (all timed as the PC's 32.768 kHz crystal); 011-111 hold the divider (reset or test modes), as in QEMU. */
function dividerRunning(a: number): boolean {
  return (a & RtcA.DividerMask) <= RtcA.Divider32k;
}

function toBcd(v: number): number {
  return ((Math.floor(v / 10) % 10) << 4) | (v % 10);
}

function fromBcd(v: number): number {
  return (v >> 4) * 10 + (v & 0x0f);
}

interface Calendar {
  second: number;
  minute: number;
  hour: number;
  dayOfWeek: number; // 1 = Sunday
  day: number;
  month: number;
  year: number;
}

function calendar(sec: number): Calendar {
  const d = new Date(sec * 1000);
  return {
    second: d.getUTCSeconds(),
    minute: d.getUTCMinutes(),
    hour: d.getUTCHours(),
    dayOfWeek: d.getUTCDay() + 1,
    day: d.getUTCDate(),
    month: d.getUTCMonth() + 1,
    year: d.getUTCFullYear(),
  };
}

/** The register formats of register B. */
class Format {
  constructor(private readonly b: number) {}
  private get binary(): boolean {
    return (this.b & RtcB.DM) !== 0;
  }
  enc(v: number): number {
    return this.binary ? v : toBcd(v);
  }
  dec(byte: number): number {
    return this.binary ? byte : fromBcd(byte);
  }
  /** 12-hour mode: 1-12 with bit 7 for PM (datasheet table 3). */
  encHour(h: number): number {
    if (this.b & RtcB.H24) return this.enc(h);
    return this.enc(h % 12 || 12) | (h >= 12 ? 0x80 : 0);
  }
  decHour(byte: number): number {
    if (this.b & RtcB.H24) return this.dec(byte);
    return (this.dec(byte & 0x7f) % 12) + (byte & 0x80 ? 12 : 0);
  }
}

/** Values 0..count-1 whose encoding matches an alarm byte (all of them for "don't care"). */
function alarmMatches(alarm: number, count: number, encode: (v: number) => number): number[] {
  const out: number[] = [];
  for (let v = 0; v < count; v++) if ((alarm & RTC_ALARM_DONT_CARE) === RTC_ALARM_DONT_CARE || encode(v) === alarm) out.push(v);
  return out;
}

/**
 * The MC146818A RTC and its CMOS RAM, shared by every thread that builds a
 * view over one `CmosRtcState`; every access runs under the state's mutex.
 *
 * The clock does not tick: while it runs, the time registers are computed
 * from `host.clock` as BASE_SEC plus whole seconds of the divider since the
 * anchor (the instant of an update), so the divider's phase is the anchor's
 * and updates, UIP, periodic boundaries and alarms are all functions of the
 * clock. While the clock is frozen (SET, or the divider held in reset) the
 * time registers are plain RAM holding what the guest wrote, and clearing
 * SET / releasing the divider starts the clock from them. Writing a time
 * register while the clock runs sets the time at once, keeping the phase
 * (as QEMU does). The day of the week is derived from the date; a guest's
 * own value is kept only while the clock is frozen. DSE (daylight saving)
 * and SQWE (the square-wave pin) are stored but have no effect: nothing is
 * wired to the pin, and Linux keeps DSE clear.
 *
 * Flags: PF, AF and UF are set by their events whether or not enabled
 * (datasheet, register C), IRQF = PF.PIE | AF.AIE | UF.UIE, and the IRQ
 * line follows IRQF: high when it becomes 1 (the ISA edge), low when a read
 * of register C clears the flags or an enable bit is cleared. Events are
 * found lazily, by every access and by `poll()`, which the VM's timer
 * thread calls once `nextDeadlineNs()` has passed: the deadline is that of
 * the next enabled event while IRQF is 0 (Infinity while it is 1, as
 * nothing more can happen until the guest reads C).
 *
 * `host.irq.setLevel` is called with the mutex held; the irqchip must never
 * call back into the RTC.
 */
export class CmosRtc implements BusDevice {
  readonly name = 'cmos-rtc';
  private readonly words: Int32Array;
  private readonly ram: Uint8Array;
  private readonly f: Float64Array;
  private readonly lock: Mutex;

  static allocate(options: CmosRtcAllocateOptions = {}): CmosRtcState {
    const regs = RTC_LAYOUT.allocate();
    const ram = new Uint8Array(regs, RAM_OFFSET, CMOS_SIZE);
    const f = new Float64Array(regs, FLOAT_OFFSET, FLOATS);
    // What a PC BIOS leaves: 32.768 kHz divider with a 1024 Hz rate, 24-hour BCD.
    ram[CmosReg.A] = RtcA.Divider32k | 0x06;
    ram[CmosReg.B] = RtcB.H24;
    f[F_BASE_MS] = options.baseTime === undefined ? NaN : options.baseTime.getTime();
    f[F_UTC_OFFSET] = options.utcOffsetMinutes ?? 0;
    writeMemorySizes(ram, options.ramBelow4G ?? 0, options.ramAbove4G ?? 0, options.cpus ?? 1);
    return { regs };
  }

  static save(state: CmosRtcState): Record<string, SavedState> {
    return { regs: saveState(RTC_LAYOUT, state.regs) };
  }

  static load(state: CmosRtcState, saved: Record<string, SavedState>): void {
    loadState(RTC_LAYOUT, state.regs, required(saved, 'regs'));
  }

  constructor(
    state: CmosRtcState,
    private readonly host: DeviceHost,
    private readonly options: CmosRtcOptions,
  ) {
    this.words = new Int32Array(state.regs, 0, WORDS);
    this.ram = new Uint8Array(state.regs, RAM_OFFSET, CMOS_SIZE);
    this.f = new Float64Array(state.regs, FLOAT_OFFSET, FLOATS);
    this.lock = new Mutex(this.words, LOCK);
    // The clock starts with the first view built, reading the base time then.
    this.lock.with(() => {
      if (this.words[STARTED] !== 0) return;
      this.words[STARTED] = 1;
      const now = this.host.clock.nowNs();
      const baseMs = this.f[F_BASE_MS]!;
      const ms = (Number.isNaN(baseMs) ? Date.now() : baseMs) + this.f[F_UTC_OFFSET]! * 60_000;
      const sec = Math.floor(ms / 1000);
      this.f[F_BASE_SEC] = sec;
      this.f[F_ANCHOR] = now - Math.round((ms - sec * 1000) * 1e6);
      this.f[F_EVAL] = now;
    });
  }

  /** Wider accesses act as consecutive byte accesses. */
  read(offset: number, size: AccessSize, _vcpu: number): number {
    const [value, earlier] = this.lock.with((): [number, boolean] => {
      const now = this.host.clock.nowNs();
      this.catchUp(now);
      const before = this.deadlineLocked();
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.readPort(offset + i, now) << (8 * i);
      this.updateIrq();
      return [value >>> 0, this.deadlineLocked() < before];
    });
    if (earlier) this.options.onDeadlineChange?.();
    return value;
  }

  write(offset: number, size: AccessSize, value: number, _vcpu: number): void {
    const earlier = this.lock.with(() => {
      const now = this.host.clock.nowNs();
      this.catchUp(now);
      const before = this.deadlineLocked();
      for (let i = 0; i < size; i++) this.writePort(offset + i, (value >>> (8 * i)) & 0xff, now);
      this.updateIrq();
      return this.deadlineLocked() < before;
    });
    if (earlier) this.options.onDeadlineChange?.();
  }

  /** Bit 7 of the last index write: the guest asked for NMI to be masked. */
  nmiDisabled(): boolean {
    return this.lock.with(() => this.words[NMI] !== 0);
  }

  /** The time the RTC shows now, as a Date whose UTC fields are the clock's fields. */
  time(): Date {
    return this.lock.with(() => new Date(this.seconds(this.host.clock.nowNs()) * 1000));
  }

  /** When the next enabled event is due, in Clock ns (maybe already past); Infinity when none can raise the IRQ. */
  nextDeadlineNs(): number {
    return this.lock.with(() => this.deadlineLocked());
  }

  private deadlineLocked(): number {
    const a = this.ram[CmosReg.A]!;
    const b = this.ram[CmosReg.B]!;
    if (!dividerRunning(a) || this.irqf()) return Infinity;
    const anchor = this.f[F_ANCHOR]!;
    const t = ticks32k(this.f[F_EVAL]! - anchor);
    let next = Infinity;
    const period = rtcPeriodTicks(a);
    if (b & RtcB.PIE && period > 0) next = Math.min(next, (Math.floor(t / period) + 1) * period);
    if (!(b & RtcB.SET)) {
      const secondStart = Math.floor(t / HZ);
      if (b & RtcB.UIE) next = Math.min(next, (secondStart + 1) * HZ);
      if (b & RtcB.AIE) {
        const base = this.f[F_BASE_SEC]!;
        const alarm = this.nextAlarmAfter(base + secondStart);
        if (alarm !== Infinity) next = Math.min(next, (alarm - base) * HZ);
      }
    }
    return next === Infinity ? Infinity : anchor + nsAt32k(next);
  }

  /** Sets the flags of events that are due and drives the IRQ. Any thread. */
  poll(): void {
    this.lock.with(() => {
      this.catchUp(this.host.clock.nowNs());
      this.updateIrq();
    });
  }

  stats(): CmosRtcStats {
    return this.lock.with(() => ({ interrupts: this.f[F_INTERRUPTS]!, coalesced: this.f[F_COALESCED]! }));
  }

  private readPort(port: number, now: number): number {
    // The index register is write-only on a PC: reads float.
    if (port !== RtcPort.Data) return 0xff;
    const index = this.words[INDEX]!;
    const ram = this.ram;
    switch (index) {
      case CmosReg.A:
        return ram[CmosReg.A]! | (this.updateInProgress(now) ? RtcA.UIP : 0);
      case CmosReg.C: {
        const c = ram[CmosReg.C]! | (this.irqf() ? RtcC.IRQF : 0);
        ram[CmosReg.C] = 0;
        return c;
      }
      case CmosReg.D:
        return RtcD.VRT;
    }
    if (TIME_REGISTERS.includes(index) && !this.frozen()) return this.encodeTime(index, this.seconds(now), this.format());
    return ram[index]!;
  }

  private writePort(port: number, value: number, now: number): void {
    if (port === RtcPort.Index) {
      this.words[INDEX] = value & 0x7f;
      this.words[NMI] = value & RTC_NMI_DISABLE ? 1 : 0;
      return;
    }
    if (port !== RtcPort.Data) return;
    const index = this.words[INDEX]!;
    const ram = this.ram;
    switch (index) {
      case CmosReg.A:
        this.writeA(value, now);
        return;
      case CmosReg.B:
        this.writeB(value, now);
        return;
      case CmosReg.C:
      case CmosReg.D:
        return; // read-only
    }
    if (TIME_REGISTERS.includes(index) && !this.frozen()) {
      // A running clock takes the new field at once, keeping its phase.
      this.materialize(now, this.format());
      ram[index] = value;
      this.setTime(this.decodeRam(this.format()), now);
      return;
    }
    ram[index] = value;
  }

  private writeA(value: number, now: number): void {
    const ram = this.ram;
    const wasRunning = dividerRunning(ram[CmosReg.A]!);
    const running = dividerRunning(value);
    const set = (ram[CmosReg.B]! & RtcB.SET) !== 0;
    if (wasRunning && !running && !set) this.materialize(now, this.format());
    ram[CmosReg.A] = value & ~RtcA.UIP;
    if (!wasRunning && running) {
      this.f[F_ANCHOR] = now + FIRST_UPDATE_NS - 1e9;
      if (!set) this.f[F_BASE_SEC] = this.decodeRam(this.format());
    }
  }

  private writeB(value: number, now: number): void {
    const ram = this.ram;
    const old = ram[CmosReg.B]!;
    const wasFrozen = this.frozen();
    // Setting SET ends any update in progress and clears UIE (datasheet, register B).
    const b = value & RtcB.SET ? value & ~RtcB.UIE : value;
    if (!wasFrozen && b & RtcB.SET) this.materialize(now, new Format(old));
    ram[CmosReg.B] = b;
    if (wasFrozen && !this.frozen()) this.setTime(this.decodeRam(new Format(b)), now);
  }

  /** Brings PF, AF and UF up to date with `now`. */
  private catchUp(now: number): void {
    const from = this.f[F_EVAL]!;
    if (!(now > from)) return;
    this.f[F_EVAL] = now;
    const ram = this.ram;
    const a = ram[CmosReg.A]!;
    if (!dividerRunning(a)) return;
    const b = ram[CmosReg.B]!;
    const pending = this.irqf();
    const anchor = this.f[F_ANCHOR]!;
    const t0 = ticks32k(from - anchor);
    const t1 = ticks32k(now - anchor);
    let flags = ram[CmosReg.C]!;
    let events = 0;
    const period = rtcPeriodTicks(a);
    if (period > 0) {
      const n = Math.floor(t1 / period) - Math.floor(t0 / period);
      if (n > 0) {
        flags |= RtcC.PF;
        if (b & RtcB.PIE) events += n;
      }
    }
    if (!(b & RtcB.SET)) {
      const s0 = Math.floor(t0 / HZ);
      const s1 = Math.floor(t1 / HZ);
      if (s1 > s0) {
        flags |= RtcC.UF;
        if (b & RtcB.UIE) events += s1 - s0;
        const base = this.f[F_BASE_SEC]!;
        if (this.nextAlarmAfter(base + s0) <= base + s1) {
          flags |= RtcC.AF;
          if (b & RtcB.AIE) events++;
        }
      }
    }
    ram[CmosReg.C] = flags;
    if (events > 0) this.f[F_COALESCED] = this.f[F_COALESCED]! + (pending ? events : events - 1);
  }

  /** The first second after `sec` whose time of day matches the alarm registers, or Infinity. */
  private nextAlarmAfter(sec: number): number {
    const ram = this.ram;
    const fmt = this.format();
    const seconds = alarmMatches(ram[CmosReg.SecondsAlarm]!, 60, (v) => fmt.enc(v));
    const minutes = alarmMatches(ram[CmosReg.MinutesAlarm]!, 60, (v) => fmt.enc(v));
    const hours = alarmMatches(ram[CmosReg.HoursAlarm]!, 24, (v) => fmt.encHour(v));
    if (seconds.length === 0 || minutes.length === 0 || hours.length === 0) return Infinity;
    const tod = ((sec % 86400) + 86400) % 86400;
    const day = sec - tod;
    const h0 = Math.floor(tod / 3600);
    const m0 = Math.floor((tod % 3600) / 60);
    const s0 = tod % 60;
    for (const h of hours) {
      if (h < h0) continue;
      for (const m of minutes) {
        if (h === h0 && m < m0) continue;
        for (const s of seconds) {
          if (h === h0 && m === m0 && s <= s0) continue;
          return day + h * 3600 + m * 60 + s;
        }
      }
    }
    return day + 86400 + hours[0]! * 3600 + minutes[0]! * 60 + seconds[0]!;
  }

  private irqf(): boolean {
    const c = this.ram[CmosReg.C]!;
    const b = this.ram[CmosReg.B]!;
    return (c & b & (RtcC.PF | RtcC.AF | RtcC.UF)) !== 0; // PF/PIE, AF/AIE and UF/UIE share bit positions
  }

  private updateIrq(): void {
    const level = this.irqf() ? 1 : 0;
    if (this.words[IRQ_LEVEL] === level) return;
    this.words[IRQ_LEVEL] = level;
    if (level) this.f[F_INTERRUPTS]!++;
    this.host.irq.setLevel(this.options.irq, level === 1);
  }

  private format(): Format {
    return new Format(this.ram[CmosReg.B]!);
  }

  /** SET held or the divider stopped: the time registers are RAM. */
  private frozen(): boolean {
    return (this.ram[CmosReg.B]! & RtcB.SET) !== 0 || !dividerRunning(this.ram[CmosReg.A]!);
  }

  private updateInProgress(now: number): boolean {
    if (this.frozen()) return false; // SET clears UIP; a held divider makes no updates
    const t = ticks32k(now - this.f[F_ANCHOR]!);
    return ((t % HZ) + HZ) % HZ >= HZ - UIP_TICKS;
  }

  /** The RTC's seconds now: from the clock while it runs, from the registers while frozen. */
  private seconds(now: number): number {
    if (this.frozen()) return this.decodeRam(this.format());
    return this.f[F_BASE_SEC]! + Math.floor(ticks32k(now - this.f[F_ANCHOR]!) / HZ);
  }

  /** Sets the running clock to `sec` from the last update, keeping the divider's phase. */
  private setTime(sec: number, now: number): void {
    const anchor = this.f[F_ANCHOR]!;
    this.f[F_ANCHOR] = anchor + Math.floor(ticks32k(now - anchor) / HZ) * 1e9;
    this.f[F_BASE_SEC] = sec;
  }

  /** Copies the running time into the time registers, in format `fmt`. */
  private materialize(now: number, fmt: Format): void {
    const sec = this.seconds(now);
    for (const index of TIME_REGISTERS) this.ram[index] = this.encodeTime(index, sec, fmt);
  }

  private encodeTime(index: number, sec: number, fmt: Format): number {
    const t = calendar(sec);
    switch (index) {
      case CmosReg.Seconds:
        return fmt.enc(t.second);
      case CmosReg.Minutes:
        return fmt.enc(t.minute);
      case CmosReg.Hours:
        return fmt.encHour(t.hour);
      case CmosReg.DayOfWeek:
        return fmt.enc(t.dayOfWeek);
      case CmosReg.DayOfMonth:
        return fmt.enc(t.day);
      case CmosReg.Month:
        return fmt.enc(t.month);
      case CmosReg.Year:
        return fmt.enc(t.year % 100);
      default:
        return fmt.enc(Math.floor(t.year / 100) % 100);
    }
  }

  /** The time the registers hold, in format `fmt`; out-of-range fields carry over as Date does. */
  private decodeRam(fmt: Format): number {
    const ram = this.ram;
    const d = new Date(0);
    d.setUTCFullYear(
      fmt.dec(ram[CmosReg.Century]!) * 100 + fmt.dec(ram[CmosReg.Year]!),
      fmt.dec(ram[CmosReg.Month]!) - 1,
      fmt.dec(ram[CmosReg.DayOfMonth]!),
    );
    d.setUTCHours(fmt.decHour(ram[CmosReg.Hours]!), fmt.dec(ram[CmosReg.Minutes]!), fmt.dec(ram[CmosReg.Seconds]!), 0);
    return Math.floor(d.getTime() / 1000);
  }
}

/**
 * The memory-size bytes PC firmware and Linux's early code read (the
 * layout QEMU and SeaBIOS use): base memory, memory above 1 MiB, above
 * 16 MiB and above 4 GiB, and the CPU count.
 */
function writeMemorySizes(ram: Uint8Array, below4G: number, above4G: number, cpus: number): void {
  const KiB = 1024;
  const MiB = 1024 * KiB;
  const put16 = (index: number, v: number): void => {
    ram[index] = v & 0xff;
    ram[index + 1] = (v >> 8) & 0xff;
  };
  put16(CmosReg.BaseMemLow, Math.min(640, Math.floor(below4G / KiB)));
  const extended = Math.min(0xffff, Math.max(0, Math.floor(below4G / KiB) - 1024));
  put16(CmosReg.ExtMemLow, extended);
  put16(CmosReg.ExtMemPostLow, extended);
  put16(CmosReg.HighMemLow, below4G > 16 * MiB ? Math.min(0xffff, Math.floor((below4G - 16 * MiB) / (64 * KiB))) : 0);
  const high = Math.min(0xffffff, Math.floor(above4G / (64 * KiB)));
  ram[CmosReg.Above4GLow] = high & 0xff;
  ram[CmosReg.Above4GMid] = (high >> 8) & 0xff;
  ram[CmosReg.Above4GHigh] = (high >> 16) & 0xff;
  ram[CmosReg.CpuCountMinusOne] = Math.max(0, Math.min(255, cpus - 1));
}
