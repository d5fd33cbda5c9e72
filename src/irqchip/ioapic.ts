/**
 * An 82093AA-style I/O APIC with 24 pins (Intel 82093AA datasheet, 1996),
 * version 0x11: no EOI register, so level-triggered entries complete only
 * through the local APICs' EOI broadcast (`onEoi`).
 *
 * State lives in a SharedArrayBuffer so every thread can hold its own
 * `Ioapic` view: vCPU workers doing MMIO and EOIs, device threads driving
 * pins. Every state change happens under the mutex in the buffer; messages
 * are handed to `ApicBus.deliver` only after the mutex is released, so the
 * IOAPIC lock is a leaf lock and never nests with the APIC bus's locks.
 */
import { defineLayout, i32, loadState, mutex, saveState, type SavedState } from '../sync/state-layout.js';
import type { AccessSize, BusDevice } from '../devices/device.js';
import { Mutex } from '../sync/mutex.js';
import { deliveryModeFromBits } from './msi.js';
import { DeliveryMode, Shorthand, type ApicBus, type ApicMessage, type EoiListener } from './types.js';

/** Where PC firmware places the IOAPIC, and the size of its MMIO window. */
export const IOAPIC_BASE = 0xfec00000;
export const IOAPIC_MMIO_SIZE = 0x1000;
export const IOAPIC_PINS = 24;

/** MMIO offsets within the window. */
export const IoapicMmio = { RegSel: 0x00, Window: 0x10 } as const;

/** Indirect register indices (written to IOREGSEL). */
export const IoapicReg = { Id: 0x00, Version: 0x01, Arbitration: 0x02, RedirectionTable: 0x10 } as const;

/** Version register: version 0x11, maximum redirection entry 23 in bits 23:16. */
export const IOAPIC_VERSION = 0x11 | ((IOAPIC_PINS - 1) << 16);

/** Bits of a redirection entry's low word. */
export const Rte = {
  VectorMask: 0xff,
  DeliveryModeShift: 8,
  DestLogical: 1 << 11,
  DeliveryStatus: 1 << 12,
  ActiveLow: 1 << 13,
  RemoteIrr: 1 << 14,
  LevelTriggered: 1 << 15,
  Masked: 1 << 16,
} as const;

const ID_MASK = 0x0f000000; // bits 27:24
// Vector, delivery mode, destination mode, polarity, trigger mode, mask.
// Delivery status and remote IRR are read-only; bits 31:17 are reserved.
const LOW_WRITABLE = 0xfff | Rte.ActiveLow | Rte.LevelTriggered | Rte.Masked;

export const IOAPIC_LAYOUT = defineLayout('ioapic', 1, {
  lock: mutex(),
  select: i32(),
  id: i32(),
  /** Raw (electrical) levels of the 24 input pins, one bit each. */
  lines: i32(),
  /** Redirection entries: the low word of pin p's at rte + 2p, the high word after it. */
  rte: i32(2 * IOAPIC_PINS),
});
const { lock: W_LOCK, select: W_SELECT, id: W_ID, lines: W_LINES, rte: W_RTE } = IOAPIC_LAYOUT.at;
const WORDS = IOAPIC_LAYOUT.byteLength / 4;

/** A decoded redirection entry, for tests and diagnostics. */
export interface RedirectionEntry {
  pin: number;
  vector: number;
  /** The raw 3-bit field (0 Fixed, 1 LowestPriority, 2 SMI, 4 NMI, 5 INIT, 7 ExtINT). */
  deliveryMode: number;
  logical: boolean;
  activeLow: boolean;
  remoteIrr: boolean;
  levelTriggered: boolean;
  masked: boolean;
  /** Bits 63:56. */
  destination: number;
  /** The destination the IOAPIC delivers (see `Ioapic`): bits 63:56 plus 55:49 as ID bits 14:8. */
  effectiveDestination: number;
  /** Raw words as the guest reads them. */
  low: number;
  high: number;
  /** The pin's electrical level. */
  lineHigh: boolean;
}

/**
 * One thread's view of the shared IOAPIC.
 *
 * MMIO: attach `this` (a BusDevice) at IOAPIC_BASE with size IOAPIC_MMIO_SIZE.
 * Only offsets 0x00 (IOREGSEL) and 0x10 (IOWIN) are decoded; every other
 * offset reads 0 and ignores writes (0x40, the EOI register of version 0x20
 * parts, included). IOREGSEL takes any access size (the register number is
 * its low byte); IOWIN reads of 1 or 2 bytes return the register's low
 * bytes, and IOWIN writes narrower than 4 bytes are ignored, since the
 * datasheet requires dword accesses and a partial write cannot be merged
 * meaningfully.
 *
 * Delivered destination: bits 63:56 are the xAPIC destination. Linux under
 * KVM with KVM_FEATURE_MSI_EXT_DEST_ID puts destination ID bits 14:8 into
 * bits 55:49 (its `virt_destid_8_14`; bit 48 is the interrupt-remapping
 * format bit, ignored here). The message's `dest` is therefore
 * `bits[63:56] | bits[55:49] << 8`, and `x2apic` is set when bits 55:49 are
 * nonzero. The full high word is stored and reads back as written.
 *
 * Delivery status always reads 0: messages are handed to the bus
 * synchronously, so none is ever pending in the IOAPIC.
 */
export class Ioapic implements BusDevice, EoiListener {
  readonly name = 'ioapic';
  private readonly words: Int32Array;
  private readonly mutex: Mutex;

  /** A buffer in the power-on state: ID 0, every entry masked. */
  static save(buffer: SharedArrayBuffer): SavedState {
    return saveState(IOAPIC_LAYOUT, buffer);
  }

  static load(buffer: SharedArrayBuffer, saved: SavedState): void {
    loadState(IOAPIC_LAYOUT, buffer, saved);
  }

  static allocate(): SharedArrayBuffer {
    const buffer = IOAPIC_LAYOUT.allocate();
    resetWords(new Int32Array(buffer));
    return buffer;
  }

  constructor(
    buffer: SharedArrayBuffer,
    private readonly bus: ApicBus,
  ) {
    if (buffer.byteLength < WORDS * 4) throw new RangeError('IOAPIC buffer too small; use Ioapic.allocate()');
    this.words = new Int32Array(buffer, 0, WORDS);
    this.mutex = new Mutex(this.words, W_LOCK);
  }

  // ---- MMIO (BusDevice) ----

  read(offset: number, size: AccessSize, _vcpu: number): number {
    let value: number;
    if (offset === IoapicMmio.RegSel) value = Atomics.load(this.words, W_SELECT);
    else if (offset === IoapicMmio.Window) value = this.mutex.with(() => this.readRegister(this.words[W_SELECT]!));
    else return 0;
    return size === 4 ? value >>> 0 : value & (size === 2 ? 0xffff : 0xff);
  }

  write(offset: number, size: AccessSize, value: number, _vcpu: number): void {
    if (offset === IoapicMmio.RegSel) {
      Atomics.store(this.words, W_SELECT, value & 0xff);
      return;
    }
    if (offset !== IoapicMmio.Window || size !== 4) return;
    const msg = this.mutex.with(() => this.writeRegister(this.words[W_SELECT]!, value >>> 0));
    if (msg) this.bus.deliver(msg);
  }

  // ---- Pins ----

  /**
   * Drives input `pin` to an electrical level. The entry's polarity decides
   * whether that level is active. Edge entries deliver on each
   * inactive-to-active transition while unmasked (edges on a masked pin are
   * lost, per the datasheet); level entries deliver while active, unmasked
   * and not awaiting an EOI (remote IRR clear), then set remote IRR.
   */
  setLevel(pin: number, high: boolean): void {
    if (!Number.isInteger(pin) || pin < 0 || pin >= IOAPIC_PINS) {
      throw new RangeError(`IOAPIC pin ${pin} does not exist (0..${IOAPIC_PINS - 1})`);
    }
    const msg = this.mutex.with(() => {
      const w = this.words;
      const bit = 1 << pin;
      const lines = w[W_LINES]!;
      if (((lines & bit) !== 0) === high) return null;
      w[W_LINES] = high ? lines | bit : lines & ~bit;
      const low = w[W_RTE + 2 * pin]!;
      if (!isActive(low, high) || low & Rte.Masked) return null;
      // The line changed, so "active now" is an inactive-to-active edge.
      if (!isLevel(low)) return buildMessage(low, w[W_RTE + 2 * pin + 1]!);
      return this.serviceLevel(pin);
    });
    if (msg) this.bus.deliver(msg);
  }

  /**
   * The local APICs' EOI broadcast for `vector` (SDM 11.8.5): every
   * level-triggered entry with that vector and remote IRR set completes;
   * entries whose line is still active and unmasked deliver again.
   */
  onEoi(vector: number): void {
    const msgs = this.mutex.with(() => {
      const w = this.words;
      let out: ApicMessage[] | null = null;
      for (let pin = 0; pin < IOAPIC_PINS; pin++) {
        const i = W_RTE + 2 * pin;
        const low = w[i]!;
        if ((low & Rte.VectorMask) !== vector || !(low & Rte.RemoteIrr) || !isLevel(low)) continue;
        w[i] = low & ~Rte.RemoteIrr;
        const msg = this.serviceLevel(pin);
        if (msg) (out ??= []).push(msg);
      }
      return out;
    });
    if (msgs) for (const msg of msgs) this.bus.deliver(msg);
  }

  // ---- Control and diagnostics ----

  /** Back to the power-on state (pin levels, being wires, are kept). */
  reset(): void {
    this.mutex.with(() => resetWords(this.words));
  }

  /** A consistent snapshot of all 24 entries. */
  entries(): RedirectionEntry[] {
    return this.mutex.with(() => {
      const w = this.words;
      const lines = w[W_LINES]!;
      const out: RedirectionEntry[] = [];
      for (let pin = 0; pin < IOAPIC_PINS; pin++) {
        const low = w[W_RTE + 2 * pin]! >>> 0;
        const high = w[W_RTE + 2 * pin + 1]! >>> 0;
        out.push({
          pin,
          vector: low & Rte.VectorMask,
          deliveryMode: (low >>> Rte.DeliveryModeShift) & 7,
          logical: (low & Rte.DestLogical) !== 0,
          activeLow: (low & Rte.ActiveLow) !== 0,
          remoteIrr: (low & Rte.RemoteIrr) !== 0,
          levelTriggered: (low & Rte.LevelTriggered) !== 0,
          masked: (low & Rte.Masked) !== 0,
          destination: high >>> 24,
          effectiveDestination: destinationOf(high),
          low,
          high,
          lineHigh: (lines & (1 << pin)) !== 0,
        });
      }
      return out;
    });
  }

  // ---- Internals; all called with the mutex held ----


  /**
   * Delivers a level entry if it is active, unmasked and remote IRR is
   * clear, setting remote IRR. The caller has established the entry is
   * level-triggered.
   */
  private serviceLevel(pin: number): ApicMessage | null {
    const w = this.words;
    const i = W_RTE + 2 * pin;
    const low = w[i]!;
    const lineHigh = (w[W_LINES]! & (1 << pin)) !== 0;
    if (!isActive(low, lineHigh) || low & (Rte.Masked | Rte.RemoteIrr)) return null;
    w[i] = low | Rte.RemoteIrr;
    return buildMessage(low, w[i + 1]!);
  }

  private readRegister(reg: number): number {
    const w = this.words;
    switch (reg) {
      case IoapicReg.Id:
        return w[W_ID]! >>> 0;
      case IoapicReg.Version:
        return IOAPIC_VERSION;
      case IoapicReg.Arbitration:
        // The 82093AA loads the arbitration ID from the APIC ID whenever the
        // ID register is written; nothing else changes it here.
        return w[W_ID]! >>> 0;
    }
    const index = reg - IoapicReg.RedirectionTable;
    if (index >= 0 && index < 2 * IOAPIC_PINS) return w[W_RTE + index]! >>> 0;
    return 0;
  }

  /** Applies a register write; returns a message if it made a level entry deliverable. */
  private writeRegister(reg: number, value: number): ApicMessage | null {
    const w = this.words;
    if (reg === IoapicReg.Id) {
      w[W_ID] = value & ID_MASK;
      return null;
    }
    const index = reg - IoapicReg.RedirectionTable;
    if (index < 0 || index >= 2 * IOAPIC_PINS) return null; // version, arbitration: read-only
    const pin = index >> 1;
    if (index & 1) {
      w[W_RTE + index] = value;
      return null;
    }
    const old = w[W_RTE + index]!;
    let low = (value & LOW_WRITABLE) | (old & Rte.RemoteIrr);
    // An entry that no longer waits for an EOI cannot hold remote IRR. Linux
    // relies on this to clear a stuck remote IRR on IOAPICs without an EOI
    // register (it briefly reprograms the entry as edge, see
    // __eoi_ioapic_pin), and KVM's IOAPIC behaves the same way.
    if (!isLevel(low)) low &= ~Rte.RemoteIrr;
    w[W_RTE + index] = low;
    // Unmasking (or switching to level) while the line is active delivers:
    // a level-triggered request is a state, not an event.
    return isLevel(low) ? this.serviceLevel(pin) : null;
  }
}

function resetWords(w: Int32Array): void {
  w[W_SELECT] = 0;
  w[W_ID] = 0;
  for (let pin = 0; pin < IOAPIC_PINS; pin++) {
    w[W_RTE + 2 * pin] = Rte.Masked;
    w[W_RTE + 2 * pin + 1] = 0;
  }
}

/** The electrical level is active for this entry's polarity. */
function isActive(low: number, lineHigh: boolean): boolean {
  return lineHigh !== ((low & Rte.ActiveLow) !== 0);
}

/**
 * Level semantics apply only to Fixed and LowestPriority entries: the
 * datasheet treats SMI, NMI, INIT and ExtINT as edge-triggered whatever the
 * trigger-mode bit says (no EOI ever comes back for them).
 */
function isLevel(low: number): boolean {
  if (!(low & Rte.LevelTriggered)) return false;
  const mode = (low >>> Rte.DeliveryModeShift) & 7;
  return mode === DeliveryMode.Fixed || mode === DeliveryMode.LowestPriority;
}

/** Destination ID: bits 63:56, plus bits 55:49 as ID bits 14:8 (extended destination ID). */
function destinationOf(high: number): number {
  return (high >>> 24) | (((high >>> 17) & 0x7f) << 8);
}

/** The bus message for an entry; null for the reserved delivery modes. */
function buildMessage(low: number, high: number): ApicMessage | null {
  const deliveryMode = deliveryModeFromBits(low >>> Rte.DeliveryModeShift);
  if (deliveryMode === null) return null;
  const dest = destinationOf(high >>> 0);
  return {
    vector: low & Rte.VectorMask,
    deliveryMode,
    logical: (low & Rte.DestLogical) !== 0,
    dest,
    levelTriggered: isLevel(low),
    assert: true,
    shorthand: Shorthand.None,
    source: -1,
    x2apic: dest > 0xff,
  };
}
