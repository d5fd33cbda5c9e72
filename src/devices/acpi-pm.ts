import type { AccessSize, BusDevice, DeviceHost } from './device.js';
import { Mutex } from '../sync/mutex.js';
import { defineLayout, i32, loadState, mutex, required, saveState, type SavedState } from '../sync/state-layout.js';

/**
 * Offsets from the device base (port 0x600 in our VM). For the FADT:
 * PM1a_EVT_BLK = base + PM1A_STS (PM1_EVT_LEN 4), PM1a_CNT_BLK = base +
 * PM1A_CNT (PM1_CNT_LEN 2), PM_TMR_BLK = base + PM_TMR (PM_TMR_LEN 4, flag
 * TMR_VAL_EXT clear: the counter is 24 bits wide).
 */
export const PM1A_STS = 0;
export const PM1A_EN = 2;
export const PM1A_CNT = 4;
export const PM_TMR = 8;
export const ACPI_PM_LENGTH = 12;
export const PM1_EVT_LEN = 4;
export const PM1_CNT_LEN = 2;
export const PM_TMR_LEN = 4;

/** PM1_STS and PM1_EN bits. */
export const Pm1Event = { TMR: 1 << 0, GBL: 1 << 5, PWRBTN: 1 << 8, RTC: 1 << 10, WAK: 1 << 15 } as const;
/** PM1_CNT bits. */
export const Pm1Cnt = { SCI_EN: 1 << 0, SLP_TYP_SHIFT: 10, SLP_TYP_MASK: 7 << 10, SLP_EN: 1 << 13 } as const;

/** The PM timer's frequency, fixed by the ACPI specification. */
export const PM_TIMER_HZ = 3_579_545;

/** The shared state behind every thread's view; structured-cloneable. */
export interface AcpiPmState {
  readonly regs: SharedArrayBuffer;
}

export interface AcpiPmAllocateOptions {
  /**
   * PM1_CNT.SCI_EN at reset (default true). Our FADT has no SMI_CMD, so the
   * machine is always in ACPI mode and the OS never sets SCI_EN itself.
   */
  sciEnabled?: boolean;
}

export interface AcpiPmOptions {
  /** The GSI the SCI drives (FADT SCI_INT). */
  sciIrq: number;
  /** SLP_TYPa of the \_S5 package in the DSDT. */
  s5SlpTyp: number;
}

// Words; all but LOCK are only touched with LOCK held.
export const ACPI_PM_LAYOUT = defineLayout('acpi-pm', 1, {
  lock: mutex(),
  sts: i32(),
  en: i32(),
  /** SCI_EN and SLP_TYP; SLP_EN is an action, not state. */
  cnt: i32(),
  /** What was last driven on the SCI, so every thread agrees. */
  sciLevel: i32(),
  /** Which half-period of bit 23 the timer was in at the last look. */
  tmrPeriod: i32(),
  tmrStarted: i32(),
});
const { lock: LOCK, sts: STS, en: EN, cnt: CNT, sciLevel: SCI_LEVEL, tmrPeriod: TMR_PERIOD, tmrStarted: TMR_STARTED } = ACPI_PM_LAYOUT.at;
const WORDS = ACPI_PM_LAYOUT.byteLength / 4;

const STS_BITS = Pm1Event.TMR | Pm1Event.PWRBTN | Pm1Event.RTC | Pm1Event.WAK;
// RTC_EN and GBL_EN are kept so ACPICA reads back what it enabled; their
// status bits never set (no RTC wake alarm, no BIOS lock).
const EN_BITS = Pm1Event.TMR | Pm1Event.GBL | Pm1Event.PWRBTN | Pm1Event.RTC;
const CNT_BITS = Pm1Cnt.SCI_EN | Pm1Cnt.SLP_TYP_MASK;
const TMR_MSB_PERIOD = 1 << 23; // ticks between toggles of bit 23
const TMR_MODULUS = 1 << 24;

/** PM timer ticks since the clock's origin, exact for any nanosecond count below 2^53. */
function pmTimerTicks(ns: number): number {
  const s = Math.floor(ns / 1e9);
  return s * PM_TIMER_HZ + Math.floor(((ns - s * 1e9) * PM_TIMER_HZ) / 1e9);
}

type SleepRequest = { kind: 'none' } | { kind: 'poweroff' } | { kind: 'unsupported'; slpTyp: number };

/**
 * ACPI fixed hardware: the PM1a event and control registers and the PM
 * timer. Each thread builds its own view over one shared state; every access
 * happens under the state's mutex.
 *
 * There are no timers here, so TMR_STS is derived from the clock whenever the
 * block is touched (any access, `pressPowerButton` or `poll`): an SCI from
 * TMR_EN is noticed at the next touch. Linux uses the PM timer only as a
 * clocksource and never enables TMR_EN; a host that needs the timer SCI on
 * time can call `poll` every second or so (bit 23 toggles every 2.34 s).
 *
 * `host.irq.setLevel` is called with the mutex held (true = SCI asserted; its
 * polarity is the irqchip's business); the irqchip must not call back in.
 */
export class AcpiPm implements BusDevice {
  readonly name = 'acpi-pm';
  private readonly words: Int32Array;
  private readonly lock: Mutex;

  static allocate(options: AcpiPmAllocateOptions = {}): AcpiPmState {
    const regs = ACPI_PM_LAYOUT.allocate();
    new Int32Array(regs)[CNT] = options.sciEnabled === false ? 0 : Pm1Cnt.SCI_EN;
    return { regs };
  }

  static save(state: AcpiPmState): Record<string, SavedState> {
    return { regs: saveState(ACPI_PM_LAYOUT, state.regs) };
  }

  static load(state: AcpiPmState, saved: Record<string, SavedState>): void {
    loadState(ACPI_PM_LAYOUT, state.regs, required(saved, 'regs'));
  }

  constructor(
    state: AcpiPmState,
    private readonly host: DeviceHost,
    private readonly options: AcpiPmOptions,
  ) {
    this.words = new Int32Array(state.regs, 0, WORDS);
    this.lock = new Mutex(this.words, LOCK);
    // The timer runs from the first view built: toggles before it are not reported.
    this.lock.with(() => {
      if (this.words[TMR_STARTED] !== 0) return;
      this.words[TMR_STARTED] = 1;
      this.words[TMR_PERIOD] = this.timerPeriod(pmTimerTicks(this.host.clock.nowNs()));
    });
  }

  /** Bytes past the block read as 0xff (undriven); reserved bytes inside it as 0. */
  read(offset: number, size: AccessSize, _vcpu: number): number {
    return this.lock.with(() => {
      const timer = this.sampleTimer();
      this.updateSci();
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.readByte(offset + i, timer) << (8 * i);
      return value >>> 0;
    });
  }

  /** Each byte lands in its own register, so a partial write touches only the bytes written. */
  write(offset: number, size: AccessSize, value: number, _vcpu: number): void {
    const request = this.lock.with(() => {
      this.sampleTimer();
      let stsClear = 0;
      let enBits = 0;
      let enMask = 0;
      let cntBits = 0;
      let cntMask = 0;
      for (let i = 0; i < size; i++) {
        const at = offset + i;
        const shift = 8 * (at & 1);
        const byte = ((value >>> (8 * i)) & 0xff) << shift;
        const register = at - (at & 1);
        if (register === PM1A_STS) {
          stsClear |= byte;
        } else if (register === PM1A_EN) {
          enBits |= byte;
          enMask |= 0xff << shift;
        } else if (register === PM1A_CNT) {
          cntBits |= byte;
          cntMask |= 0xff << shift;
        }
      }
      const w = this.words;
      w[STS] = w[STS]! & ~(stsClear & STS_BITS);
      w[EN] = ((w[EN]! & ~enMask) | enBits) & EN_BITS;
      w[CNT] = ((w[CNT]! & ~cntMask) | cntBits) & CNT_BITS;
      const sleep = this.sleepRequest(cntBits);
      this.updateSci();
      return sleep;
    });
    // Outside the lock: the VM may do anything in response.
    if (request.kind === 'poweroff') {
      this.host.vm.requestStop({ kind: 'poweroff' });
    } else if (request.kind === 'unsupported') {
      this.host.vm.log('warn', `acpi: guest asked for sleep type ${request.slpTyp}; only soft-off (S5) is supported, ignoring`);
    }
  }

  /** Host side: a press of the power button, how a host asks an ACPI guest to shut down. */
  pressPowerButton(): void {
    this.lock.with(() => {
      this.sampleTimer();
      this.words[STS] = this.words[STS]! | Pm1Event.PWRBTN;
      this.updateSci();
    });
  }

  /** Brings TMR_STS and the SCI up to date with the clock (see the class comment). */
  poll(): void {
    this.lock.with(() => {
      this.sampleTimer();
      this.updateSci();
    });
  }

  private sleepRequest(cntWritten: number): SleepRequest {
    if (!(cntWritten & Pm1Cnt.SLP_EN)) return { kind: 'none' };
    const slpTyp = (this.words[CNT]! & Pm1Cnt.SLP_TYP_MASK) >> Pm1Cnt.SLP_TYP_SHIFT;
    if (slpTyp === this.options.s5SlpTyp) return { kind: 'poweroff' };
    // We stay awake; report an immediate wake so an OS waiting for WAK_STS
    // after an S1-S3 request (Linux spins on it) carries on.
    this.words[STS] = this.words[STS]! | Pm1Event.WAK;
    return { kind: 'unsupported', slpTyp };
  }

  /** The 24-bit timer value now; latches TMR_STS if bit 23 toggled since the last look. */
  private sampleTimer(): number {
    const ticks = pmTimerTicks(this.host.clock.nowNs());
    const period = this.timerPeriod(ticks);
    if (period !== this.words[TMR_PERIOD]) {
      this.words[TMR_PERIOD] = period;
      this.words[STS] = this.words[STS]! | Pm1Event.TMR;
    }
    return ticks % TMR_MODULUS;
  }

  private timerPeriod(ticks: number): number {
    return Math.floor(ticks / TMR_MSB_PERIOD) | 0;
  }

  private readByte(offset: number, timer: number): number {
    if (offset >= PM_TMR && offset < PM_TMR + PM_TMR_LEN) return (timer >>> (8 * (offset - PM_TMR))) & 0xff;
    const shift = 8 * (offset & 1);
    switch (offset - (offset & 1)) {
      case PM1A_STS:
        return (this.words[STS]! >> shift) & 0xff;
      case PM1A_EN:
        return (this.words[EN]! >> shift) & 0xff;
      case PM1A_CNT:
        return (this.words[CNT]! >> shift) & 0xff;
      default:
        return offset < ACPI_PM_LENGTH ? 0 : 0xff;
    }
  }

  private updateSci(): void {
    const w = this.words;
    const level = w[CNT]! & Pm1Cnt.SCI_EN && w[STS]! & w[EN]! & EN_BITS ? 1 : 0;
    if (w[SCI_LEVEL] === level) return;
    w[SCI_LEVEL] = level;
    this.host.irq.setLevel(this.options.sciIrq, level === 1);
  }
}
