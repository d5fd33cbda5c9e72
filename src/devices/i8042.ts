import type { AccessSize, BusDevice, DeviceHost } from './device.js';
import { Mutex } from '../sync/mutex.js';
import { defineLayout, i32, loadState, mutex, required, saveState, type SavedState } from '../sync/state-layout.js';

/**
 * An 8042-compatible PS/2 keyboard controller with no keyboard and no mouse
 * behind it: ports 0x60 (data) and 0x64 (status / command).
 *
 * What it is for: resetting the machine (command 0xFE, or an output-port
 * write with bit 0 clear: Linux's `reboot=k` and its fallback after ACPI
 * and port 0xCF9) and letting Linux's i8042 driver find a controller with
 * nothing attached, quickly. Linux probes it only when ACPI/PNP describes
 * a PS/2 controller (PNP0303/PNP0F13) or it expects one anyway: no ACPI, an
 * FADT older than revision 2, or IAPC_BOOT_ARCH with the 8042 flag set
 * (arch/x86/kernel/acpi/boot.c); otherwise it prints "PNP: No PS/2
 * controller found" and leaves these ports alone, and the reset command
 * is all that is used. When it does probe (drivers/input/serio/i8042.c):
 * - it flushes the output buffer, then sends 0xAA and wants 0x55;
 * - it reads and writes the command byte (0x20 / 0x60);
 * - it tests the AUX port with 0xD3 (AUX loopback: the byte must come
 *   back with the AUX-data status bit), then 0xA9, 0xA7/0xA8, and checks
 *   that AUX loop data raises IRQ 12: all answered here, so no step waits
 *   for its 500 ms (I8042_CTL_TIMEOUT) or 250 ms (AUX IRQ test) timeout;
 * - atkbd and psmouse then talk to the devices through port 0x60 and 0xD4.
 *   With nothing attached, every byte sent to a device is answered at once
 *   with 0xFE (resend / NAK) and the status register's timeout bit, as a
 *   PS/2 controller does when a device never clocks the byte in. libps2
 *   takes 0xFE as a NAK (and i8042 passes the timeout on as SERIO_TIMEOUT),
 *   so each probe command fails immediately; staying silent instead would
 *   cost a 200 ms+ wait per command (libps2's ACK timeout).
 * Pass `i8042.noaux` or `i8042.nokbd` to skip parts of this entirely.
 *
 * IRQ 1 is high while the output buffer holds keyboard-side data and the
 * command byte's KBD interrupt bit is set; IRQ 12 likewise for AUX data.
 * Controller replies count as keyboard-side data (as on an 8042, whose
 * single output buffer feeds IRQ 1 unless the byte came from AUX). The
 * output buffer is a short FIFO so that back-to-back replies are not lost.
 *
 * `host.irq.setLevel` is called with the mutex held; `requestStop` is
 * called after it is released.
 */

export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
/** Offsets of the two ports from 0x60, as `I8042.read`/`write` take them. */
export const I8042_PORT_OFFSET = { Data: 0, Command: 4 } as const;
export const I8042_KBD_IRQ = 1;
export const I8042_AUX_IRQ = 12;

/** Status register (port 0x64 read). */
export const I8042Status = {
  OBF: 0x01,
  /** Input buffer full: never set, commands are taken at once. */
  IBF: 0x02,
  /** System flag: the command byte's bit 2 (set by a passed self-test). */
  SYS: 0x04,
  /** The last write went to port 0x64 (a command) rather than 0x60. */
  CMD: 0x08,
  /** Keyboard not inhibited (no keylock switch). */
  UNLOCKED: 0x10,
  /** The byte in the output buffer came from the AUX port. */
  AUXDATA: 0x20,
  /** A device did not answer. */
  TIMEOUT: 0x40,
  PARITY: 0x80,
} as const;

/** Command byte (controller RAM byte 0). */
export const I8042Ctr = {
  KBDINT: 0x01,
  AUXINT: 0x02,
  SYS: 0x04,
  IGNKEYLOCK: 0x08,
  KBDDIS: 0x10,
  AUXDIS: 0x20,
  XLATE: 0x40,
} as const;

/** Controller commands (port 0x64 writes). */
export const I8042Cmd = {
  ReadCtr: 0x20,
  WriteCtr: 0x60,
  AuxDisable: 0xa7,
  AuxEnable: 0xa8,
  AuxTest: 0xa9,
  SelfTest: 0xaa,
  KbdTest: 0xab,
  KbdDisable: 0xad,
  KbdEnable: 0xae,
  ReadInput: 0xc0,
  ReadOutput: 0xd0,
  WriteOutput: 0xd1,
  KbdLoop: 0xd2,
  AuxLoop: 0xd3,
  AuxSend: 0xd4,
  A20Disable: 0xdd,
  A20Enable: 0xdf,
  ReadTestInputs: 0xe0,
  /** 0xF0-0xFF pulse output-port bits 0-3 low for each clear bit of the low nibble; 0xFE pulses reset. */
  PulseBase: 0xf0,
  Reset: 0xfe,
} as const;

/** Output port bits (0xD0 / 0xD1). */
export const I8042Output = { ResetDeasserted: 0x01, A20: 0x02, AuxObf: 0x20, KbdObf: 0x10 } as const;

export const I8042_SELF_TEST_OK = 0x55;
export const I8042_INTERFACE_TEST_OK = 0x00;
/** What a device "answers" when there is no device: resend. */
export const PS2_NO_DEVICE_REPLY = 0xfe;

/** The shared state behind every thread's view; structured-cloneable. */
export interface I8042State {
  readonly regs: SharedArrayBuffer;
}

export interface I8042Options {
  /** Line for keyboard-side data (ISA IRQ 1). */
  kbdIrq: number;
  /** Line for AUX data (ISA IRQ 12). */
  auxIrq: number;
}

export interface I8042Stats {
  /** Reset requests made (0xFE-style pulses or output-port writes with bit 0 clear). */
  resets: number;
  /** Bytes sent to the keyboard or AUX device, each answered with 0xFE and a timeout. */
  deviceBytes: number;
}

// Int32 words. All but LOCK are only touched with LOCK held.
const Q_SIZE = 16;
export const I8042_LAYOUT = defineLayout('i8042', 1, {
  lock: mutex(),
  ctr: i32(),
  output: i32(),
  /** A command waiting for its data byte, or 0. */
  pending: i32(),
  /** The last write went to port 0x64. */
  lastCmd: i32(),
  timeout: i32(),
  kbdLevel: i32(),
  auxLevel: i32(),
  resets: i32(),
  deviceBytes: i32(),
  qHead: i32(),
  qCount: i32(),
  /** Entries: byte | AUX_FLAG. */
  qData: i32(Q_SIZE),
});
const {
  lock: LOCK, ctr: CTR, output: OUTPUT, pending: PENDING, lastCmd: LAST_CMD, timeout: TIMEOUT, kbdLevel: KBD_LEVEL, auxLevel: AUX_LEVEL,
  resets: RESETS, deviceBytes: DEVICE_BYTES, qHead: Q_HEAD, qCount: Q_COUNT, qData: Q_DATA,
} = I8042_LAYOUT.at;
const WORDS = I8042_LAYOUT.byteLength / 4;
const AUX_FLAG = 0x100;

/**
 * Command byte at power-up: interrupts off and the translation bit set, the
 * ports enabled, SYS clear (no self-test has run: there is no BIOS POST).
 */
const RESET_CTR = I8042Ctr.XLATE;
/** Output port at power-up: reset deasserted, A20 enabled (we have no A20 gate). */
const RESET_OUTPUT = I8042Output.ResetDeasserted | I8042Output.A20;

/**
 * The controller; every thread builds its own view over one `I8042State`,
 * and every access runs under its mutex.
 */
export class I8042 implements BusDevice {
  readonly name = 'i8042';
  /** Port 0x60 alone (attach with length 1). */
  readonly dataPort: BusDevice;
  /** Port 0x64 alone (attach with length 1). */
  readonly commandPort: BusDevice;
  private readonly words: Int32Array;
  private readonly lock: Mutex;

  static allocate(): I8042State {
    const regs = I8042_LAYOUT.allocate();
    const w = new Int32Array(regs);
    w[CTR] = RESET_CTR;
    w[OUTPUT] = RESET_OUTPUT;
    return { regs };
  }

  static save(state: I8042State): Record<string, SavedState> {
    return { regs: saveState(I8042_LAYOUT, state.regs) };
  }

  static load(state: I8042State, saved: Record<string, SavedState>): void {
    loadState(I8042_LAYOUT, state.regs, required(saved, 'regs'));
  }

  constructor(
    state: I8042State,
    private readonly host: DeviceHost,
    private readonly options: I8042Options,
  ) {
    this.words = new Int32Array(state.regs, 0, WORDS);
    this.lock = new Mutex(this.words, LOCK);
    const port = (name: string, at: number): BusDevice => ({
      name,
      read: (_offset, size, vcpu) => this.read(at, size, vcpu),
      write: (_offset, size, value, vcpu) => this.write(at, size, value, vcpu),
    });
    this.dataPort = port('i8042-data', I8042_PORT_OFFSET.Data);
    this.commandPort = port('i8042-command', I8042_PORT_OFFSET.Command);
  }

  /**
   * Offsets are from port 0x60: 0 is the data port, 4 the status/command
   * port. Port 0x61 sits between them on a PC, so the VM attaches
   * `dataPort` at 0x60 and `commandPort` at 0x64 (length 1 each) rather
   * than this object; other offsets read 0xff.
   */
  read(offset: number, size: AccessSize, _vcpu: number): number {
    return this.lock.with(() => {
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.readPort(offset + i) << (8 * i);
      this.updateIrqs();
      return value >>> 0;
    });
  }

  write(offset: number, size: AccessSize, value: number, _vcpu: number): void {
    let reset = false;
    this.lock.with(() => {
      for (let i = 0; i < size; i++) reset = this.writePort(offset + i, (value >>> (8 * i)) & 0xff) || reset;
      this.updateIrqs();
    });
    if (reset) this.host.vm.requestStop({ kind: 'reset' });
  }

  stats(): I8042Stats {
    return this.lock.with(() => ({ resets: this.words[RESETS]!, deviceBytes: this.words[DEVICE_BYTES]! }));
  }

  private readPort(offset: number): number {
    if (offset === I8042_PORT_OFFSET.Data) return this.readData();
    if (offset === I8042_PORT_OFFSET.Command) return this.status();
    return 0xff;
  }

  /** Returns true when the write asks for a reset. */
  private writePort(offset: number, value: number): boolean {
    const w = this.words;
    if (offset === I8042_PORT_OFFSET.Data) {
      w[LAST_CMD] = 0;
      w[TIMEOUT] = 0;
      return this.writeData(value);
    }
    if (offset === I8042_PORT_OFFSET.Command) {
      w[LAST_CMD] = 1;
      w[TIMEOUT] = 0;
      return this.command(value);
    }
    return false;
  }

  private status(): number {
    const w = this.words;
    let s = I8042Status.UNLOCKED;
    if (w[Q_COUNT]! > 0) {
      s |= I8042Status.OBF;
      if (w[Q_DATA + w[Q_HEAD]!]! & AUX_FLAG) s |= I8042Status.AUXDATA;
    }
    if (w[CTR]! & I8042Ctr.SYS) s |= I8042Status.SYS;
    if (w[LAST_CMD]) s |= I8042Status.CMD;
    if (w[TIMEOUT]) s |= I8042Status.TIMEOUT;
    return s;
  }

  /** Reading port 0x60 takes the oldest byte; an empty buffer reads its last value on hardware, 0 here. */
  private readData(): number {
    const w = this.words;
    if (w[Q_COUNT] === 0) return 0;
    const head = w[Q_HEAD]!;
    const entry = w[Q_DATA + head]!;
    w[Q_HEAD] = (head + 1) % Q_SIZE;
    w[Q_COUNT] = w[Q_COUNT]! - 1;
    return entry & 0xff;
  }

  private push(byte: number, aux = false): void {
    const w = this.words;
    if (w[Q_COUNT]! >= Q_SIZE) return; // a guest that never reads loses replies, like a full 8042
    w[Q_DATA + ((w[Q_HEAD]! + w[Q_COUNT]!) % Q_SIZE)] = (byte & 0xff) | (aux ? AUX_FLAG : 0);
    w[Q_COUNT] = w[Q_COUNT]! + 1;
  }

  private command(cmd: number): boolean {
    const w = this.words;
    w[PENDING] = 0;
    switch (cmd) {
      case I8042Cmd.ReadCtr:
        this.push(w[CTR]!);
        return false;
      case I8042Cmd.WriteCtr:
      case I8042Cmd.WriteOutput:
      case I8042Cmd.KbdLoop:
      case I8042Cmd.AuxLoop:
      case I8042Cmd.AuxSend:
        w[PENDING] = cmd;
        return false;
      case I8042Cmd.AuxDisable:
        w[CTR] = w[CTR]! | I8042Ctr.AUXDIS;
        return false;
      case I8042Cmd.AuxEnable:
        w[CTR] = w[CTR]! & ~I8042Ctr.AUXDIS;
        return false;
      case I8042Cmd.KbdDisable:
        w[CTR] = w[CTR]! | I8042Ctr.KBDDIS;
        return false;
      case I8042Cmd.KbdEnable:
        w[CTR] = w[CTR]! & ~I8042Ctr.KBDDIS;
        return false;
      case I8042Cmd.SelfTest:
        // A passed self-test sets the system flag.
        w[CTR] = w[CTR]! | I8042Ctr.SYS;
        this.push(I8042_SELF_TEST_OK);
        return false;
      case I8042Cmd.KbdTest:
      case I8042Cmd.AuxTest:
        // The clock and data lines test fine; nothing is attached to them.
        this.push(I8042_INTERFACE_TEST_OK);
        return false;
      case I8042Cmd.ReadInput:
        this.push(0x80); // bit 7: keyboard not inhibited
        return false;
      case I8042Cmd.ReadOutput:
        this.push(this.outputPort());
        return false;
      case I8042Cmd.ReadTestInputs:
        this.push(0x00);
        return false;
      case I8042Cmd.A20Disable:
      case I8042Cmd.A20Enable:
        // No A20 gate: the address line is always enabled.
        return false;
    }
    if (cmd >= I8042Cmd.PulseBase) {
      // Pulse the output-port bits whose mask bit is clear; only bit 0 (reset) matters.
      return (cmd & 1) === 0 ? this.reset() : false;
    }
    // Other commands (controller RAM, password, vendor extensions) are not implemented and are ignored.
    return false;
  }

  private writeData(value: number): boolean {
    const w = this.words;
    const pending = w[PENDING]!;
    w[PENDING] = 0;
    switch (pending) {
      case I8042Cmd.WriteCtr:
        w[CTR] = value;
        return false;
      case I8042Cmd.WriteOutput:
        // Bit 1 is A20 (always on here); bit 0 clear holds the CPU in reset.
        w[OUTPUT] = value | I8042Output.A20;
        return (value & I8042Output.ResetDeasserted) === 0 ? this.reset() : false;
      case I8042Cmd.KbdLoop:
        this.push(value);
        return false;
      case I8042Cmd.AuxLoop:
        this.push(value, true);
        return false;
      case I8042Cmd.AuxSend:
        this.noDevice(true);
        return false;
      default:
        // A byte for the keyboard. Sending to a disabled port enables it on an 8042.
        w[CTR] = w[CTR]! & ~I8042Ctr.KBDDIS;
        this.noDevice(false);
        return false;
    }
  }

  /** Nothing clocks the byte in: the controller gives up with a timeout and a resend (see the file comment). */
  private noDevice(aux: boolean): void {
    const w = this.words;
    w[DEVICE_BYTES] = w[DEVICE_BYTES]! + 1;
    w[TIMEOUT] = 1;
    this.push(PS2_NO_DEVICE_REPLY, aux);
  }

  private reset(): boolean {
    this.words[RESETS] = this.words[RESETS]! + 1;
    return true;
  }

  private outputPort(): number {
    const w = this.words;
    let out = w[OUTPUT]! & ~(I8042Output.KbdObf | I8042Output.AuxObf);
    if (w[Q_COUNT]! > 0) out |= w[Q_DATA + w[Q_HEAD]!]! & AUX_FLAG ? I8042Output.AuxObf : I8042Output.KbdObf;
    return out;
  }

  private updateIrqs(): void {
    const w = this.words;
    const full = w[Q_COUNT]! > 0;
    const aux = full && (w[Q_DATA + w[Q_HEAD]!]! & AUX_FLAG) !== 0;
    const kbdLevel = full && !aux && (w[CTR]! & I8042Ctr.KBDINT) !== 0 ? 1 : 0;
    const auxLevel = aux && (w[CTR]! & I8042Ctr.AUXINT) !== 0 ? 1 : 0;
    if (w[KBD_LEVEL] !== kbdLevel) {
      w[KBD_LEVEL] = kbdLevel;
      this.host.irq.setLevel(this.options.kbdIrq, kbdLevel === 1);
    }
    if (w[AUX_LEVEL] !== auxLevel) {
      w[AUX_LEVEL] = auxLevel;
      this.host.irq.setLevel(this.options.auxIrq, auxLevel === 1);
    }
  }
}
