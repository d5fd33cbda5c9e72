import type { AccessSize, BusDevice, DeviceHost } from './device.js';
import { Mutex } from '../sync/mutex.js';
import { defineLayout, i32, loadState, mutex, required, saveState, type SavedState } from '../sync/state-layout.js';

/**
 * The reset control register at port 0xCF9 (Intel PIIX3/PIIX4 "RC",
 * ICH "RST_CNT"): Linux's `reboot=pci` and the ACPI reset register most
 * FADTs point at (RESET_REG = 0xCF9, RESET_VALUE = 0x06).
 *
 * Bit 1 (SRST) picks a hard rather than a soft reset, bit 2 (RCPU) starts
 * it, bit 3 (FULL_RST on ICH) asks for a power cycle. A VM has nothing
 * cheaper than a full reset, so any write with RCPU set requests one,
 * whatever SRST says (QEMU's PIIX does the same); Linux writes SRST
 * first (0x02) and then SRST|RCPU (0x06, or 0x0E for a full reset).
 * Reads return the last value written, reserved bits 7:4 and 0 clear.
 *
 * On a PC this byte lies inside the PCI host bridge's CONFIG_ADDRESS
 * dword, so with a `PciHost` present pass this device as its
 * `resetControl` option instead of attaching it at 0xCF9 (which the bus
 * would refuse as overlapping); without one, attach it at 0xCF9, length 1.
 */

export const RESET_CONTROL_PORT = 0xcf9;
export const RESET_CONTROL_PORT_COUNT = 1;
export const ResetControlBits = { SystemReset: 0x02, ResetCpu: 0x04, FullReset: 0x08 } as const;
/** What the FADT's RESET_VALUE should say. */
export const RESET_CONTROL_VALUE = ResetControlBits.SystemReset | ResetControlBits.ResetCpu;

const STORED_BITS = ResetControlBits.SystemReset | ResetControlBits.ResetCpu | ResetControlBits.FullReset;

/** The shared state behind every thread's view; structured-cloneable. */
export interface ResetControlState {
  readonly regs: SharedArrayBuffer;
}

export interface ResetControlStats {
  /** Writes that requested a reset. */
  resets: number;
}

export const RESET_CONTROL_LAYOUT = defineLayout('reset-control', 1, { lock: mutex(), value: i32(), resets: i32() });
const { lock: LOCK, value: VALUE, resets: RESETS } = RESET_CONTROL_LAYOUT.at;
const WORDS = RESET_CONTROL_LAYOUT.byteLength / 4;

export class ResetControl implements BusDevice {
  readonly name = 'reset-control';
  private readonly words: Int32Array;
  private readonly lock: Mutex;

  static allocate(): ResetControlState {
    return { regs: RESET_CONTROL_LAYOUT.allocate() };
  }

  static save(state: ResetControlState): Record<string, SavedState> {
    return { regs: saveState(RESET_CONTROL_LAYOUT, state.regs) };
  }

  static load(state: ResetControlState, saved: Record<string, SavedState>): void {
    loadState(RESET_CONTROL_LAYOUT, state.regs, required(saved, 'regs'));
  }

  constructor(
    state: ResetControlState,
    private readonly host: DeviceHost,
  ) {
    this.words = new Int32Array(state.regs, 0, WORDS);
    this.lock = new Mutex(this.words, LOCK);
  }

  /** One byte; a wider access's other bytes read as an undriven bus. */
  read(offset: number, size: AccessSize, _vcpu: number): number {
    const value = this.lock.with(() => this.words[VALUE]!);
    let out = 0;
    for (let i = 0; i < size; i++) out |= (offset + i === 0 ? value : 0xff) << (8 * i);
    return out >>> 0;
  }

  write(offset: number, _size: AccessSize, value: number, _vcpu: number): void {
    if (offset !== 0) return;
    const byte = value & 0xff;
    const reset = this.lock.with(() => {
      this.words[VALUE] = byte & STORED_BITS;
      if (!(byte & ResetControlBits.ResetCpu)) return false;
      this.words[RESETS] = this.words[RESETS]! + 1;
      return true;
    });
    // Outside the lock: the VM may do anything in response.
    if (reset) this.host.vm.requestStop({ kind: 'reset' });
  }

  stats(): ResetControlStats {
    return this.lock.with(() => ({ resets: this.words[RESETS]! }));
  }
}
