import type { AccessSize, BusDevice, VmControl } from './device.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { Mutex } from '../sync/mutex.js';
import { defineLayout, i32, loadState, mutex, saveState, type SavedState } from '../sync/state-layout.js';
import { MAX_REGION } from '../memory/layout.js';

/**
 * QEMU's firmware configuration device (fw_cfg), x86 I/O-port flavour, as
 * QEMU's docs/specs/fw_cfg.rst specifies it:
 *
 *   0x510  selector (16-bit write): picks an item, resets the data offset
 *   0x511  data (8-bit read): the next byte of the item; 0 past its end
 *   0x514  DMA address, 64-bit big-endian: a 32-bit write of the high half
 *          at 0x514, then of the low half at 0x518, which starts the
 *          transfer. Reading it returns "QEMU CFG" (the DMA signature).
 *
 * A DMA descriptor (FWCfgDmaAccess, big-endian: u32 control, u32 length,
 * u64 address) may select an item (bit 3, key in the upper 16 bits), then
 * read (bit 1), skip (bit 2) or write (bit 4) `length` bytes at the
 * current offset. Every guest-physical range it names - the descriptor and
 * the buffer - goes through GuestMemory's bounds checks; one that is not
 * guest RAM ends the transfer with the error bit (bit 0) set, as does a
 * write (every item here is read-only). The device then stores the
 * resulting control word back into the descriptor: 0 for success.
 *
 * The items are fixed when the VM is made; the selector and offset are one
 * register set shared by every vCPU, in shared memory under a mutex.
 */

export const FW_CFG_PORT = 0x510;
/** Selector (2), data (1), a gap, then the 8-byte DMA address at +4. */
export const FW_CFG_PORT_COUNT = 12;
export const FwCfgReg = { Selector: 0, Data: 1, DmaHigh: 4, DmaLow: 8 } as const;

/** Selector keys (QEMU's include/standard-headers/linux/qemu_fw_cfg.h). */
export const FwCfgKey = {
  Signature: 0x00,
  Id: 0x01,
  Uuid: 0x02,
  RamSize: 0x03,
  NoGraphic: 0x04,
  NbCpus: 0x05,
  Numa: 0x0d,
  BootMenu: 0x0e,
  MaxCpus: 0x0f,
  FileDir: 0x19,
  /** The first key of the file items the directory lists. */
  FileFirst: 0x20,
  /** x86-specific items. */
  Irq0Override: 0x8002,
  E820Table: 0x8003,
} as const;

/** Selector bit 14: "write through the data port" (QEMU ignores such writes since 2.4). */
export const FW_CFG_WRITE_CHANNEL = 0x4000;
/** FW_CFG_ID feature bits. */
export const FwCfgFeature = { Traditional: 1, Dma: 2 } as const;

/** FWCfgDmaAccess control bits. */
export const FwCfgDma = { Error: 1, Read: 2, Skip: 4, Select: 8, Write: 16 } as const;
export const FW_CFG_DMA_DESCRIPTOR_SIZE = 16;
/** What a read of the DMA address register returns: "QEMU CFG", big-endian. */
export const FW_CFG_DMA_SIGNATURE = 0x51454d5520434647n;
/** A directory entry: u32 size, u16 select, u16 reserved, char name[56] (big-endian numbers). */
export const FW_CFG_FILE_ENTRY_SIZE = 64;
export const FW_CFG_MAX_NAME = 55;

/** One item: its selector key and its bytes. */
export interface FwCfgItem {
  readonly key: number;
  readonly data: Uint8Array;
}

/** Everything a thread needs to build its view: the items and the shared registers; structured-cloneable. */
export interface FwCfgState {
  readonly items: readonly FwCfgItem[];
  readonly regs: SharedArrayBuffer;
}

// Int32 words: the lock, the selected key (-1: none), the offset, the DMA address's high half.
export const FW_CFG_LAYOUT = defineLayout('fw-cfg', 1, { lock: mutex(), selected: i32(), offset: i32(), dmaHigh: i32() });
const LOCK = FW_CFG_LAYOUT.at.lock;
const SELECTED = FW_CFG_LAYOUT.at.selected;
const OFFSET = FW_CFG_LAYOUT.at.offset;
const DMA_HIGH = FW_CFG_LAYOUT.at.dmaHigh;
/** DMA moves data in pieces of at most this much, so a huge length never needs a huge buffer. */
const DMA_CHUNK = 64 * 1024;

const bswap32 = (v: number): number => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

export class FwCfg implements BusDevice {
  readonly name = 'fw-cfg';
  private readonly words: Int32Array;
  private readonly lock: Mutex;
  private readonly items = new Map<number, Uint8Array>();

  static allocate(items: readonly FwCfgItem[]): FwCfgState {
    const keys = new Set<number>();
    for (const item of items) {
      if (!Number.isInteger(item.key) || item.key < 0 || item.key > 0xffff) throw new RangeError(`fw_cfg key ${item.key} is not 16-bit`);
      if (keys.has(item.key)) throw new RangeError(`fw_cfg key 0x${item.key.toString(16)} is defined twice`);
      keys.add(item.key);
    }
    const regs = FW_CFG_LAYOUT.allocate();
    new Int32Array(regs)[SELECTED] = -1;
    return { items, regs };
  }

  /** The selector, offset and DMA address half for a snapshot (the items are rebuilt from the machine's configuration). */
  static save(state: FwCfgState): SavedState {
    return saveState(FW_CFG_LAYOUT, state.regs);
  }

  static load(state: FwCfgState, saved: SavedState): void {
    loadState(FW_CFG_LAYOUT, state.regs, saved);
  }

  constructor(
    state: FwCfgState,
    private readonly memory: GuestMemory,
    private readonly vm?: Pick<VmControl, 'log'>,
  ) {
    this.words = new Int32Array(state.regs);
    this.lock = new Mutex(this.words, LOCK);
    for (const item of state.items) this.items.set(item.key, item.data);
  }

  read(offset: number, size: AccessSize): number {
    if (offset >= FwCfgReg.DmaHigh) return this.readDmaSignature(offset, size);
    if (offset !== FwCfgReg.Data) return 0;
    // The data port is a byte port; wider reads return successive bytes.
    return this.lock.with(() => {
      let value = 0;
      for (let i = 0; i < size; i++) value |= this.nextByte() << (8 * i);
      return value >>> 0;
    });
  }

  write(offset: number, size: AccessSize, value: number): void {
    if (offset === FwCfgReg.Selector && size === 2) {
      this.lock.with(() => this.select(value));
    } else if (offset === FwCfgReg.DmaHigh && size === 4) {
      Atomics.store(this.words, DMA_HIGH, bswap32(value) | 0);
    } else if (offset === FwCfgReg.DmaLow && size === 4) {
      const high = Atomics.exchange(this.words, DMA_HIGH, 0) >>> 0;
      this.lock.with(() => this.dma(high * 2 ** 32 + bswap32(value)));
    }
    // Data-port writes are ignored (QEMU >= 2.4): items are written by DMA only.
  }

  /** The signature bytes 'QEMU CFG' at 0x514-0x51b, in port order. */
  private readDmaSignature(offset: number, size: AccessSize): number {
    let value = 0;
    for (let i = 0; i < size; i++) {
      const byte = offset - FwCfgReg.DmaHigh + i;
      const v = byte < 8 ? Number((FW_CFG_DMA_SIGNATURE >> BigInt(8 * (7 - byte))) & 0xffn) : 0;
      value |= v << (8 * i);
    }
    return value >>> 0;
  }

  /**
   * Bit 14 of a key only asked for write access through the data port
   * (ignored since QEMU 2.4): the item is the key without it; bit 15
   * (architecture-specific) is part of the item's number.
   */
  private select(key: number): void {
    const item = key & 0xffff & ~FW_CFG_WRITE_CHANNEL;
    this.words[SELECTED] = this.items.has(item) ? item : -1;
    this.words[OFFSET] = 0;
  }

  private selected(): Uint8Array | undefined {
    const key = this.words[SELECTED]!;
    return key < 0 ? undefined : this.items.get(key);
  }

  private nextByte(): number {
    const data = this.selected();
    const at = this.words[OFFSET]!;
    if (!data || at >= data.length) return 0;
    this.words[OFFSET] = at + 1;
    return data[at]!;
  }

  /** Runs the transfer described at guest-physical `descriptor`; the lock is held. */
  private dma(descriptor: number): void {
    let desc: DataView;
    try {
      const bytes = this.memory.read(descriptor, FW_CFG_DMA_DESCRIPTOR_SIZE);
      desc = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch {
      // Nowhere to report the error: the descriptor itself is not RAM.
      this.vm?.log('warn', `fw_cfg: DMA descriptor at 0x${descriptor.toString(16)} is not guest RAM; ignored`);
      return;
    }
    const control = desc.getUint32(0);
    let length = desc.getUint32(4);
    let address = Number(desc.getBigUint64(8));
    if (control & FwCfgDma.Select) this.select(control >>> 16);
    const read = (control & FwCfgDma.Read) !== 0;
    const write = !read && (control & FwCfgDma.Write) !== 0;
    const skip = !read && !write && (control & FwCfgDma.Skip) !== 0;
    let error = false;
    if (write) {
      error = length > 0; // no item here is writable
    } else if (read || skip) {
      const data = this.selected();
      while (length > 0 && !error) {
        const at = this.words[OFFSET]!;
        const available = data && at < data.length ? data.length - at : 0;
        // Guest RAM is mapped in pieces aligned to MAX_REGION: a piece of the transfer never crosses one.
        const n = Math.min(length, available > 0 ? available : length, DMA_CHUNK, MAX_REGION - (address % MAX_REGION));
        if (read) error = !this.copyOut(address, available > 0 ? data!.subarray(at, at + n) : null, n);
        if (available > 0) this.words[OFFSET] = at + n;
        address += n;
        length -= n;
      }
    }
    try {
      this.memory.writeU32(descriptor, bswap32(error ? FwCfgDma.Error : 0));
    } catch {
      // checked above: the descriptor is RAM
    }
  }

  /** Writes `bytes` (or `n` zeros past the item's end) at guest-physical `address`; false if that is not RAM. */
  private copyOut(address: number, bytes: Uint8Array | null, n: number): boolean {
    if (!this.memory.contains(address, n)) return false;
    if (bytes) this.memory.write(address, bytes);
    else this.memory.fill(address, n);
    return true;
  }
}
