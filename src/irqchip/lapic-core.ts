/**
 * One local APIC (Intel SDM vol. 3, ch. 11): its register file, priority
 * logic, interrupt acceptance, LINT pins, IPIs and timer. Its state is a
 * block of the `LapicSet` SharedArrayBuffer (layout in lapic-regs.ts).
 *
 * A LAPIC's registers are written only by its own vCPU thread (MMIO/MSR
 * accesses, acknowledge, EOI), except for interrupt acceptance, which any
 * thread performs with atomic read-modify-write operations on the IRR/TMR
 * words, the pending-events word, the error word and the LINT pin word.
 * Other threads read owner-written registers (IDs, LDR/DFR, SVR, TPR, LVTs)
 * with `Atomics.load` to route messages.
 */
import type { AccessSize } from '../devices/device.js';
import type { Clock } from '../sync/clock.js';
import {
  DeliveryMode,
  Shorthand,
  type ApicBus,
  type ApicMessage,
  type EoiListener,
  type GuestRam,
  type TscSource,
  type WakeFn,
} from './types.js';
import {
  APIC_BASE_BSP,
  APIC_BASE_EN,
  APIC_BASE_EXTD,
  APIC_BASE_RESERVED_LO,
  BLOCK_WORDS,
  ESR_ILLEGAL_REGISTER,
  ESR_RECEIVE_ILLEGAL_VECTOR,
  ESR_SEND_ILLEGAL_VECTOR,
  H_IDS_CHANGED,
  HEADER_WORDS,
  ICR_ASSERT,
  ICR_LEVEL,
  ICR_LO_WRITABLE,
  ICR_LOGICAL,
  ICR_SHORTHAND_SHIFT,
  LAPIC_DEFAULT_BASE,
  LAPIC_VERSION,
  LVT_COUNT,
  LVT_DELIVERY_MODE_SHIFT,
  LVT_LEVEL,
  LVT_MASKED,
  LVT_POLARITY_LOW,
  LVT_REMOTE_IRR,
  LVT_TIMER_MODE_SHIFT,
  LVT_WRITABLE,
  LapicEvent,
  Lvt,
  MSR_IA32_APIC_BASE,
  MSR_IA32_TSC_DEADLINE,
  MSR_KVM_PV_EOI_EN,
  MSR_X2APIC_FIRST,
  MSR_X2APIC_LAST,
  SVR_ENABLE,
  SVR_VECTOR,
  SVR_WRITABLE,
  W_BASE_HI,
  W_BASE_LO,
  W_DFR,
  W_ESR,
  W_ESR_PENDING,
  W_EVENTS,
  W_F64,
  W_ICR_HI,
  W_ICR_LO,
  W_ID,
  W_INITIAL_ID,
  W_IRR,
  W_ISR,
  W_ISRV,
  W_LDR,
  W_LINT_PINS,
  W_LINT_REMOTE,
  W_LVT,
  W_SIPI,
  W_ATTN,
  W_SVR,
  W_TMR,
  W_TPR,
} from './lapic-regs.js';
import { LapicTimer } from './lapic-timer.js';
import { LapicPvEoi } from './lapic-pv-eoi.js';

export interface LapicSetOptions {
  /** Process-wide time source for the APIC timers (a `FakeClock` in tests). */
  clock: Clock;
  /** Called after an acceptance made something newly pending on a vCPU. */
  wake: WakeFn;
  /** Receives EOIs of level-triggered vectors written on this thread. */
  eoi?: EoiListener;
  /** Guest TSC; enables TSC-deadline mode and IA32_TSC_DEADLINE. */
  tsc?: TscSource;
  /**
   * Initial APIC ID of each vCPU (default: the vCPU index). Must be distinct.
   * The first view built over a buffer initialises it; later views must
   * agree (or leave this out).
   */
  apicIds?: readonly number[];
  /**
   * Called on the owner's thread after a register write (re)armed or
   * disarmed the timer, so a timer thread sleeping until the old
   * `nextDeadlineNs()` can re-read it.
   */
  timerChanged?: (vcpu: number) => void;
  /**
   * Power up the BSP's LINT0 as unmasked ExtINT, as firmware leaves it in
   * virtual-wire mode (KVM does the same), so 8259 interrupts reach vCPU 0
   * before the guest programs its APIC. Default true.
   */
  virtualWire?: boolean;
  /** MAXPHYADDR for the APIC base reserved-bit check. Default 52. */
  physAddrBits?: number;
  /**
   * Test-only: busy-wait this long before every IPI is sent, so benchmark
   * tests can prove a slowed delivery path is caught as a regression.
   */
  testIpiDelayNs?: number;
  /** Told of each IPI (ICR send) reaching a vCPU's APIC, on the sender's thread: for per-vCPU counters. */
  ipiDelivered?: (from: number, to: number) => void;
  /**
   * Guest RAM, given on the vCPU threads: it makes paravirtual EOI
   * (MSR_KVM_PV_EOI_EN) available. Without it that MSR is a #GP.
   */
  guestRam?: GuestRam;
}

/** The mode IA32_APIC_BASE selects. */
export type LapicMode = 'disabled' | 'xapic' | 'x2apic';

// Outcomes of a register write.
const WR_OK = 0;
const WR_READ_ONLY = 1;
const WR_UNIMPLEMENTED = 2;

// Register numbers (MMIO offset / 16 = x2APIC MSR - 0x800).
const R_ID = 0x02;
const R_VERSION = 0x03;
const R_TPR = 0x08;
const R_APR = 0x09;
const R_PPR = 0x0a;
const R_EOI = 0x0b;
const R_RRD = 0x0c;
const R_LDR = 0x0d;
const R_DFR = 0x0e;
const R_SVR = 0x0f;
const R_ISR0 = 0x10;
const R_TMR0 = 0x18;
const R_IRR0 = 0x20;
const R_IRR7 = 0x27;
const R_ESR = 0x28;
const R_ICR_LO = 0x30;
const R_ICR_HI = 0x31;
const R_LVT0 = 0x32;
const R_LVT5 = 0x37;
const R_TMICT = 0x38;
const R_TMCCT = 0x39;
const R_TDCR = 0x3e;
const R_SELF_IPI = 0x3f;

function highestBit(word: number): number {
  return 31 - Math.clz32(word);
}

/** x2APIC logical ID: cluster (ID[19:4]) in bits 31:16, one bit for ID[3:0] (SDM 11.12.10.2). */
export function x2apicLogicalId(id: number): number {
  return (((id >>> 4) << 16) | (1 << (id & 15))) >>> 0;
}

/**
 * One vCPU's local APIC, as seen from the thread that built the `LapicSet`.
 * Methods are owner-only unless marked "any thread".
 */
export class Lapic {
  readonly index: number;
  private readonly s: Int32Array;
  private readonly b: number;
  private readonly timer: LapicTimer;
  private readonly pvEoi: LapicPvEoi;
  /** Reused for ICR sends so that an IPI allocates nothing. */
  private readonly ipi: ApicMessage;

  /** @internal Built by `LapicSet`; `bus` carries this APIC's IPIs. */
  constructor(
    private readonly bus: ApicBus,
    index: number,
    i32: Int32Array,
    f64: Float64Array,
    private readonly options: LapicSetOptions,
  ) {
    this.index = index;
    this.s = i32;
    this.b = HEADER_WORDS + index * BLOCK_WORDS;
    this.timer = new LapicTimer(
      i32,
      f64,
      this.b,
      (this.b + W_F64) / 2,
      options.clock,
      options.tsc,
      (lvt) => this.acceptLocal(lvt & 0xff, false),
    );
    this.pvEoi = new LapicPvEoi(i32, this.b, options.guestRam, () => this.eoi());
    this.ipi = {
      vector: 0,
      deliveryMode: DeliveryMode.Fixed,
      logical: false,
      dest: 0,
      levelTriggered: false,
      assert: true,
      shorthand: Shorthand.None,
      source: index,
      x2apic: false,
    };
  }

  // --- State queries (any thread) -----------------------------------------

  get mode(): LapicMode {
    const base = Atomics.load(this.s, this.b + W_BASE_LO);
    if (!(base & APIC_BASE_EN)) return 'disabled';
    return base & APIC_BASE_EXTD ? 'x2apic' : 'xapic';
  }

  /** The current 32-bit APIC ID (the xAPIC ID register shows its low 8 bits). */
  get apicId(): number {
    return Atomics.load(this.s, this.b + W_ID) >>> 0;
  }

  /** The APIC ID this vCPU was given (the x2APIC ID). */
  get initialApicId(): number {
    return Atomics.load(this.s, this.b + W_INITIAL_ID) >>> 0;
  }

  /** Physical address of the xAPIC page that IA32_APIC_BASE selects. */
  baseAddress(): number {
    const hi = Atomics.load(this.s, this.b + W_BASE_HI) >>> 0;
    return hi * 0x100000000 + ((Atomics.load(this.s, this.b + W_BASE_LO) & 0xfffff000) >>> 0);
  }

  /** IA32_APIC_BASE[11]: false means the APIC is globally disabled (absent). */
  hwEnabled(): boolean {
    return (Atomics.load(this.s, this.b + W_BASE_LO) & APIC_BASE_EN) !== 0;
  }

  /** SVR[8]: false means software-disabled (fixed interrupts are not accepted). */
  swEnabled(): boolean {
    return (Atomics.load(this.s, this.b + W_SVR) & SVR_ENABLE) !== 0;
  }

  /** Highest vector set in IRR, or -1. */
  highestIrr(): number {
    const s = this.s;
    for (let w = 7; w >= 0; w--) {
      const bits = Atomics.load(s, this.b + W_IRR + w);
      if (bits !== 0) return w * 32 + highestBit(bits);
    }
    return -1;
  }

  /** Processor priority (SDM 11.8.3.1). */
  ppr(): number {
    const tpr = Atomics.load(this.s, this.b + W_TPR);
    const isrv = Atomics.load(this.s, this.b + W_ISRV);
    return (tpr & 0xf0) >= (isrv & 0xf0) ? tpr : isrv & 0xf0;
  }

  /** Arbitration priority (SDM 11.6.2.4), used for lowest-priority delivery. */
  apr(): number {
    const tpr = Atomics.load(this.s, this.b + W_TPR);
    const isrv = Atomics.load(this.s, this.b + W_ISRV);
    const irrv = Math.max(0, this.highestIrr());
    if ((tpr & 0xf0) >= (irrv & 0xf0) && (tpr & 0xf0) > (isrv & 0xf0)) return tpr;
    return Math.max(tpr & 0xf0, isrv & 0xf0, irrv & 0xf0);
  }

  // --- Interrupt acceptance (any thread) ----------------------------------

  /**
   * Accepts one message that was routed here; any thread. Returns true if it
   * made something newly pending (an IRR bit or event bit that was clear);
   * false if it coalesced with a pending one or was refused. Does not wake
   * the vCPU; `LapicSet.deliver` does.
   */
  accept(msg: ApicMessage): boolean {
    switch (msg.deliveryMode) {
      case DeliveryMode.Fixed:
      case DeliveryMode.LowestPriority:
        return this.acceptVector(msg.vector, msg.levelTriggered);
      case DeliveryMode.NMI:
        return this.raiseEvent(LapicEvent.NMI);
      case DeliveryMode.SMI:
        return this.raiseEvent(LapicEvent.SMI);
      case DeliveryMode.INIT:
        return this.raiseEvent(LapicEvent.INIT);
      case DeliveryMode.StartUp:
        // Both SIPIs of the INIT-SIPI-SIPI sequence carry the same vector.
        Atomics.store(this.s, this.b + W_SIPI, msg.vector & 0xff);
        return this.raiseEvent(LapicEvent.SIPI);
      case DeliveryMode.ExtINT:
        return this.raiseEvent(LapicEvent.EXTINT);
      default:
        return false;
    }
  }

  /**
   * Sets `vector` in IRR (and TMR for level-triggered, clearing it for edge,
   * since TMR records the trigger mode of the latest acceptance).
   * Vectors 0-15 are illegal: they set "receive illegal vector" instead
   * (SDM 11.5.3). A software-disabled APIC refuses fixed interrupts (what
   * KVM does; SDM 11.4.7.2 leaves IRR/ISR contents held).
   */
  private acceptVector(vector: number, level: boolean): boolean {
    vector &= 0xff;
    if (vector < 16) {
      this.raiseError(ESR_RECEIVE_ILLEGAL_VECTOR);
      return false;
    }
    const s = this.s;
    if (!(Atomics.load(s, this.b + W_SVR) & SVR_ENABLE)) return false;
    const w = vector >>> 5;
    const bit = 1 << (vector & 31);
    // TMR before IRR: once the owner sees the IRR bit, the trigger mode is there.
    const tmr = this.b + W_TMR + w;
    if (level) Atomics.or(s, tmr, bit);
    else if (Atomics.load(s, tmr) & bit) Atomics.and(s, tmr, ~bit);
    const fresh = (Atomics.or(s, this.b + W_IRR + w, bit) & bit) === 0;
    if (fresh) this.touch();
    return fresh;
  }

  /** Puts back events taken by `takeEvents` but not acted on (a vCPU pausing for a snapshot). */
  returnEvents(bits: number): void {
    if (bits) this.raiseEvent(bits);
  }

  private raiseEvent(bit: number): boolean {
    const fresh = (Atomics.or(this.s, this.b + W_EVENTS, bit) & bit) === 0;
    if (fresh) this.touch();
    return fresh;
  }

  /** Marks a change the run loop must look at (see W_ATTN); after the change itself is visible. */
  private touch(): void {
    Atomics.add(this.s, this.b + W_ATTN, 1);
  }

  /**
   * A counter that moves whenever what this APIC would deliver may have
   * changed. While it stands still (and nothing was pending when it was
   * last read), the run loop can skip its checks. Any thread.
   */
  attention(): number {
    return Atomics.load(this.s, this.b + W_ATTN);
  }

  /** A locally generated interrupt (timer, LINT, error): accept and wake. */
  private acceptLocal(vector: number, level: boolean): void {
    if (this.acceptVector(vector, level)) this.options.wake(this.index);
  }

  /**
   * Records an error (any thread) and, if the error LVT is unmasked, raises
   * its vector (SDM 11.5.3). An illegal error vector only records another error.
   */
  private raiseError(bits: number): void {
    const s = this.s;
    Atomics.or(s, this.b + W_ESR_PENDING, bits);
    const lvt = Atomics.load(s, this.b + W_LVT + Lvt.Error);
    if (lvt & LVT_MASKED) return;
    const vector = lvt & 0xff;
    if (vector < 16) {
      Atomics.or(s, this.b + W_ESR_PENDING, ESR_RECEIVE_ILLEGAL_VECTOR);
      return;
    }
    this.acceptLocal(vector, false);
  }

  // --- LINT pins (any thread) ---------------------------------------------

  /**
   * Drives LINT0/LINT1 (the 8259's INTR is wired to LINT0, NMI to LINT1).
   * Acts on the edge towards the LVT's active polarity; Fixed level-triggered
   * entries (LINT0 only; SDM: LINT1 is always edge) are re-delivered at EOI
   * while the pin stays asserted, tracked by the LVT's remote IRR bit.
   * While the APIC is globally disabled, LINT0 is the processor's INTR
   * (ExtINT) and LINT1 its NMI input (SDM 11.4.3).
   */
  setLint(pin: 0 | 1, high: boolean): void {
    const s = this.s;
    const bit = 1 << pin;
    const old = high ? Atomics.or(s, this.b + W_LINT_PINS, bit) : Atomics.and(s, this.b + W_LINT_PINS, ~bit);
    if (((old & bit) !== 0) === high) return;
    this.touch(); // an ExtINT pin level is read by extIntPending
    let wake = false;
    if (!this.hwEnabled()) {
      if (high) wake = pin === 0 ? true : this.raiseEvent(LapicEvent.NMI);
    } else {
      const lvt = Atomics.load(s, this.b + W_LVT + Lvt.Lint0 + pin);
      // Only the edge into the asserted state does anything.
      if (lvt & LVT_MASKED || high === ((lvt & LVT_POLARITY_LOW) !== 0)) return;
      wake = this.deliverLint(pin, lvt);
    }
    if (wake) this.options.wake(this.index);
  }

  private deliverLint(pin: number, lvt: number): boolean {
    switch ((lvt >>> LVT_DELIVERY_MODE_SHIFT) & 7) {
      case DeliveryMode.Fixed:
        if (pin === 0 && lvt & LVT_LEVEL) return this.acceptLintLevel(pin, lvt);
        return this.acceptVector(lvt & 0xff, false);
      case DeliveryMode.NMI:
        return this.raiseEvent(LapicEvent.NMI);
      case DeliveryMode.SMI:
        return this.raiseEvent(LapicEvent.SMI);
      case DeliveryMode.INIT:
        return this.raiseEvent(LapicEvent.INIT);
      case DeliveryMode.ExtINT:
        return true; // level: `extIntPending()` samples the pin
      default:
        return false;
    }
  }

  private acceptLintLevel(pin: number, lvt: number): boolean {
    const vector = lvt & 0xff;
    if (vector < 16 || !this.swEnabled()) return this.acceptVector(vector, true);
    const bit = 1 << pin;
    if (Atomics.or(this.s, this.b + W_LINT_REMOTE, bit) & bit) return false; // in service
    return this.acceptVector(vector, true);
  }

  private lintAsserted(pin: number, lvt: number): boolean {
    const high = (Atomics.load(this.s, this.b + W_LINT_PINS) & (1 << pin)) !== 0;
    return high !== ((lvt & LVT_POLARITY_LOW) !== 0);
  }

  /**
   * True while the 8259 should be asked for a vector (INTA): an ExtINT
   * message is pending, or a LINT pin in ExtINT mode is asserted. Any thread.
   */
  extIntPending(): boolean {
    const s = this.s;
    if (Atomics.load(s, this.b + W_EVENTS) & LapicEvent.EXTINT) return true;
    if (!this.hwEnabled()) return (Atomics.load(s, this.b + W_LINT_PINS) & 1) !== 0;
    for (let pin = 0; pin < 2; pin++) {
      const lvt = Atomics.load(s, this.b + W_LVT + Lvt.Lint0 + pin);
      if (
        !(lvt & LVT_MASKED) &&
        ((lvt >>> LVT_DELIVERY_MODE_SHIFT) & 7) === DeliveryMode.ExtINT &&
        this.lintAsserted(pin, lvt)
      ) {
        return true;
      }
    }
    return false;
  }

  /**
   * The run loop took a vector from the 8259: clears a latched ExtINT
   * message. (A LINT pin in ExtINT mode stays pending while the 8259 keeps
   * its INTR output high.)
   */
  acknowledgeExtInt(): void {
    Atomics.and(this.s, this.b + W_EVENTS, ~LapicEvent.EXTINT);
    this.touch();
  }

  // --- Events and interrupt delivery to the core (owner) -------------------

  /**
   * Atomically takes the pending NMI/INIT/SIPI/SMI bits (`LapicEvent`).
   * EXTINT is left in place; see `extIntPending`. If INIT and SIPI come
   * together, handle INIT first.
   */
  takeEvents(): number {
    return Atomics.and(this.s, this.b + W_EVENTS, LapicEvent.EXTINT) & ~LapicEvent.EXTINT;
  }

  /** Vector of the latest StartUp IPI (the start page number). */
  sipiVector(): number {
    return Atomics.load(this.s, this.b + W_SIPI);
  }

  /**
   * The vector the core would take now: the highest IRR vector whose
   * priority class is above PPR's (SDM 11.8.3), or -1. IRR contents are
   * still delivered while software-disabled (SDM 11.4.7.2: they are held,
   * "requiring masking or handling by the CPU"); none while globally disabled.
   */
  pendingVector(): number {
    if (!this.hwEnabled()) return -1;
    const v = this.highestIrr();
    if (v < 0) return -1;
    return (v & 0xf0) > (this.ppr() & 0xf0) ? v : -1;
  }

  /** A pending ExtINT or deliverable fixed interrupt: the run loop wants an interrupt window. */
  hasPendingInterrupt(): boolean {
    return this.extIntPending() || this.pendingVector() >= 0;
  }

  /**
   * The INTA cycle: moves the pending vector from IRR to ISR and returns it,
   * or returns the spurious vector (SVR[7:0]) without touching ISR when
   * nothing is deliverable any more (SDM 11.9).
   */
  acknowledge(): number {
    this.touch();
    const v = this.pendingVector();
    const s = this.s;
    if (v < 0) return Atomics.load(s, this.b + W_SVR) & SVR_VECTOR;
    const w = v >>> 5;
    const bit = 1 << (v & 31);
    Atomics.and(s, this.b + W_IRR + w, ~bit);
    s[this.b + W_ISR + w]! |= bit;
    // v's class is above PPR, hence above every in-service vector.
    Atomics.store(s, this.b + W_ISRV, v);
    return v;
  }

  /**
   * End of interrupt: retires the highest in-service vector (SDM 11.8.5).
   * If TMR says it was level-triggered, the EOI is broadcast to the
   * `EoiListener` (the IOAPIC) and level LINT inputs are re-evaluated.
   * TMR itself is left alone, as on hardware: it is rewritten by the next
   * acceptance of the vector, and clearing it here could wipe the TMR bit of
   * a re-delivery that arrived in the meantime.
   */
  eoi(): void {
    this.touch();
    const s = this.s;
    const v = s[this.b + W_ISRV]!;
    if (v === 0) return; // nothing in service: ignored
    const w = v >>> 5;
    const bit = 1 << (v & 31);
    s[this.b + W_ISR + w]! &= ~bit;
    let next = 0;
    for (let i = w; i >= 0; i--) {
      const bits = s[this.b + W_ISR + i]!;
      if (bits !== 0) {
        next = i * 32 + highestBit(bits);
        break;
      }
    }
    Atomics.store(s, this.b + W_ISRV, next);
    if (Atomics.load(s, this.b + W_TMR + w) & bit) {
      this.lintEoi(v);
      this.options.eoi?.onEoi(v);
    }
  }

  /** Level-triggered LINT with this vector: clear remote IRR, re-deliver if still asserted. */
  private lintEoi(vector: number): void {
    const s = this.s;
    const remote = Atomics.load(s, this.b + W_LINT_REMOTE);
    if (remote === 0) return;
    for (let pin = 0; pin < 2; pin++) {
      const bit = 1 << pin;
      if (!(remote & bit)) continue;
      const lvt = Atomics.load(s, this.b + W_LVT + Lvt.Lint0 + pin);
      if ((lvt & 0xff) !== vector) continue;
      Atomics.and(s, this.b + W_LINT_REMOTE, ~bit);
      this.redeliverLevelLint(pin, lvt);
    }
  }

  private redeliverLevelLint(pin: number, lvt: number): void {
    if (
      !(lvt & LVT_MASKED) &&
      pin === 0 &&
      lvt & LVT_LEVEL &&
      ((lvt >>> LVT_DELIVERY_MODE_SHIFT) & 7) === DeliveryMode.Fixed &&
      this.lintAsserted(pin, lvt) &&
      this.acceptLintLevel(pin, lvt)
    ) {
      this.options.wake(this.index);
    }
  }

  // --- Paravirtual EOI (owner; see lapic-pv-eoi.ts) ------------------------

  /** MSR_KVM_PV_EOI_EN has the interface enabled. */
  pvEoiEnabled(): boolean {
    return this.pvEoi.enabled();
  }

  /** The guest's PV EOI word holds the bit we set (its next EOI may skip the register). */
  pvEoiArmed(): boolean {
    return this.pvEoi.armed();
  }

  /** After every exit: completes an EOI the guest did through its PV EOI word. True if one was. */
  syncPvEoiAfterExit(): boolean {
    return this.pvEoi.afterExit();
  }

  /** eoiSkippable, bound once: the entry path hands it over without allocating. */
  private readonly eoiSkippableFn = (): boolean => this.eoiSkippable();

  /** Before every entry, after injection: lets the guest skip its next EOI write where that is safe. */
  syncPvEoiBeforeEntry(): void {
    this.pvEoi.beforeEntry(this.eoiSkippableFn);
  }

  /**
   * The next EOI only retires the vector in service (KVM's rule in
   * apic_sync_pv_eoi_to_guest): exactly one vector in service, and it
   * edge-triggered (TMR clear: no IOAPIC or LINT remote IRR waits for its
   * EOI); nothing in IRR and no ExtINT waiting, since a PV EOI happens
   * without an exit and nobody would then deliver what it unblocks.
   */
  private eoiSkippable(): boolean {
    const s = this.s;
    const b = this.b;
    const v = s[b + W_ISRV]!;
    if (v === 0) return false;
    const w = v >>> 5;
    for (let i = 0; i < 8; i++) {
      if (Atomics.load(s, b + W_IRR + i) !== 0) return false;
      if (s[b + W_ISR + i] !== (i === w ? 1 << (v & 31) : 0)) return false;
    }
    if (Atomics.load(s, b + W_TMR + w) & (1 << (v & 31))) return false;
    return !this.extIntPending();
  }

  /** CR8 as the guest sees it: TPR[7:4]. Sync with kvm_run.cr8 around KVM_RUN. */
  cr8(): number {
    return Atomics.load(this.s, this.b + W_TPR) >>> 4;
  }

  setCr8(value: number): void {
    Atomics.store(this.s, this.b + W_TPR, (value & 0xf) << 4);
    this.touch();
  }

  // --- Timer ----------------------------------------------------------------

  /** When `pollTimer` next has work, in `Clock` ns; Infinity if none. Any thread. */
  nextDeadlineNs(): number {
    return this.timer.nextDeadlineNs();
  }

  /**
   * Takes a due timer expiry: sets the LVT timer vector in IRR unless masked
   * (and wakes the vCPU); re-arms periodic mode past now. Any thread.
   */
  pollTimer(): void {
    this.timer.poll();
  }

  // --- Reset ----------------------------------------------------------------

  /**
   * INIT (SDM 11.4.7.3): every register back to its power-up value except
   * the APIC ID and IA32_APIC_BASE (an x2APIC stays in x2APIC mode).
   * Pending events are kept: a SIPI may already be queued behind the INIT.
   */
  resetForInit(): void {
    this.touch();
    this.pvEoi.reset();
    this.resetRegisters();
    this.options.timerChanged?.(this.index);
  }

  /** Power-up/RESET: also IA32_APIC_BASE (xAPIC at 0xFEE00000), the ID and pending events. */
  reset(): void {
    this.touch();
    this.powerUp();
    this.options.timerChanged?.(this.index);
  }

  /** @internal `reset` without the notification; `LapicSet` initialisation uses it. */
  powerUp(): void {
    const s = this.s;
    const bsp = this.index === 0;
    Atomics.store(s, this.b + W_BASE_HI, 0);
    Atomics.store(s, this.b + W_BASE_LO, LAPIC_DEFAULT_BASE | APIC_BASE_EN | (bsp ? APIC_BASE_BSP : 0));
    Atomics.store(s, this.b + W_ID, Atomics.load(s, this.b + W_INITIAL_ID));
    this.pvEoi.reset();
    this.resetRegisters();
    Atomics.store(s, this.b + W_EVENTS, 0);
    Atomics.store(s, this.b + W_SIPI, 0);
    if (bsp && this.options.virtualWire !== false) {
      Atomics.store(s, this.b + W_LVT + Lvt.Lint0, DeliveryMode.ExtINT << LVT_DELIVERY_MODE_SHIFT);
    }
  }

  private resetRegisters(): void {
    const s = this.s;
    const b = this.b;
    for (let w = 0; w < 8; w++) {
      Atomics.store(s, b + W_IRR + w, 0);
      Atomics.store(s, b + W_TMR + w, 0);
      s[b + W_ISR + w] = 0;
    }
    Atomics.store(s, b + W_ISRV, 0);
    Atomics.store(s, b + W_TPR, 0);
    Atomics.store(s, b + W_ESR, 0);
    Atomics.store(s, b + W_ESR_PENDING, 0);
    Atomics.store(s, b + W_ICR_LO, 0);
    Atomics.store(s, b + W_ICR_HI, 0);
    Atomics.store(s, b + W_DFR, -1);
    Atomics.store(s, b + W_SVR, 0xff);
    Atomics.store(s, b + W_LINT_REMOTE, 0);
    Atomics.store(s, b + W_LDR, this.mode === 'x2apic' ? x2apicLogicalId(this.apicId) | 0 : 0);
    for (let i = 0; i < LVT_COUNT; i++) Atomics.store(s, b + W_LVT + i, LVT_MASKED);
    this.timer.reset();
  }

  // --- xAPIC MMIO (owner) ---------------------------------------------------

  /**
   * Reads the xAPIC page. Registers are 32 bits at 16-byte strides; 1- and
   * 2-byte reads return the addressed bytes, anything in bytes 4-15 of a
   * slot reads 0. Unimplemented registers read 0 and set ESR "illegal
   * register address". In x2APIC mode (and when globally disabled) the page
   * is not decoded (SDM 11.12.2): reads return 0, writes are dropped.
   */
  read(offset: number, size: AccessSize): number {
    if (this.mode !== 'xapic') return 0;
    const within = offset & 0xf;
    if (within + size > 4) return 0;
    const v = this.readReg(offset >>> 4, false);
    if (v < 0) {
      this.raiseError(ESR_ILLEGAL_REGISTER);
      return 0;
    }
    const shifted = v >>> (within * 8);
    return size === 4 ? shifted : shifted & (size === 2 ? 0xffff : 0xff);
  }

  /** Writes the xAPIC page. Only aligned 32-bit writes take effect (the SDM requires them). */
  write(offset: number, size: AccessSize, value: number): void {
    if (this.mode !== 'xapic' || size !== 4 || offset & 0xf) return;
    this.touch();
    if (this.writeReg(offset >>> 4, value >>> 0, false) === WR_UNIMPLEMENTED) {
      this.raiseError(ESR_ILLEGAL_REGISTER);
    }
  }

  // --- MSRs (owner) ---------------------------------------------------------

  /**
   * RDMSR of IA32_APIC_BASE, IA32_TSC_DEADLINE, MSR_KVM_PV_EOI_EN or an
   * x2APIC register. `undefined` means #GP: an MSR this model does not
   * implement, an x2APIC MSR outside x2APIC mode, a write-only or
   * nonexistent x2APIC register, IA32_TSC_DEADLINE without a `TscSource`,
   * or MSR_KVM_PV_EOI_EN without `guestRam`.
   */
  readMsr(index: number): bigint | undefined {
    const s = this.s;
    if (index === MSR_IA32_APIC_BASE) {
      return (
        (BigInt(Atomics.load(s, this.b + W_BASE_HI) >>> 0) << 32n) |
        BigInt(Atomics.load(s, this.b + W_BASE_LO) >>> 0)
      );
    }
    if (index === MSR_IA32_TSC_DEADLINE) {
      return this.options.tsc === undefined ? undefined : BigInt(this.timer.readTscDeadline());
    }
    if (index === MSR_KVM_PV_EOI_EN) return this.pvEoi.available ? this.pvEoi.msr() : undefined;
    if (index < MSR_X2APIC_FIRST || index > MSR_X2APIC_LAST || this.mode !== 'x2apic') return undefined;
    const reg = index - MSR_X2APIC_FIRST;
    if (reg === R_ICR_LO) {
      return (BigInt(s[this.b + W_ICR_HI]! >>> 0) << 32n) | BigInt(s[this.b + W_ICR_LO]! >>> 0);
    }
    const v = this.readReg(reg, true);
    return v < 0 ? undefined : BigInt(v);
  }

  /** WRMSR; false means #GP. See `readMsr` for the MSRs covered. */
  writeMsr(index: number, value: bigint): boolean {
    const v = BigInt.asUintN(64, value);
    this.touch();
    if (index === MSR_IA32_APIC_BASE) return this.writeApicBase(v);
    if (index === MSR_IA32_TSC_DEADLINE) {
      if (this.options.tsc === undefined) return false;
      this.timer.writeTscDeadline(Number(v));
      this.options.timerChanged?.(this.index);
      return true;
    }
    if (index === MSR_KVM_PV_EOI_EN) return this.pvEoi.writeMsr(v);
    if (index < MSR_X2APIC_FIRST || index > MSR_X2APIC_LAST || this.mode !== 'x2apic') return false;
    const reg = index - MSR_X2APIC_FIRST;
    const lo = Number(v & 0xffffffffn);
    if (reg === R_ICR_LO) {
      // One 64-bit register: destination in bits 63:32 (SDM 11.12.9).
      const hi = Number(v >> 32n);
      this.s[this.b + W_ICR_HI] = hi | 0;
      this.s[this.b + W_ICR_LO] = lo & ICR_LO_WRITABLE;
      this.sendIcr(lo, hi, true);
      return true;
    }
    if (v >> 32n !== 0n) return false; // bits 63:32 are reserved in every other x2APIC MSR
    return this.writeReg(reg, lo, true) === WR_OK;
  }

  /**
   * IA32_APIC_BASE (SDM 11.12.5): EN=0/EXTD=1 is invalid, x2APIC -> xAPIC and
   * disabled -> x2APIC are illegal; all #GP, as are reserved bits. The BSP
   * flag is read-only here. Disabling resets every register but the ID;
   * entering x2APIC mode sets the 32-bit ID to the initial one and derives LDR.
   * The base address is stored and read back, but `createMmioDevice` only
   * decodes the page at its own (default) address.
   */
  private writeApicBase(value: bigint): boolean {
    const s = this.s;
    const lo = Number(value & 0xffffffffn);
    const bits = this.options.physAddrBits ?? 52;
    if (lo & APIC_BASE_RESERVED_LO || value >> BigInt(bits) !== 0n) return false;
    const en = (lo & APIC_BASE_EN) !== 0;
    const extd = (lo & APIC_BASE_EXTD) !== 0;
    if (extd && !en) return false;
    const old = this.mode;
    const next: LapicMode = !en ? 'disabled' : extd ? 'x2apic' : 'xapic';
    if ((old === 'x2apic' && next === 'xapic') || (old === 'disabled' && next === 'x2apic')) return false;

    const bsp = Atomics.load(s, this.b + W_BASE_LO) & APIC_BASE_BSP;
    if (old === 'xapic' && next === 'x2apic') {
      // Update the ID and LDR before the mode, so routing never sees x2APIC with xAPIC IDs.
      const id = this.initialApicId;
      Atomics.store(s, this.b + W_ID, id | 0);
      Atomics.store(s, this.b + W_LDR, x2apicLogicalId(id) | 0);
    }
    Atomics.store(s, this.b + W_BASE_HI, Number(value >> 32n));
    Atomics.store(s, this.b + W_BASE_LO, (lo & ~APIC_BASE_BSP) | bsp);
    if (old !== 'disabled' && next === 'disabled') this.resetRegisters();
    if (old !== next) this.options.timerChanged?.(this.index);
    return true;
  }

  // --- Register file (owner) -----------------------------------------------

  /** Reads register `reg` (offset / 16); -1 if it does not exist in this mode. */
  private readReg(reg: number, x2: boolean): number {
    const s = this.s;
    const b = this.b;
    switch (reg) {
      case R_ID:
        return x2 ? this.apicId : ((this.apicId & 0xff) << 24) >>> 0;
      case R_VERSION:
        return LAPIC_VERSION;
      case R_TPR:
        return Atomics.load(s, b + W_TPR);
      case R_APR:
        return x2 ? -1 : this.apr();
      case R_PPR:
        return this.ppr();
      case R_EOI:
        return x2 ? -1 : 0; // write-only
      case R_RRD:
        return x2 ? -1 : 0; // remote read is not supported (and reads 0)
      case R_LDR:
        return Atomics.load(s, b + W_LDR) >>> 0;
      case R_DFR:
        return x2 ? -1 : Atomics.load(s, b + W_DFR) >>> 0;
      case R_SVR:
        return Atomics.load(s, b + W_SVR);
      case R_ESR:
        return s[b + W_ESR]!;
      case R_ICR_LO:
        return s[b + W_ICR_LO]! >>> 0;
      case R_ICR_HI:
        return x2 ? -1 : s[b + W_ICR_HI]! >>> 0;
      case R_TMICT:
        return this.timer.initialCount();
      case R_TMCCT:
        return this.timer.currentCount();
      case R_TDCR:
        return this.timer.divideConfig();
      default:
        break;
    }
    if (reg >= R_ISR0 && reg <= R_IRR7) {
      // ISR, TMR, IRR: eight words each, in that order, in both layouts.
      const word = reg & 7;
      if (reg < R_TMR0) return s[b + W_ISR + word]! >>> 0;
      return Atomics.load(s, b + (reg < R_IRR0 ? W_TMR : W_IRR) + word) >>> 0;
    }
    if (reg >= R_LVT0 && reg <= R_LVT5) return this.readLvt(reg - R_LVT0);
    return -1;
  }

  private readLvt(i: number): number {
    let v = Atomics.load(this.s, this.b + W_LVT + i);
    if ((i === Lvt.Lint0 || i === Lvt.Lint1) && Atomics.load(this.s, this.b + W_LINT_REMOTE) & (1 << (i - Lvt.Lint0))) {
      v |= LVT_REMOTE_IRR;
    }
    return v >>> 0;
  }

  /**
   * Writes register `reg`. In xAPIC mode writes to read-only registers are
   * ignored and only unimplemented ones are reported; in x2APIC mode either
   * is a #GP (SDM 11.12.1.2), as are nonzero writes to EOI and ESR.
   */
  private writeReg(reg: number, value: number, x2: boolean): number {
    const s = this.s;
    const b = this.b;
    switch (reg) {
      case R_ID:
        if (x2) return WR_READ_ONLY;
        this.writeXapicId(value >>> 24);
        return WR_OK;
      case R_VERSION:
      case R_PPR:
      case R_TMCCT:
        return WR_READ_ONLY;
      case R_APR:
      case R_RRD:
        return x2 ? WR_UNIMPLEMENTED : WR_READ_ONLY;
      case R_TPR:
        Atomics.store(s, b + W_TPR, value & 0xff);
        return WR_OK;
      case R_EOI:
        if (x2 && value !== 0) return WR_READ_ONLY;
        this.eoi();
        return WR_OK;
      case R_LDR:
        if (x2) return WR_READ_ONLY;
        Atomics.store(s, b + W_LDR, value & 0xff000000);
        return WR_OK;
      case R_DFR:
        if (x2) return WR_UNIMPLEMENTED;
        Atomics.store(s, b + W_DFR, value | 0x0fffffff);
        return WR_OK;
      case R_SVR:
        this.writeSvr(value);
        return WR_OK;
      case R_ESR:
        if (x2 && value !== 0) return WR_READ_ONLY;
        // The write latches the errors seen since the previous write (SDM 11.5.3).
        s[b + W_ESR] = Atomics.exchange(s, b + W_ESR_PENDING, 0);
        return WR_OK;
      case R_ICR_LO:
        // (x2APIC's 64-bit ICR is handled by writeMsr.)
        s[b + W_ICR_LO] = value & ICR_LO_WRITABLE;
        this.sendIcr(value, s[b + W_ICR_HI]! >>> 24, false);
        return WR_OK;
      case R_ICR_HI:
        if (x2) return WR_UNIMPLEMENTED;
        s[b + W_ICR_HI] = value & 0xff000000;
        return WR_OK;
      case R_TMICT:
        this.timer.writeInitialCount(value);
        this.options.timerChanged?.(this.index);
        return WR_OK;
      case R_TDCR:
        this.timer.writeDivide(value);
        this.options.timerChanged?.(this.index);
        return WR_OK;
      case R_SELF_IPI:
        if (!x2) return WR_UNIMPLEMENTED;
        // Fixed, edge, to self (SDM 11.12.11); an illegal vector is a receive error.
        this.acceptLocal(value & 0xff, false);
        return WR_OK;
      default:
        break;
    }
    if (reg >= R_ISR0 && reg <= R_IRR7) return WR_READ_ONLY;
    if (reg >= R_LVT0 && reg <= R_LVT5) {
      this.writeLvt(reg - R_LVT0, value);
      return WR_OK;
    }
    return WR_UNIMPLEMENTED;
  }

  private writeXapicId(id: number): void {
    Atomics.store(this.s, this.b + W_ID, id);
    // Routing takes an O(1) shortcut only while IDs are the initial ones.
    if (id !== (this.initialApicId & 0xff)) Atomics.store(this.s, H_IDS_CHANGED, 1);
  }

  /**
   * SVR write. Clearing the enable bit software-disables the APIC: every
   * LVT entry gets masked (and stays masked while disabled, SDM 11.4.7.2).
   */
  private writeSvr(value: number): void {
    const v = value & SVR_WRITABLE;
    Atomics.store(this.s, this.b + W_SVR, v);
    if (v & SVR_ENABLE) return;
    for (let i = 0; i < LVT_COUNT; i++) {
      const lvt = Atomics.load(this.s, this.b + W_LVT + i);
      if (!(lvt & LVT_MASKED)) this.writeLvt(i, lvt | LVT_MASKED);
    }
  }

  private writeLvt(i: number, value: number): void {
    let writable = LVT_WRITABLE[i]!;
    if (i === Lvt.Timer) writable |= (this.options.tsc ? 3 : 1) << LVT_TIMER_MODE_SHIFT;
    let v = value & writable;
    if (!this.swEnabled()) v |= LVT_MASKED;
    if (i === Lvt.Timer) {
      this.timer.writeLvt(v);
      this.options.timerChanged?.(this.index);
      return;
    }
    Atomics.store(this.s, this.b + W_LVT + i, v);
    // A level-triggered LINT input that is already asserted is delivered
    // once its entry allows it (it is a level, not an edge, that matters).
    if (i === Lvt.Lint0 && !(Atomics.load(this.s, this.b + W_LINT_REMOTE) & 1)) this.redeliverLevelLint(0, v);
  }

  /**
   * Sends the IPI described by an ICR write. The trigger-mode bit only
   * matters for INIT (level de-assert); every other IPI is edge (SDM 11.6.1).
   * Fixed/lowest-priority IPIs with vectors 0-15 are not sent and set
   * "send illegal vector". Reserved delivery modes (3, 7) send nothing.
   */
  private sendIcr(lo: number, dest: number, wide: boolean): void {
    const mode = (lo >>> 8) & 7;
    const vector = lo & 0xff;
    if (mode === 3 || mode === DeliveryMode.ExtINT) return;
    if ((mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority) && vector < 16) {
      this.raiseError(ESR_SEND_ILLEGAL_VECTOR);
      return;
    }
    const m = this.ipi;
    m.vector = vector;
    m.deliveryMode = mode as DeliveryMode;
    m.logical = (lo & ICR_LOGICAL) !== 0;
    m.dest = dest >>> 0;
    m.levelTriggered = mode === DeliveryMode.INIT && (lo & ICR_LEVEL) !== 0;
    m.assert = (lo & ICR_ASSERT) !== 0 || mode !== DeliveryMode.INIT;
    m.shorthand = ((lo >>> ICR_SHORTHAND_SHIFT) & 3) as Shorthand;
    m.x2apic = wide;
    const delay = this.options.testIpiDelayNs;
    if (delay) {
      const until = this.options.clock.nowNs() + delay;
      while (this.options.clock.nowNs() < until);
    }
    this.bus.deliver(m);
  }
}
