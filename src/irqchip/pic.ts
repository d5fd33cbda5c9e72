/**
 * The PC's pair of 8259A programmable interrupt controllers (Intel 8259A
 * datasheet, order no. 231468) plus the edge/level control registers of the
 * PIIX/ICH south bridges (ELCR, ports 0x4D0/0x4D1).
 *
 * PC wiring, fixed whatever ICW3 says: the slave's INT output drives the
 * master's IR2; the master's INT output is the CPU's INTR, which on an APIC
 * system reaches the BSP's local APIC LINT0 (virtual-wire mode).
 *
 * State lives in a SharedArrayBuffer so each thread can hold its own
 * `DualPic` view; every change happens under the mutex in the buffer.
 */
import { defineLayout, i32, loadState, mutex, repeat, saveState, type SavedState } from '../sync/state-layout.js';
import type { AccessSize, BusDevice } from '../devices/device.js';
import { Mutex } from '../sync/mutex.js';

/** I/O port bases; each of the three devices decodes 2 ports. */
export const PIC_MASTER_BASE = 0x20;
export const PIC_SLAVE_BASE = 0xa0;
export const ELCR_BASE = 0x4d0;
export const PIC_PORT_COUNT = 2;

/** The master input the slave is cascaded on. */
export const PIC_CASCADE_IRQ = 2;
export const PIC_IRQS = 16;

/** Command-port (offset 0) write encodings. */
export const PicCmd = {
  /** ICW1: bit 4 set. Bit 0 IC4 (ICW4 follows), bit 1 SNGL, bit 3 LTIM (ignored: ELCR decides). */
  Icw1: 0x10,
  Icw1Icw4: 0x01,
  Icw1Single: 0x02,
  Icw1Ltim: 0x08,
  /** OCW3: bit 3 set, bit 4 clear. */
  Ocw3: 0x08,
  Ocw3ReadIrr: 0x0a,
  Ocw3ReadIsr: 0x0b,
  Ocw3Poll: 0x0c,
  Ocw3SetSpecialMask: 0x68,
  Ocw3ClearSpecialMask: 0x48,
  /** OCW2 (bits 4:3 clear): R SL EOI in bits 7:5, level in bits 2:0. */
  NonSpecificEoi: 0x20,
  SpecificEoi: 0x60,
  RotateOnNonSpecificEoi: 0xa0,
  RotateOnSpecificEoi: 0xe0,
  SetPriority: 0xc0,
  SetRotateInAutoEoi: 0x80,
  ClearRotateInAutoEoi: 0x00,
} as const;

/** ICW4 bits. */
export const PicIcw4 = { Mode8086: 0x01, AutoEoi: 0x02, SpecialFullyNested: 0x10 } as const;

/** ELCR bits that can be set: IRQ 0, 1, 2 (master) and 8, 13 (slave) are always edge. */
export const ELCR_MASTER_MASK = 0xf8;
export const ELCR_SLAVE_MASK = 0xde;

export interface DualPicOptions {
  /**
   * Called whenever the master's INT output changes, with the mutex held,
   * on whichever thread caused the change. See `DualPic` for the rules.
   */
  onOutput(high: boolean): void;
}

// ---- Shared layout ----

export const PIC_LAYOUT = defineLayout('dual-8259', 1, {
  lock: mutex(),
  output: i32(),
  /** Master, then slave. */
  chip: repeat(2, {
    irr: i32(),
    imr: i32(),
    isr: i32(),
    /** Raw input levels, for edge detection and level-mode IRR. */
    lines: i32(),
    elcr: i32(),
    /** IR that currently has the highest priority (0 after reset: IR0 highest, IR7 lowest). */
    priorityBase: i32(),
    vectorBase: i32(),
    readIsr: i32(),
    poll: i32(),
    specialMask: i32(),
    /** 0 = operational (data port writes are OCW1), 1..3 = expecting ICW2..ICW4. */
    initState: i32(),
    needIcw4: i32(),
    single: i32(),
    autoEoi: i32(),
    rotateAutoEoi: i32(),
    sfnm: i32(),
  }),
});
const { lock: W_LOCK, output: W_OUTPUT } = PIC_LAYOUT.at;
const { base: W_CHIPS, stride: CHIP_WORDS } = PIC_LAYOUT.at.chip;
// Per-chip fields (Int32 words from the chip's base).
const {
  irr: F_IRR, imr: F_IMR, isr: F_ISR, lines: F_LINES, elcr: F_ELCR, priorityBase: F_PRIORITY_BASE, vectorBase: F_VECTOR_BASE, readIsr: F_READ_ISR,
  poll: F_POLL, specialMask: F_SPECIAL_MASK, initState: F_INIT_STATE, needIcw4: F_NEED_ICW4, single: F_SINGLE, autoEoi: F_AUTO_EOI,
  rotateAutoEoi: F_ROTATE_AUTO_EOI, sfnm: F_SFNM,
} = PIC_LAYOUT.at.chip.fields;

const WORDS = PIC_LAYOUT.byteLength / 4;

/** Raw state of one chip, for tests and diagnostics. */
export interface PicChipState {
  irr: number;
  imr: number;
  isr: number;
  elcr: number;
  lines: number;
  vectorBase: number;
  /** The IR with the highest priority (rotation moves it). */
  highestPriorityIrq: number;
  autoEoi: boolean;
  specialMask: boolean;
  /** Still inside the ICW sequence. */
  initialising: boolean;
}

/**
 * One 8259A over its slice of the shared words. Plain accessors: callers hold
 * the mutex, whose atomic acquire/release orders these accesses.
 */
class Chip {
  constructor(
    private readonly w: Int32Array,
    private readonly base: number,
    readonly isMaster: boolean,
    readonly elcrMask: number,
  ) {}

  private get(f: number): number {
    return this.w[this.base + f]!;
  }
  private set(f: number, v: number): void {
    this.w[this.base + f] = v;
  }

  get irr(): number { return this.get(F_IRR); }
  set irr(v: number) { this.set(F_IRR, v & 0xff); }
  get imr(): number { return this.get(F_IMR); }
  set imr(v: number) { this.set(F_IMR, v & 0xff); }
  get isr(): number { return this.get(F_ISR); }
  set isr(v: number) { this.set(F_ISR, v & 0xff); }
  get lines(): number { return this.get(F_LINES); }
  set lines(v: number) { this.set(F_LINES, v & 0xff); }
  get elcr(): number { return this.get(F_ELCR); }
  set elcr(v: number) { this.set(F_ELCR, v & this.elcrMask); }
  get priorityBase(): number { return this.get(F_PRIORITY_BASE); }
  set priorityBase(v: number) { this.set(F_PRIORITY_BASE, v & 7); }
  get vectorBase(): number { return this.get(F_VECTOR_BASE); }
  set vectorBase(v: number) { this.set(F_VECTOR_BASE, v & 0xf8); }
  get readIsr(): boolean { return this.get(F_READ_ISR) !== 0; }
  set readIsr(v: boolean) { this.set(F_READ_ISR, +v); }
  get poll(): boolean { return this.get(F_POLL) !== 0; }
  set poll(v: boolean) { this.set(F_POLL, +v); }
  get specialMask(): boolean { return this.get(F_SPECIAL_MASK) !== 0; }
  set specialMask(v: boolean) { this.set(F_SPECIAL_MASK, +v); }
  get initState(): number { return this.get(F_INIT_STATE); }
  set initState(v: number) { this.set(F_INIT_STATE, v); }
  get needIcw4(): boolean { return this.get(F_NEED_ICW4) !== 0; }
  set needIcw4(v: boolean) { this.set(F_NEED_ICW4, +v); }
  get single(): boolean { return this.get(F_SINGLE) !== 0; }
  set single(v: boolean) { this.set(F_SINGLE, +v); }
  get autoEoi(): boolean { return this.get(F_AUTO_EOI) !== 0; }
  set autoEoi(v: boolean) { this.set(F_AUTO_EOI, +v); }
  get rotateInAutoEoi(): boolean { return this.get(F_ROTATE_AUTO_EOI) !== 0; }
  set rotateInAutoEoi(v: boolean) { this.set(F_ROTATE_AUTO_EOI, +v); }
  get specialFullyNested(): boolean { return this.get(F_SFNM) !== 0; }
  set specialFullyNested(v: boolean) { this.set(F_SFNM, +v); }

  /** Power-on state. The 8259A has none defined; this is "not yet programmed, all masked". */
  powerOn(): void {
    for (let f = 0; f < CHIP_WORDS; f++) this.set(f, 0);
    this.imr = 0xff;
  }

  /** 0 = highest priority .. 7 = lowest, under the current rotation. */
  rank(irq: number): number {
    return (irq - this.priorityBase) & 7;
  }

  /** The highest-priority IR whose bit is set in `mask`, or -1. */
  highest(mask: number): number {
    const base = this.priorityBase;
    for (let r = 0; r < 8; r++) {
      const irq = (base + r) & 7;
      if (mask & (1 << irq)) return irq;
    }
    return -1;
  }

  /**
   * The IR this chip raises INT for, or -1: the highest-priority unmasked
   * request, if it outranks everything in service (fully nested mode).
   * In special mask mode, in-service levels that are masked stop inhibiting
   * lower ones (datasheet, "Special Mask Mode"). In special fully nested
   * mode the master lets its cascade IR interrupt while that IR is in
   * service, so a higher-priority slave request can nest.
   */
  pending(): number {
    const irq = this.highest(this.irr & ~this.imr);
    if (irq < 0) return -1;
    const inhibiting = this.specialMask ? this.isr & ~this.imr : this.isr;
    const current = this.highest(inhibiting);
    if (current < 0 || this.rank(irq) < this.rank(current)) return irq;
    if (this.isMaster && this.specialFullyNested && irq === PIC_CASCADE_IRQ && current === PIC_CASCADE_IRQ) return irq;
    return -1;
  }

  /** Drives input `irq`: edge inputs latch IRR on a rising edge, level inputs' IRR follows the line. */
  setInput(irq: number, high: boolean): void {
    const bit = 1 << irq;
    const was = (this.lines & bit) !== 0;
    this.lines = high ? this.lines | bit : this.lines & ~bit;
    if (this.elcr & bit) this.irr = high ? this.irr | bit : this.irr & ~bit;
    else if (high && !was) this.irr |= bit;
  }

  /**
   * The INTA (or poll) side of accepting `irq`: into ISR unless in auto-EOI
   * mode, and an edge request's IRR latch is consumed. A level request stays
   * in IRR while its line is high; ISR keeps it from re-interrupting.
   */
  accept(irq: number): void {
    const bit = 1 << irq;
    if (this.autoEoi) {
      if (this.rotateInAutoEoi) this.priorityBase = irq + 1;
    } else {
      this.isr |= bit;
    }
    if (!(this.elcr & bit)) this.irr &= ~bit;
  }

  /**
   * ICW1 (datasheet, "Initialization Command Words"): the edge-sense
   * circuit is reset, so an input already high must go low and high again;
   * IMR cleared; IR7 lowest priority; special mask mode off; status read
   * selects IRR; ICW4 functions cleared. ISR is cleared too, as in every
   * PC emulator, since nothing can be in service on a freshly set-up chip.
   */
  icw1(value: number): void {
    this.irr = this.lines & this.elcr;
    this.imr = 0;
    this.isr = 0;
    this.priorityBase = 0;
    this.specialMask = false;
    this.readIsr = false;
    this.poll = false;
    this.autoEoi = false;
    this.rotateInAutoEoi = false;
    this.specialFullyNested = false;
    this.needIcw4 = (value & PicCmd.Icw1Icw4) !== 0;
    this.single = (value & PicCmd.Icw1Single) !== 0;
    this.initState = 1;
  }

  /** Data-port write: OCW1 when operational, otherwise the next ICW. */
  writeData(value: number): void {
    switch (this.initState) {
      case 0:
        this.imr = value;
        return;
      case 1: // ICW2: T7-T3 of the vector.
        this.vectorBase = value;
        this.initState = this.single ? (this.needIcw4 ? 3 : 0) : 2;
        return;
      case 2: // ICW3: the cascade wiring is fixed on a PC.
        this.initState = this.needIcw4 ? 3 : 0;
        return;
      default: // ICW4. uPM (bit 0) is not modelled: vectors are always 8086-style.
        this.autoEoi = (value & PicIcw4.AutoEoi) !== 0;
        this.specialFullyNested = (value & PicIcw4.SpecialFullyNested) !== 0;
        this.initState = 0;
    }
  }

  /** OCW2: EOI, rotation and priority commands. */
  ocw2(value: number): void {
    const level = value & 7;
    switch (value & 0xe0) {
      case PicCmd.NonSpecificEoi:
      case PicCmd.RotateOnNonSpecificEoi: {
        const irq = this.highest(this.isr);
        if (irq < 0) return;
        this.isr &= ~(1 << irq);
        if (value & 0x80) this.priorityBase = irq + 1;
        return;
      }
      case PicCmd.SpecificEoi:
        this.isr &= ~(1 << level);
        return;
      case PicCmd.RotateOnSpecificEoi:
        this.isr &= ~(1 << level);
        this.priorityBase = level + 1;
        return;
      case PicCmd.SetPriority: // `level` becomes the lowest priority.
        this.priorityBase = level + 1;
        return;
      case PicCmd.SetRotateInAutoEoi:
        this.rotateInAutoEoi = true;
        return;
      case PicCmd.ClearRotateInAutoEoi:
        this.rotateInAutoEoi = false;
        return;
      default: // 010: no operation.
        return;
    }
  }

  /** OCW3: register read select, poll, special mask mode. */
  ocw3(value: number): void {
    if (value & 0x04) this.poll = true;
    if (value & 0x02) this.readIsr = (value & 0x01) !== 0;
    if (value & 0x40) this.specialMask = (value & 0x20) !== 0;
  }

  snapshot(): PicChipState {
    return {
      irr: this.irr,
      imr: this.imr,
      isr: this.isr,
      elcr: this.elcr,
      lines: this.lines,
      vectorBase: this.vectorBase,
      highestPriorityIrq: this.priorityBase,
      autoEoi: this.autoEoi,
      specialMask: this.specialMask,
      initialising: this.initState !== 0,
    };
  }
}

/**
 * One thread's view of the shared dual 8259A + ELCR.
 *
 * Attach the three BusDevices at their PC port ranges, 2 ports each, with
 * offsets relative to the base: `master` at PIC_MASTER_BASE (0x20),
 * `slave` at PIC_SLAVE_BASE (0xA0), `elcr` at ELCR_BASE (0x4D0). Offset 0
 * is the command port (writes ICW1/OCW2/OCW3, reads IRR/ISR/poll), offset 1
 * the data port (writes ICW2-4/OCW1, reads IMR). 2- and 4-byte accesses are
 * split into byte accesses at consecutive ports, as the ISA bus does; bytes
 * beyond the 2 decoded ports read 0xFF and are not written.
 *
 * Output: `onOutput(high)` reports each transition of the master's INT
 * exactly once, in order. It runs with the PIC mutex held (that is what
 * keeps transitions from concurrent threads in order), so it must be short,
 * must not call back into the PIC, and must not take a lock that is held by
 * anyone calling into the PIC (setLevel, acknowledge, port I/O). Storing the
 * level in shared memory and kicking the BSP is the intended use.
 *
 * Power-on state (the datasheet leaves it undefined until ICW1): all inputs
 * masked, vector base 0, ELCR all edge, nothing pending or in service,
 * status read selects IRR.
 */
export class DualPic {
  readonly master: BusDevice;
  readonly slave: BusDevice;
  readonly elcr: BusDevice;

  private readonly words: Int32Array;
  private readonly mutex: Mutex;
  private readonly chips: readonly [Chip, Chip];
  private readonly onOutput: (high: boolean) => void;

  /** A buffer in the power-on state. */
  static save(buffer: SharedArrayBuffer): SavedState {
    return saveState(PIC_LAYOUT, buffer);
  }

  static load(buffer: SharedArrayBuffer, saved: SavedState): void {
    loadState(PIC_LAYOUT, buffer, saved);
  }

  static allocate(): SharedArrayBuffer {
    const buffer = PIC_LAYOUT.allocate();
    for (const chip of chipViews(new Int32Array(buffer))) chip.powerOn();
    return buffer;
  }

  constructor(buffer: SharedArrayBuffer, options: DualPicOptions) {
    if (buffer.byteLength < WORDS * 4) throw new RangeError('PIC buffer too small; use DualPic.allocate()');
    this.words = new Int32Array(buffer, 0, WORDS);
    this.mutex = new Mutex(this.words, W_LOCK);
    this.chips = chipViews(this.words);
    this.onOutput = options.onOutput;
    this.master = this.portDevice('pic-master', (off, v) => this.chipIo(0, off, v));
    this.slave = this.portDevice('pic-slave', (off, v) => this.chipIo(1, off, v));
    this.elcr = this.portDevice('elcr', (off, v) => this.elcrIo(off, v));
  }

  /**
   * Drives ISA IRQ `irq` (0-15, not 2: that input is the cascade). Edge
   * inputs latch a request on the rising edge; ELCR-level inputs request
   * while high.
   */
  setLevel(irq: number, high: boolean): void {
    if (!Number.isInteger(irq) || irq < 0 || irq >= PIC_IRQS) {
      throw new RangeError(`PIC IRQ ${irq} does not exist (0..15)`);
    }
    if (irq === PIC_CASCADE_IRQ) {
      throw new RangeError('PIC IRQ 2 is the cascade input from the slave; no device drives it');
    }
    this.mutex.with(() => {
      this.chips[irq >> 3].setInput(irq & 7, high);
      this.update();
    });
  }

  /**
   * The INTA cycle: returns the vector of the highest-priority request and
   * moves it from IRR to ISR (not in auto-EOI mode). A master IR2 request
   * cascades to the slave. If the request vanished before the INTA (a level
   * line dropped, or nothing was pending), the chip answers with its IR7
   * vector without setting ISR: vector base + 7 of the master, or of the
   * slave when the master had latched IR2 but the slave has nothing (the
   * classic spurious IRQ7 / IRQ15).
   */
  acknowledge(): number {
    return this.mutex.with(() => {
      const [master, slave] = this.chips;
      const irq = master.pending();
      let vector: number;
      if (irq < 0) {
        vector = master.vectorBase + 7;
      } else {
        if (irq === PIC_CASCADE_IRQ) {
          const slaveIrq = slave.pending();
          if (slaveIrq >= 0) {
            slave.accept(slaveIrq);
            vector = slave.vectorBase + slaveIrq;
          } else {
            vector = slave.vectorBase + 7;
          }
        } else {
          vector = master.vectorBase + irq;
        }
        master.accept(irq);
      }
      this.update();
      return vector;
    });
  }

  /** The master's INT output: an interrupt is waiting for INTA. */
  hasInterrupt(): boolean {
    return Atomics.load(this.words, W_OUTPUT) !== 0;
  }

  /** Back to the power-on state (input levels, being wires, are kept). */
  reset(): void {
    this.mutex.with(() => {
      for (const chip of this.chips) {
        const lines = chip.lines;
        chip.powerOn();
        chip.lines = lines;
      }
      this.update();
    });
  }

  /** A consistent snapshot of both chips, for tests and diagnostics. */
  state(): { master: PicChipState; slave: PicChipState; output: boolean } {
    return this.mutex.with(() => ({
      master: this.chips[0].snapshot(),
      slave: this.chips[1].snapshot(),
      output: this.words[W_OUTPUT] !== 0,
    }));
  }

  // ---- Internals ----


  /**
   * Propagates the slave's INT to master IR2 and the master's INT to the
   * output. IR2 is an ordinary edge input of the master (its ELCR bit is
   * fixed 0): it latches when the slave's INT rises, which is what lets a
   * slave request that vanishes after that produce the spurious IRQ15.
   */
  private update(): void {
    const [master, slave] = this.chips;
    master.setInput(PIC_CASCADE_IRQ, slave.pending() >= 0);
    const out = master.pending() >= 0;
    if (out !== (this.words[W_OUTPUT] !== 0)) {
      Atomics.store(this.words, W_OUTPUT, out ? 1 : 0);
      this.onOutput(out);
    }
  }

  /** One byte at a chip's port: `value` undefined for a read. */
  private chipIo(index: 0 | 1, offset: number, value: number | undefined): number {
    return this.mutex.with(() => {
      const chip = this.chips[index];
      if (value === undefined) {
        // After a poll command the next read (of either port) is the poll
        // word, and it acknowledges like an INTA: datasheet, "The Poll Command".
        if (chip.poll) {
          chip.poll = false;
          const irq = chip.pending();
          if (irq < 0) return 0;
          chip.accept(irq);
          this.update();
          return 0x80 | irq;
        }
        if (offset === 1) return chip.imr;
        return chip.readIsr ? chip.isr : chip.irr;
      }
      if (offset === 1) chip.writeData(value);
      else if (value & PicCmd.Icw1) chip.icw1(value);
      else if (value & PicCmd.Ocw3) chip.ocw3(value);
      else chip.ocw2(value);
      this.update();
      return 0;
    });
  }

  private elcrIo(offset: number, value: number | undefined): number {
    return this.mutex.with(() => {
      const chip = this.chips[offset & 1];
      if (value === undefined) return chip.elcr;
      chip.elcr = value;
      // Inputs switched to level now request exactly while their line is high.
      chip.irr = (chip.irr & ~chip.elcr) | (chip.lines & chip.elcr);
      this.update();
      return 0;
    });
  }

  /** A 2-port BusDevice whose wider accesses are split into bytes. */
  private portDevice(name: string, io: (offset: number, value: number | undefined) => number): BusDevice {
    return {
      name,
      read(offset: number, size: AccessSize, _vcpu: number): number {
        let result = 0;
        for (let i = 0; i < size; i++) {
          const port = offset + i;
          const byte = port >= 0 && port < PIC_PORT_COUNT ? io(port, undefined) : 0xff;
          result |= (byte & 0xff) << (8 * i);
        }
        return result >>> 0;
      },
      write(offset: number, size: AccessSize, value: number, _vcpu: number): void {
        for (let i = 0; i < size; i++) {
          const port = offset + i;
          if (port >= 0 && port < PIC_PORT_COUNT) io(port, (value >>> (8 * i)) & 0xff);
        }
      },
    };
  }
}

function chipViews(w: Int32Array): [Chip, Chip] {
  return [
    new Chip(w, W_CHIPS, true, ELCR_MASTER_MASK),
    new Chip(w, W_CHIPS + CHIP_WORDS, false, ELCR_SLAVE_MASK),
  ];
}
