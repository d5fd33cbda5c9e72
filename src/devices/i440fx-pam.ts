import type { AccessSize, BusDevice } from './device.js';
import type { PciFunction } from './pci-config.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { Mutex } from '../sync/mutex.js';
import { bytes, defineLayout, loadState, mutex, saveState, type SavedState } from '../sync/state-layout.js';

/**
 * The i440FX PMC's Programmable Attribute Map (Intel 82441FX datasheet,
 * 3.2.13, PAM0-PAM6 at configuration offsets 0x59-0x5F): per segment of
 * 0xC0000-0xFFFFF, whether reads and writes reach DRAM or go to the PCI/ISA
 * bus, where the BIOS flash answers. Firmware uses it to shadow itself:
 * it makes the segments read/write, copies its code from the flash into the
 * RAM beneath, and makes them read-only again before booting.
 *
 * Each 4-bit field: bit 0 RE (reads from DRAM), bit 1 WE (writes to DRAM).
 * PAM0's upper nibble covers 0xF0000-0xFFFFF (64 KiB, its lower nibble is
 * reserved); PAM1-PAM6 cover 0xC0000-0xEFFFF in 16 KiB segments, the low
 * nibble first. Power-on value 0: everything goes to the bus.
 *
 * Here "the bus" is the firmware image's last 256 KiB (the BIOS flash as
 * seen below 1 MiB), and 0xFF where the image is smaller. KVM memory slots
 * carry the common cases at full speed (see vm/pam-slots.ts): DRAM
 * read/write, DRAM read-only, the flash read-only. `PamArea` answers what
 * exits: writes that a mode drops, and every access in write-only mode.
 */

export const PAM_FIRST_REGISTER = 0x59;
export const PAM_REGISTER_COUNT = 7;
export const PAM_AREA_START = 0xc0000;
export const PAM_AREA_END = 0x100000;

/** One attribute field's meaning. */
export const PamMode = { Bus: 0, ReadOnly: 1, WriteOnly: 2, ReadWrite: 3 } as const;
export type PamMode = (typeof PamMode)[keyof typeof PamMode];

export interface PamSegment {
  readonly start: number;
  readonly size: number;
  /** Config offset of the register holding its field, and the field's shift. */
  readonly register: number;
  readonly shift: number;
}

/** The 13 segments, in address order. */
export const PAM_SEGMENTS: readonly PamSegment[] = [
  ...Array.from({ length: 12 }, (_, i) => ({ start: PAM_AREA_START + i * 0x4000, size: 0x4000, register: PAM_FIRST_REGISTER + 1 + (i >> 1), shift: (i & 1) * 4 })),
  { start: 0xf0000, size: 0x10000, register: PAM_FIRST_REGISTER, shift: 4 },
];

/** Writable bits per register: PAM0 only its upper RE/WE pair, PAM1-6 both pairs. */
const pamMask = (register: number): number => (register === PAM_FIRST_REGISTER ? 0x30 : 0x33);

/** Shared state: a mutex word, then the seven registers. */
export interface PamState {
  readonly regs: SharedArrayBuffer;
}

/** PamState.regs: the registers' lock, then PAM0-PAM6. */
export const I440FX_PAM_LAYOUT = defineLayout('i440fx-pam', 1, { lock: mutex(), regs: bytes(PAM_REGISTER_COUNT) });
const LOCK = I440FX_PAM_LAYOUT.at.lock;
const BYTES = I440FX_PAM_LAYOUT.at.regs;

/** The modes of all segments for register values `regs` (PAM0-PAM6). */
export function pamModes(regs: ArrayLike<number>): PamMode[] {
  return PAM_SEGMENTS.map((s) => ((regs[s.register - PAM_FIRST_REGISTER]! >> s.shift) & 3) as PamMode);
}

/**
 * The host bridge's configuration space with the PAM registers in it:
 * everything else goes to `bridge`. After a write that changes a mode,
 * `onChange` gets the new and the old modes (to re-map memory) while the registers'
 * lock is held, so two vCPUs' changes are applied in order.
 */
export class I440fxPmc implements PciFunction {
  readonly name: string;
  private readonly words: Int32Array;
  private readonly regs: Uint8Array;
  private readonly lock: Mutex;

  static allocate(): PamState {
    return { regs: I440FX_PAM_LAYOUT.allocate() };
  }

  static save(state: PamState): SavedState {
    return saveState(I440FX_PAM_LAYOUT, state.regs);
  }

  /** Loads saved registers before any thread runs (the caller maps memory for them); returns the modes they select. */
  static load(state: PamState, saved: SavedState): PamMode[] {
    loadState(I440FX_PAM_LAYOUT, state.regs, saved);
    const regs = new Uint8Array(state.regs, BYTES, PAM_REGISTER_COUNT);
    regs.forEach((v, i) => (regs[i] = v & pamMask(PAM_FIRST_REGISTER + i)));
    return pamModes(regs);
  }

  constructor(
    state: PamState,
    private readonly bridge: PciFunction,
    private readonly onChange: (modes: PamMode[], before: PamMode[]) => void = () => {},
  ) {
    this.name = bridge.name;
    this.words = new Int32Array(state.regs, 0, 1);
    this.regs = new Uint8Array(state.regs, BYTES, PAM_REGISTER_COUNT);
    this.lock = new Mutex(this.words, LOCK);
  }

  /** The current modes, segment by segment. */
  modes(): PamMode[] {
    return this.lock.with(() => pamModes(this.regs));
  }

  configRead(offset: number, size: AccessSize): number {
    if (!overlapsPam(offset, size)) return this.bridge.configRead(offset, size);
    let value = 0;
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      const byte = isPam(at) ? Atomics.load(this.regs, at - PAM_FIRST_REGISTER) : this.bridge.configRead(at, 1);
      value |= byte << (8 * i);
    }
    return value >>> 0;
  }

  configWrite(offset: number, size: AccessSize, value: number): void {
    if (!overlapsPam(offset, size)) return this.bridge.configWrite(offset, size, value);
    this.lock.with(() => {
      const before = pamModes(this.regs);
      let changed = false;
      for (let i = 0; i < size; i++) {
        const at = offset + i;
        const byte = (value >>> (8 * i)) & 0xff;
        if (!isPam(at)) {
          this.bridge.configWrite(at, 1, byte);
          continue;
        }
        const next = byte & pamMask(at);
        if (Atomics.exchange(this.regs, at - PAM_FIRST_REGISTER, next) !== next) changed = true;
      }
      if (changed) this.onChange(pamModes(this.regs), before);
    });
  }
}

const isPam = (at: number): boolean => at >= PAM_FIRST_REGISTER && at < PAM_FIRST_REGISTER + PAM_REGISTER_COUNT;
const overlapsPam = (offset: number, size: number): boolean => offset < PAM_FIRST_REGISTER + PAM_REGISTER_COUNT && offset + size > PAM_FIRST_REGISTER;

/**
 * The accesses to 0xC0000-0xFFFFF that KVM passes to us because no memory
 * slot takes them: each goes where its segment's mode says - DRAM, the
 * flash image (`rom`, which ends at 1 MiB), or nowhere (reads 0xFF).
 */
export class PamArea implements BusDevice {
  readonly name = 'pam-area';

  constructor(
    private readonly pmc: Pick<I440fxPmc, 'modes'>,
    private readonly ram: GuestMemory,
    private readonly rom: Uint8Array,
  ) {}

  read(offset: number, size: AccessSize): number {
    const modes = this.pmc.modes();
    let value = 0;
    for (let i = 0; i < size; i++) value |= this.byteAt(PAM_AREA_START + offset + i, modes) << (8 * i);
    return value >>> 0;
  }

  write(offset: number, size: AccessSize, value: number): void {
    const modes = this.pmc.modes();
    for (let i = 0; i < size; i++) {
      const gpa = PAM_AREA_START + offset + i;
      if (modes[segmentIndex(gpa)]! & PamMode.WriteOnly) this.ram.writeU8(gpa, (value >>> (8 * i)) & 0xff);
    }
  }

  private byteAt(gpa: number, modes: readonly PamMode[]): number {
    if (modes[segmentIndex(gpa)]! & PamMode.ReadOnly) return this.ram.readU8(gpa);
    const at = this.rom.length - (PAM_AREA_END - gpa);
    return at >= 0 ? this.rom[at]! : 0xff;
  }
}

/** Which segment holds `gpa` (in the PAM area). */
export function segmentIndex(gpa: number): number {
  return gpa >= 0xf0000 ? 12 : (gpa - PAM_AREA_START) >> 14;
}
