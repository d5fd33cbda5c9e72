import type { AccessSize } from './device.js';
import { Mutex } from '../sync/mutex.js';
import { bytes, defineLayout, i32, loadState, mutex, saveState, type SavedState } from '../sync/state-layout.js';

/**
 * PCI configuration space: the `PciFunction` contract the host bridge
 * dispatches to, and `PciConfigSpace`, the type 0 header semantics (PCI
 * Local Bus Specification 3.0, chapter 6) that device models reuse.
 */

/** One function's 256-byte configuration space, as the host bridge reaches it. */
export interface PciFunction {
  readonly name: string;
  /**
   * Reads `size` bytes at `offset` (0-255; the access never crosses a
   * dword, as configuration mechanism 1 cannot express one that does).
   */
  configRead(offset: number, size: AccessSize): number;
  configWrite(offset: number, size: AccessSize, value: number): void;
}

/** Header register offsets (type 0). */
export const PciCfg = {
  VendorId: 0x00,
  DeviceId: 0x02,
  Command: 0x04,
  Status: 0x06,
  Revision: 0x08,
  ClassCode: 0x09,
  CacheLineSize: 0x0c,
  LatencyTimer: 0x0d,
  HeaderType: 0x0e,
  Bist: 0x0f,
  Bar0: 0x10,
  CardbusCis: 0x28,
  SubsystemVendorId: 0x2c,
  SubsystemId: 0x2e,
  ExpansionRom: 0x30,
  CapabilitiesPointer: 0x34,
  InterruptLine: 0x3c,
  InterruptPin: 0x3d,
  MinGrant: 0x3e,
  MaxLatency: 0x3f,
} as const;

export const PCI_CONFIG_SIZE = 256;
export const PCI_BAR_COUNT = 6;
/** Where capabilities start: the device-specific area after the type 0 header. */
export const PCI_CAPABILITIES_START = 0x40;

export const PciCommand = {
  Io: 0x0001,
  Memory: 0x0002,
  BusMaster: 0x0004,
  SpecialCycles: 0x0008,
  MemoryWriteInvalidate: 0x0010,
  VgaPaletteSnoop: 0x0020,
  ParityErrorResponse: 0x0040,
  Serr: 0x0100,
  FastBackToBack: 0x0200,
  InterruptDisable: 0x0400,
} as const;

export const PciStatus = {
  InterruptStatus: 0x0008,
  CapabilitiesList: 0x0010,
  MasterDataParityError: 0x0100,
  SignaledTargetAbort: 0x0800,
  ReceivedTargetAbort: 0x1000,
  ReceivedMasterAbort: 0x2000,
  SignaledSystemError: 0x4000,
  DetectedParityError: 0x8000,
} as const;

/** Low bits of a BAR (spec 6.2.5.1). */
export const PciBarBits = { Io: 0x1, Mem64: 0x4, Prefetchable: 0x8 } as const;

/** The command bits a conventional device implements here (the same set QEMU makes writable). */
const COMMAND_WRITABLE = PciCommand.Io | PciCommand.Memory | PciCommand.BusMaster | PciCommand.ParityErrorResponse | PciCommand.Serr | PciCommand.InterruptDisable;
/** The status error bits: write 1 to clear. */
const STATUS_W1C =
  PciStatus.MasterDataParityError |
  PciStatus.SignaledTargetAbort |
  PciStatus.ReceivedTargetAbort |
  PciStatus.ReceivedMasterAbort |
  PciStatus.SignaledSystemError |
  PciStatus.DetectedParityError;

/** A base address register's resource. */
export type PciBar =
  /** Memory space; size a power of two, at least 16 bytes. 64-bit BARs take the next BAR slot too. */
  | { readonly kind: 'memory'; readonly size: number; readonly prefetchable?: boolean; readonly is64?: boolean }
  /** I/O space; size a power of two from 4 to 256 bytes. */
  | { readonly kind: 'io'; readonly size: number };

/** A capability in the linked list: its ID, the bytes after the ID and next pointer, and which of their bits the guest may write. */
export interface PciCapability {
  readonly id: number;
  readonly body: ArrayLike<number>;
  /** Per body byte, the writable bits (default none). */
  readonly writable?: ArrayLike<number>;
}

export interface PciConfigSpec {
  vendorId: number;
  deviceId: number;
  /** base class << 16 | subclass << 8 | programming interface. */
  classCode: number;
  revision?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** Header type bit 7: function 0 of a device with more functions. */
  multifunction?: boolean;
  /** BAR slots 0-5; a 64-bit memory BAR's next slot must be left undefined. */
  bars?: ReadonlyArray<PciBar | undefined>;
  /** 1-4 for INTA#-INTD#, 0 (default) for none. */
  interruptPin?: number;
  /** Command register at reset (default 0: decoding off until firmware or the OS turns it on). */
  command?: number;
  /** Read-only status bits to report besides the capabilities-list bit (e.g. DEVSEL timing). */
  status?: number;
  /** Laid out from 0x40, each dword-aligned, linked through the capabilities pointer. */
  capabilities?: readonly PciCapability[];
}

/** Shared state of one function's configuration space; structured-cloneable. */
export interface PciConfigSpaceState {
  readonly regs: SharedArrayBuffer;
}

/**
 * The mutex word, the 256 config bytes, a 256-byte writable mask and a
 * 256-byte write-1-to-clear mask. The masks are written once by `allocate`
 * and only read afterwards.
 */
export const PCI_CONFIG_LAYOUT = defineLayout('pci-config', 1, {
  lock: mutex(),
  reserved: i32(3),
  config: bytes(PCI_CONFIG_SIZE),
  wmask: bytes(PCI_CONFIG_SIZE),
  w1c: bytes(PCI_CONFIG_SIZE),
});
const { lock: LOCK, config: CONFIG, wmask: WMASK, w1c: W1C } = PCI_CONFIG_LAYOUT.at;

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && 2 ** Math.round(Math.log2(n)) === n;
}

/** All ones in `size` bytes. */
export function pciOnes(size: AccessSize): number {
  return size === 4 ? 0xffffffff : (1 << (8 * size)) - 1;
}

/**
 * A type 0 configuration header over shared memory, with the semantics
 * the spec gives each register: read-only IDs, class, header type and
 * pointers; a command register of which only implemented bits stick;
 * write-1-to-clear status error bits; BARs that keep only their address
 * bits, so that writing all ones and reading back gives the size mask plus
 * the read-only type bits (spec 6.2.5.1); writable cache line size,
 * latency timer and interrupt line; capabilities with per-byte masks.
 * Bytes nobody defined read 0 and ignore writes.
 *
 * Every thread builds its own view over the same state; accesses run under
 * the state's mutex, so a BAR programmed from one vCPU is what every other
 * thread reads. Device models either register a `PciConfigSpace` as their
 * `PciFunction` directly, or wrap it to intercept registers of their own and
 * then read `barAddress`/`command` to learn where the guest put them.
 */
export class PciConfigSpace implements PciFunction {
  private readonly lockWords: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly lock: Mutex;

  static allocate(spec: PciConfigSpec): PciConfigSpaceState {
    const regs = PCI_CONFIG_LAYOUT.allocate();
    const cfg = new Uint8Array(regs, CONFIG, PCI_CONFIG_SIZE);
    const wmask = new Uint8Array(regs, WMASK, PCI_CONFIG_SIZE);
    const w1c = new Uint8Array(regs, W1C, PCI_CONFIG_SIZE);
    const put = (a: Uint8Array, offset: number, size: number, value: number): void => {
      for (let i = 0; i < size; i++) a[offset + i] = Math.floor(value / 2 ** (8 * i)) & 0xff;
    };
    put(cfg, PciCfg.VendorId, 2, spec.vendorId);
    put(cfg, PciCfg.DeviceId, 2, spec.deviceId);
    put(cfg, PciCfg.Command, 2, (spec.command ?? 0) & COMMAND_WRITABLE);
    put(wmask, PciCfg.Command, 2, COMMAND_WRITABLE);
    put(w1c, PciCfg.Status, 2, STATUS_W1C);
    cfg[PciCfg.Revision] = spec.revision ?? 0;
    put(cfg, PciCfg.ClassCode, 3, spec.classCode);
    wmask[PciCfg.CacheLineSize] = 0xff;
    wmask[PciCfg.LatencyTimer] = 0xff;
    cfg[PciCfg.HeaderType] = spec.multifunction ? 0x80 : 0x00;
    put(cfg, PciCfg.SubsystemVendorId, 2, spec.subsystemVendorId ?? 0);
    put(cfg, PciCfg.SubsystemId, 2, spec.subsystemId ?? 0);
    wmask[PciCfg.InterruptLine] = 0xff;
    const pin = spec.interruptPin ?? 0;
    if (!Number.isInteger(pin) || pin < 0 || pin > 4) throw new RangeError(`PCI interrupt pin ${pin} is not 0 (none) or 1-4 (INTA#-INTD#)`);
    cfg[PciCfg.InterruptPin] = pin;
    let status = (spec.status ?? 0) & ~(STATUS_W1C | PciStatus.InterruptStatus);

    const bars = spec.bars ?? [];
    if (bars.length > PCI_BAR_COUNT) throw new RangeError(`a type 0 header has ${PCI_BAR_COUNT} BARs (got ${bars.length})`);
    for (let i = 0; i < bars.length; i++) {
      const bar = bars[i];
      if (bar === undefined) continue;
      const at = PciCfg.Bar0 + 4 * i;
      if (bar.kind === 'io') {
        if (!isPowerOfTwo(bar.size) || bar.size < 4 || bar.size > 256) throw new RangeError(`BAR ${i}: an I/O BAR's size must be a power of two from 4 to 256 (got ${bar.size})`);
        put(cfg, at, 4, PciBarBits.Io);
        put(wmask, at, 4, (~(bar.size - 1) & ~3) >>> 0);
        continue;
      }
      if (!isPowerOfTwo(bar.size) || bar.size < 16) throw new RangeError(`BAR ${i}: a memory BAR's size must be a power of two of at least 16 (got ${bar.size})`);
      const flags = (bar.is64 ? PciBarBits.Mem64 : 0) | (bar.prefetchable ? PciBarBits.Prefetchable : 0);
      put(cfg, at, 4, flags);
      if (!bar.is64) {
        if (bar.size > 2 ** 31) throw new RangeError(`BAR ${i}: a 32-bit memory BAR cannot be larger than 2 GiB (got ${bar.size})`);
        put(wmask, at, 4, (~(bar.size - 1) & ~0xf) >>> 0);
        continue;
      }
      if (i === PCI_BAR_COUNT - 1 || bars[i + 1] !== undefined) throw new RangeError(`BAR ${i}: a 64-bit BAR needs slot ${i + 1} free for its upper half`);
      const low = bar.size >= 2 ** 32 ? 0 : (~(bar.size - 1) & ~0xf) >>> 0;
      const high = bar.size <= 2 ** 32 ? 0xffffffff : (~(bar.size / 2 ** 32 - 1)) >>> 0;
      put(wmask, at, 4, low);
      put(wmask, at + 4, 4, high);
      i++;
    }

    const caps = spec.capabilities ?? [];
    let offset = PCI_CAPABILITIES_START;
    let link: number = PciCfg.CapabilitiesPointer;
    for (const cap of caps) {
      const length = 2 + cap.body.length;
      if (offset + length > PCI_CONFIG_SIZE) throw new RangeError(`PCI capabilities do not fit in 256 bytes of configuration space`);
      cfg[link] = offset;
      cfg[offset] = cap.id;
      for (let j = 0; j < cap.body.length; j++) {
        cfg[offset + 2 + j] = cap.body[j]!;
        wmask[offset + 2 + j] = cap.writable?.[j] ?? 0;
      }
      link = offset + 1;
      offset += (length + 3) & ~3;
    }
    if (caps.length > 0) status |= PciStatus.CapabilitiesList;
    put(cfg, PciCfg.Status, 2, status);
    return { regs };
  }

  static save(state: PciConfigSpaceState): SavedState {
    return saveState(PCI_CONFIG_LAYOUT, state.regs);
  }

  static load(state: PciConfigSpaceState, saved: SavedState): void {
    loadState(PCI_CONFIG_LAYOUT, state.regs, saved);
  }

  constructor(
    state: PciConfigSpaceState,
    readonly name = 'pci-function',
  ) {
    this.lockWords = new Int32Array(state.regs, 0, 1);
    this.bytes = new Uint8Array(state.regs);
    this.lock = new Mutex(this.lockWords, LOCK);
  }

  configRead(offset: number, size: AccessSize): number {
    return this.lock.with(() => this.get(offset, size));
  }

  configWrite(offset: number, size: AccessSize, value: number): void {
    this.lock.with(() => {
      const b = this.bytes;
      for (let i = 0; i < size; i++) {
        const at = offset + i;
        if (at < 0 || at >= PCI_CONFIG_SIZE) continue;
        const v = (value >>> (8 * i)) & 0xff;
        const wmask = b[WMASK + at]!;
        const cfg = (b[CONFIG + at]! & ~wmask) | (v & wmask);
        b[CONFIG + at] = cfg & ~(v & b[W1C + at]!);
      }
    });
  }

  /**
   * Device side: sets bytes regardless of the guest's write masks (status
   * bits, capability fields the device updates, ...).
   */
  setRegister(offset: number, size: AccessSize, value: number): void {
    this.lock.with(() => {
      for (let i = 0; i < size; i++) {
        const at = offset + i;
        if (at >= 0 && at < PCI_CONFIG_SIZE) this.bytes[CONFIG + at] = (value >>> (8 * i)) & 0xff;
      }
    });
  }

  /** The command register. */
  command(): number {
    return this.configRead(PciCfg.Command, 2);
  }

  /** The interrupt line register (the IRQ the firmware/OS says the pin is routed to). */
  interruptLine(): number {
    return this.configRead(PciCfg.InterruptLine, 1);
  }

  /**
   * Where BAR `index` currently points: the programmed address without
   * its type bits (the upper half included for a 64-bit BAR), or undefined
   * for an unimplemented BAR or the upper half of a 64-bit one. Whether the
   * space is decoded is the command register's business.
   */
  barAddress(index: number): number | undefined {
    return this.lock.with(() => {
      if (!Number.isInteger(index) || index < 0 || index >= PCI_BAR_COUNT) return undefined;
      const at = PciCfg.Bar0 + 4 * index;
      if (this.get(at, 4, WMASK) === 0) return undefined;
      if (index > 0 && this.get(at - 4, 4, WMASK) !== 0 && (this.get(at - 4, 4) & (PciBarBits.Io | PciBarBits.Mem64)) === PciBarBits.Mem64) {
        return undefined; // the upper half of the 64-bit BAR below
      }
      const low = this.get(at, 4);
      if (low & PciBarBits.Io) return (low & ~3) >>> 0;
      const address = (low & ~0xf) >>> 0;
      return low & PciBarBits.Mem64 ? address + this.get(at + 4, 4) * 2 ** 32 : address;
    });
  }

  /** Offset of the `index`th capability in the list, or undefined. */
  capabilityOffset(index: number): number | undefined {
    return this.lock.with(() => {
      if (!(this.get(PciCfg.Status, 2) & PciStatus.CapabilitiesList)) return undefined;
      let at = this.get(PciCfg.CapabilitiesPointer, 1);
      for (let i = 0; i < index && at !== 0; i++) at = this.get(at + 1, 1);
      return at === 0 ? undefined : at;
    });
  }

  /** Device side: the INTx status bit (status bit 3), which reports the function's interrupt whatever Interrupt Disable says. */
  setInterruptStatus(asserted: boolean): void {
    this.lock.with(() => {
      const at = CONFIG + PciCfg.Status;
      this.bytes[at] = asserted ? this.bytes[at]! | PciStatus.InterruptStatus : this.bytes[at]! & ~PciStatus.InterruptStatus;
    });
  }

  /** `size` bytes at `offset` of the config bytes (or of a mask), little-endian; bytes past 255 read 0xff. */
  private get(offset: number, size: AccessSize, array = CONFIG): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = offset + i;
      value = value * 256 + (at >= 0 && at < PCI_CONFIG_SIZE ? this.bytes[array + at]! : 0xff);
    }
    return value;
  }
}
