import type { AccessSize, BusDevice, DeviceHost } from './device.js';
import { ByteRing, type WakeOn } from '../sync/byte-ring.js';
import { Mutex } from '../sync/mutex.js';
import { defineLayout, f64, i32, loadState, mutex, required, saveState, type SavedState } from '../sync/state-layout.js';

/** Register offsets from the UART's base port (COM1 is 0x3f8). */
export const UartReg = {
  /** RBR on read, THR on write; DLL while LCR.DLAB is set. */
  Data: 0,
  /** IER; DLM while LCR.DLAB is set. */
  Ier: 1,
  /** IIR on read, FCR on write. */
  IirFcr: 2,
  Lcr: 3,
  Mcr: 4,
  Lsr: 5,
  Msr: 6,
  Scr: 7,
} as const;

/** Ports the UART decodes. */
export const UART_PORT_COUNT = 8;

export const UartIer = { RDI: 0x01, THRI: 0x02, RLSI: 0x04, MSI: 0x08 } as const;
export const UartIir = {
  NoInt: 0x01,
  Msi: 0x00,
  Thri: 0x02,
  Rdi: 0x04,
  Rlsi: 0x06,
  RxTimeout: 0x0c,
  FifoEnabled: 0xc0,
} as const;
export const UartFcr = { Enable: 0x01, ClearRx: 0x02, ClearTx: 0x04, DmaMode: 0x08, TriggerMask: 0xc0 } as const;
export const UartLcr = { Dlab: 0x80 } as const;
export const UartMcr = { DTR: 0x01, RTS: 0x02, OUT1: 0x04, OUT2: 0x08, LOOP: 0x10 } as const;
export const UartLsr = { DR: 0x01, OE: 0x02, PE: 0x04, FE: 0x08, BI: 0x10, THRE: 0x20, TEMT: 0x40 } as const;
export const UartMsr = {
  DCTS: 0x01,
  DDSR: 0x02,
  TERI: 0x04,
  DDCD: 0x08,
  CTS: 0x10,
  DSR: 0x20,
  RI: 0x40,
  DCD: 0x80,
} as const;

/** The shared state behind every thread's view of one UART; structured-cloneable. */
export interface Uart16550State {
  /** Register words (the first is the mutex) followed by the statistics. */
  readonly regs: SharedArrayBuffer;
  /** Guest -> host bytes. */
  readonly tx: SharedArrayBuffer;
  /** Host -> guest bytes. */
  readonly rx: SharedArrayBuffer;
}

export interface Uart16550AllocateOptions {
  /** TX ring size in bytes, a power of two (default 64 KiB). */
  txCapacity?: number;
  /** RX ring size in bytes, a power of two (default 4 KiB). */
  rxCapacity?: number;
}

export interface Uart16550Options {
  /** The GSI the interrupt output drives (4 for COM1). */
  irq: number;
}

export interface Uart16550Stats {
  /** Bytes the guest wrote to THR that reached the TX ring. */
  txBytes: number;
  /** Bytes that entered the receiver: from `receive` or looped back. */
  rxBytes: number;
  /** THR writes dropped because the TX ring was full. */
  txDrops: number;
  /** Bytes lost because the RX ring was full (each one sets LSR.OE). */
  rxOverruns: number;
}

/** The register state; all but `lock` only touched with the lock held. */
export const UART_LAYOUT = defineLayout('uart16550', 1, {
  lock: mutex(),
  ier: i32(),
  lcr: i32(),
  mcr: i32(),
  /** As last programmed, minus the self-clearing bits. */
  fcr: i32(),
  scr: i32(),
  divisor: i32(),
  /** LSR.OE, sticky until LSR is read. */
  overrun: i32(),
  /** The THRE interrupt latch: set by THR emptying, cleared by IIR read or THR write. */
  thrPending: i32(),
  /** MSR bits 0-3. */
  msrDelta: i32(),
  /** A THR write found or left the TX ring full: re-arm THRE once the host drains it. */
  txBlocked: i32(),
  /** What was last driven on the IRQ line, so every thread agrees. */
  irqLevel: i32(),
  // Statistics, as doubles so they do not wrap at 4 GiB.
  txBytes: f64(),
  rxBytes: f64(),
  txDrops: f64(),
  rxOverruns: f64(),
});
const { lock: LOCK, ier: IER, lcr: LCR, mcr: MCR, fcr: FCR, scr: SCR, divisor: DIVISOR, overrun: OVERRUN, thrPending: THR_PENDING, msrDelta: MSR_DELTA, txBlocked: TX_BLOCKED, irqLevel: IRQ_LEVEL } = UART_LAYOUT.at;
const { txBytes: TX_BYTES, rxBytes: RX_BYTES, txDrops: TX_DROPS, rxOverruns: RX_OVERRUNS } = UART_LAYOUT.at;
const WORDS = UART_LAYOUT.f64ByteOffset / 4;
const STATS_BYTE_OFFSET = UART_LAYOUT.f64ByteOffset;

const TRIGGER_LEVELS = [1, 4, 8, 14] as const;
/** Lines from an "always connected" host: CTS, DSR and DCD asserted, RI not. */
const HOST_MODEM_LINES = UartMsr.CTS | UartMsr.DSR | UartMsr.DCD;
/** The 1.8432 MHz crystal of a PC UART over the 16x oversampling. */
const BASE_BAUD = 115200;

/**
 * An 8250/16550A UART. Every thread that touches it builds its own view over
 * one shared state; each register access happens under the state's mutex, so
 * vCPUs may hit the same UART at once.
 *
 * The transmitter is instantaneous: a THR write hands the byte straight to the
 * TX ring, which stands for the wire rather than the 16-byte FIFO, so the TX
 * FIFO is always empty and THRE/TEMT only drop while the ring is full (the
 * back-pressure a polling guest waits on). The RX ring stands for the RX FIFO
 * in both FIFO and non-FIFO mode; it is simply deeper than a real one.
 *
 * The received-data interrupt is raised as soon as one byte is waiting; with
 * the FIFO enabled and fewer bytes than the programmed trigger level, IIR
 * reports it as a character timeout (0xCC), which a real chip would raise a
 * few character times later anyway.
 *
 * `host.irq.setLevel` is called with the UART's mutex held (so that the line
 * follows the order of the register accesses across threads); the irqchip
 * must never call back into the UART.
 */
export class Uart16550 implements BusDevice {
  readonly name = 'uart16550';
  private readonly words: Int32Array;
  private readonly counters: Float64Array;
  private readonly lock: Mutex;
  private readonly tx: ByteRing;
  private readonly rx: ByteRing;

  static allocate(options: Uart16550AllocateOptions = {}): Uart16550State {
    const regs = UART_LAYOUT.allocate();
    // The divisor latch is not reset by hardware; start at 115200 baud.
    new Int32Array(regs, 0, WORDS)[DIVISOR] = 1;
    return {
      regs,
      tx: ByteRing.allocate(options.txCapacity ?? 64 * 1024),
      rx: ByteRing.allocate(options.rxCapacity ?? 4 * 1024),
    };
  }

  /** The UART's state by name: registers and both rings (a snapshot of a quiesced VM). */
  static save(state: Uart16550State): Record<string, SavedState> {
    return { regs: saveState(UART_LAYOUT, state.regs), tx: ByteRing.save(state.tx), rx: ByteRing.save(state.rx) };
  }

  static load(state: Uart16550State, saved: Record<string, SavedState>): void {
    loadState(UART_LAYOUT, state.regs, required(saved, 'regs'));
    ByteRing.load(state.tx, required(saved, 'tx'));
    ByteRing.load(state.rx, required(saved, 'rx'));
  }

  constructor(
    state: Uart16550State,
    private readonly host: DeviceHost,
    private readonly options: Uart16550Options,
  ) {
    this.words = new Int32Array(state.regs, 0, WORDS);
    this.counters = new Float64Array(state.regs, STATS_BYTE_OFFSET, 4);
    this.lock = new Mutex(this.words, LOCK);
    this.tx = new ByteRing(state.tx);
    this.rx = new ByteRing(state.rx);
  }

  /** Wider accesses act as consecutive byte accesses, as on an 8-bit bus. */
  read(offset: number, size: AccessSize, _vcpu: number): number {
    return this.lock.with(() => {
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.readRegister(offset + i) << (8 * i);
      return value >>> 0;
    });
  }

  write(offset: number, size: AccessSize, value: number, _vcpu: number): void {
    this.lock.with(() => {
      for (let i = 0; i < size; i++) this.writeRegister(offset + i, (value >>> (8 * i)) & 0xff);
    });
  }

  /**
   * Host -> guest: queues bytes for RBR. Returns how many were accepted; the
   * rest are lost as an overrun (LSR.OE), as on a real line with no flow control.
   * Input is queued in loopback too (a chip would not hear the line), so that
   * keys typed while the guest probes its UART are not lost.
   */
  receive(bytes: Uint8Array): number {
    return this.lock.with(() => {
      let accepted = 0;
      while (accepted < bytes.length && this.rx.push(bytes[accepted]!)) accepted++;
      this.counters[RX_BYTES]! += accepted;
      if (accepted < bytes.length) {
        this.words[OVERRUN] = 1;
        this.counters[RX_OVERRUNS]! += bytes.length - accepted;
      }
      this.updateIrq();
      return accepted;
    });
  }

  /** Bytes `receive` would accept now; a host can hold input back instead of overrunning. */
  receiveSpace(): number {
    return this.rx.free();
  }

  /**
   * Guest -> host: everything transmitted since the last call. The TX ring has
   * one consumer, so only one thread (the one printing the output) may call this.
   */
  takeOutput(): Uint8Array {
    const out = this.tx.drain();
    this.lock.with(() => {
      // The lock orders this check after any THR write that saw the ring full
      // before the drain, so a guest waiting for the THRE interrupt gets it.
      if (this.words[TX_BLOCKED] !== 0 && this.tx.free() > 0) {
        this.words[TX_BLOCKED] = 0;
        this.words[THR_PENDING] = 1;
        this.updateIrq();
      }
    });
    return out;
  }

  /** Take this, then drain with `takeOutput`, then pass it to `waitForOutput`. */
  outputSnapshot(): number {
    return this.tx.snapshot();
  }

  /**
   * Resolves once the guest transmitted after `seen` was taken (with
   * `wakeOn` 'line': a whole line, see `ByteRing.waitForData`); false on
   * timeout.
   */
  waitForOutput(seen: number, timeoutMs = Infinity, wakeOn: WakeOn = 'byte'): Promise<boolean> {
    return this.tx.waitForData(seen, timeoutMs, wakeOn);
  }

  stats(): Uart16550Stats {
    return this.lock.with(() => ({
      txBytes: this.counters[TX_BYTES]!,
      rxBytes: this.counters[RX_BYTES]!,
      txDrops: this.counters[TX_DROPS]!,
      rxOverruns: this.counters[RX_OVERRUNS]!,
    }));
  }

  /** The divisor latch (DLM:DLL). */
  get divisor(): number {
    return this.lock.with(() => this.words[DIVISOR]!);
  }

  /** The programmed line speed; 0 while the divisor is 0. */
  get baud(): number {
    const divisor = this.divisor;
    return divisor === 0 ? 0 : BASE_BAUD / divisor;
  }

  /** Bytes in the RX FIFO at which a 16550A raises received-data (recorded, see the class comment). */
  get rxTriggerLevel(): number {
    return this.lock.with(() => this.triggerLevel());
  }

  private triggerLevel(): number {
    return TRIGGER_LEVELS[(this.words[FCR]! & UartFcr.TriggerMask) >> 6]!;
  }

  private get dlab(): boolean {
    return (this.words[LCR]! & UartLcr.Dlab) !== 0;
  }

  private get loopback(): boolean {
    return (this.words[MCR]! & UartMcr.LOOP) !== 0;
  }

  private readRegister(reg: number): number {
    const w = this.words;
    switch (reg) {
      case UartReg.Data:
        return this.dlab ? w[DIVISOR]! & 0xff : this.readRbr();
      case UartReg.Ier:
        return this.dlab ? (w[DIVISOR]! >> 8) & 0xff : w[IER]!;
      case UartReg.IirFcr:
        return this.readIir();
      case UartReg.Lcr:
        return w[LCR]!;
      case UartReg.Mcr:
        return w[MCR]!;
      case UartReg.Lsr: {
        const lsr = this.lsr();
        w[OVERRUN] = 0;
        this.updateIrq();
        return lsr;
      }
      case UartReg.Msr: {
        const msr = this.modemLines() | w[MSR_DELTA]!;
        w[MSR_DELTA] = 0;
        this.updateIrq();
        return msr;
      }
      case UartReg.Scr:
        return w[SCR]!;
      default:
        return 0xff; // past the UART: an undriven bus
    }
  }

  private writeRegister(reg: number, value: number): void {
    const w = this.words;
    switch (reg) {
      case UartReg.Data:
        if (this.dlab) w[DIVISOR] = (w[DIVISOR]! & 0xff00) | value;
        else this.writeThr(value);
        break;
      case UartReg.Ier:
        if (this.dlab) w[DIVISOR] = (w[DIVISOR]! & 0xff) | (value << 8);
        else this.writeIer(value);
        break;
      case UartReg.IirFcr:
        this.writeFcr(value);
        break;
      case UartReg.Lcr:
        w[LCR] = value;
        break;
      case UartReg.Mcr:
        this.writeMcr(value);
        break;
      case UartReg.Scr:
        w[SCR] = value;
        break;
      default:
        return; // LSR and MSR writes are factory-test only
    }
    this.updateIrq();
  }

  private readRbr(): number {
    const byte = this.rx.shift();
    this.updateIrq();
    return byte < 0 ? 0 : byte;
  }

  private readIir(): number {
    const iir = this.iir();
    if ((iir & 0x0f) === UartIir.Thri) {
      this.words[THR_PENDING] = 0;
      this.updateIrq();
    }
    return iir;
  }

  private writeThr(byte: number): void {
    const w = this.words;
    // Lower the line before re-arming, as a real THR write does, so an
    // edge-triggered input sees a fresh edge for every byte.
    w[THR_PENDING] = 0;
    this.updateIrq();
    if (this.loopback) {
      this.receiveByte(byte);
    } else if (this.tx.push(byte)) {
      this.counters[TX_BYTES]!++;
    } else {
      this.counters[TX_DROPS]!++;
    }
    if (this.thrEmpty()) w[THR_PENDING] = 1;
    else w[TX_BLOCKED] = 1;
  }

  private writeIer(value: number): void {
    const w = this.words;
    const changed = (w[IER]! ^ value) & 0x0f;
    w[IER] = value & 0x0f;
    // Enabling THRI while THR is empty raises the interrupt at once, even if an
    // IIR read had cleared it; Linux and Windows both rely on this.
    if (changed & UartIer.THRI) w[THR_PENDING] = value & UartIer.THRI && this.thrEmpty() ? 1 : 0;
  }

  private writeFcr(value: number): void {
    const w = this.words;
    let fcr = value;
    // Switching the FIFOs on or off empties them; with the FIFOs off the other
    // bits are not programmed.
    if ((fcr ^ w[FCR]!) & UartFcr.Enable) fcr |= UartFcr.ClearRx | UartFcr.ClearTx;
    if (fcr & UartFcr.ClearRx) this.rx.drain();
    if (fcr & UartFcr.ClearTx && this.thrEmpty()) w[THR_PENDING] = 1;
    w[FCR] = fcr & UartFcr.Enable ? fcr & (UartFcr.Enable | UartFcr.DmaMode | UartFcr.TriggerMask) : 0;
  }

  private writeMcr(value: number): void {
    const w = this.words;
    const before = this.modemLines();
    w[MCR] = value & 0x1f;
    const after = this.modemLines();
    const changed = before ^ after;
    // CTS/DSR/DCD sit 4 bits above their delta bits; RI only reports its trailing edge.
    w[MSR_DELTA] = w[MSR_DELTA]! | ((changed & HOST_MODEM_LINES) >> 4) | ((before & ~after & UartMsr.RI) >> 4);
  }

  private receiveByte(byte: number): void {
    if (this.rx.push(byte)) {
      this.counters[RX_BYTES]!++;
    } else {
      this.words[OVERRUN] = 1;
      this.counters[RX_OVERRUNS]!++;
    }
  }

  /** The transmitter can take a byte: always in loopback, else while the TX ring has room. */
  private thrEmpty(): boolean {
    return this.loopback || this.tx.free() > 0;
  }

  private lsr(): number {
    let lsr = this.thrEmpty() ? UartLsr.THRE | UartLsr.TEMT : 0;
    if (this.rx.size() > 0) lsr |= UartLsr.DR;
    if (this.words[OVERRUN] !== 0) lsr |= UartLsr.OE;
    return lsr;
  }

  /** MSR bits 4-7: the host's lines, or in loopback the MCR outputs wired back. */
  private modemLines(): number {
    const mcr = this.words[MCR]!;
    if (!(mcr & UartMcr.LOOP)) return HOST_MODEM_LINES;
    return (
      (mcr & UartMcr.RTS ? UartMsr.CTS : 0) |
      (mcr & UartMcr.DTR ? UartMsr.DSR : 0) |
      (mcr & UartMcr.OUT1 ? UartMsr.RI : 0) |
      (mcr & UartMcr.OUT2 ? UartMsr.DCD : 0)
    );
  }

  private iir(): number {
    const w = this.words;
    const ier = w[IER]!;
    const fifo = w[FCR]! & UartFcr.Enable ? UartIir.FifoEnabled : 0;
    const waiting = this.rx.size();
    let id: number = UartIir.NoInt;
    if (ier & UartIer.RLSI && w[OVERRUN] !== 0) {
      id = UartIir.Rlsi;
    } else if (ier & UartIer.RDI && waiting > 0) {
      id = fifo && waiting < this.triggerLevel() ? UartIir.RxTimeout : UartIir.Rdi;
    } else if (ier & UartIer.THRI && w[THR_PENDING] !== 0) {
      id = UartIir.Thri;
    } else if (ier & UartIer.MSI && w[MSR_DELTA] !== 0) {
      id = UartIir.Msi;
    }
    return id | fifo;
  }

  /**
   * On a PC the UART's INTR pin reaches the interrupt controller only through
   * a buffer enabled by MCR.OUT2, which is why Linux's 8250 driver sets OUT2;
   * a guest that leaves it clear polls. In loopback a real board loses the
   * IRQ too (OUT2 feeds DCD instead); we keep gating by the MCR bit alone, so
   * a loopback self-test may use interrupts. Called after every state change.
   */
  private updateIrq(): void {
    const w = this.words;
    const level = (this.iir() & UartIir.NoInt) === 0 && (w[MCR]! & UartMcr.OUT2) !== 0 ? 1 : 0;
    if (w[IRQ_LEVEL] === level) return;
    w[IRQ_LEVEL] = level;
    this.host.irq.setLevel(this.options.irq, level === 1);
  }
}
