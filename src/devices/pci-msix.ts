import { defineLayout, i32, loadState, mutex, saveState, type SavedState } from '../sync/state-layout.js';
import type { AccessSize } from './device.js';
import type { MsiSink } from './msi-sink.js';
import type { PciCapability, PciConfigSpace } from './pci-config.js';
import { Mutex } from '../sync/mutex.js';

/**
 * MSI-X (PCI Local Bus Specification 3.0, 6.8.2): the capability in
 * configuration space, and the vector table and pending-bit array (PBA)
 * that live in a memory BAR. The table and PBA are shared memory behind
 * one mutex, so any thread may signal a vector while a vCPU reprograms it.
 *
 * A vector fires only when MSI-X is enabled and neither the function mask
 * (message control bit 14) nor the vector's own mask bit is set; otherwise
 * its pending bit is set and the message goes out when the mask clears.
 */

export const PCI_CAP_ID_MSIX = 0x11;
export const MsixControl = { TableSizeMask: 0x07ff, FunctionMask: 0x4000, Enable: 0x8000 } as const;
/** Bytes per table entry: address low, address high, data, vector control. */
export const MSIX_ENTRY_SIZE = 16;
const VECTOR_MASKED = 1;
export const MSIX_MAX_VECTORS = 2048;

export interface MsixState {
  readonly regs: SharedArrayBuffer;
  readonly vectors: number;
}

/** The lock, then the table (4 words per vector), then the PBA (a bit per vector). */
export function msixLayout(vectors: number) {
  return defineLayout('msix', 1, { lock: mutex(), reserved: i32(3), table: i32(4 * vectors), pba: i32(Math.ceil(vectors / 32) + 1) });
}
const { lock: LOCK, table: TABLE } = msixLayout(1).at;

/** Where the table and the PBA sit: BAR index and offset (8-byte aligned). */
export interface MsixPlacement {
  readonly tableBar: number;
  readonly tableOffset: number;
  readonly pbaBar: number;
  readonly pbaOffset: number;
}

export class MsixTable {
  private readonly words: Int32Array;
  private readonly lock: Mutex;
  readonly vectors: number;
  private readonly pba: number;

  static allocate(vectors: number): MsixState {
    if (!Number.isInteger(vectors) || vectors < 1 || vectors > MSIX_MAX_VECTORS) throw new RangeError(`an MSI-X table has 1-${MSIX_MAX_VECTORS} vectors (got ${vectors})`);
    const regs = msixLayout(vectors).allocate();
    const w = new Int32Array(regs);
    // Every vector starts masked (6.8.2.9).
    for (let v = 0; v < vectors; v++) w[TABLE + 4 * v + 3] = VECTOR_MASKED;
    return { regs, vectors };
  }

  static save(state: MsixState): SavedState {
    return saveState(msixLayout(state.vectors), state.regs);
  }

  static load(state: MsixState, saved: SavedState): void {
    loadState(msixLayout(state.vectors), state.regs, saved);
  }

  /** The capability's bytes after ID and next pointer: message control, table and PBA offset/BIR. */
  static capability(vectors: number, p: MsixPlacement): PciCapability {
    const control = (vectors - 1) & MsixControl.TableSizeMask;
    const table = (p.tableOffset | p.tableBar) >>> 0;
    const pba = (p.pbaOffset | p.pbaBar) >>> 0;
    const bytes = [control & 0xff, control >> 8, ...le32(table), ...le32(pba)];
    // Only Enable and Function Mask (control bits 15 and 14) are writable.
    return { id: PCI_CAP_ID_MSIX, body: bytes, writable: [0, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0] };
  }

  constructor(
    state: MsixState,
    private readonly config: PciConfigSpace,
    /** Offset of the capability in configuration space. */
    private readonly capOffset: number,
    private readonly sink: MsiSink | undefined,
  ) {
    this.words = new Int32Array(state.regs);
    this.lock = new Mutex(this.words, LOCK);
    this.vectors = state.vectors;
    this.pba = TABLE + 4 * state.vectors;
  }

  /** Message control as the guest last wrote it. */
  control(): number {
    return this.config.configRead(this.capOffset + 2, 2);
  }

  enabled(): boolean {
    return (this.control() & MsixControl.Enable) !== 0;
  }

  tableRead(offset: number, size: AccessSize): number {
    if (offset + size > this.vectors * MSIX_ENTRY_SIZE) return 0;
    return this.lock.with(() => readBytes(this.words, TABLE * 4 + offset, size));
  }

  tableWrite(offset: number, size: AccessSize, value: number): void {
    if (offset + size > this.vectors * MSIX_ENTRY_SIZE) return;
    this.lock.with(() => {
      writeBytes(this.words, TABLE * 4 + offset, size, value);
      // Only the mask bit of vector control is defined; the rest is reserved.
      const v = Math.floor(offset / MSIX_ENTRY_SIZE);
      this.words[TABLE + 4 * v + 3]! &= VECTOR_MASKED;
    });
    this.deliverPending();
  }

  pbaRead(offset: number, size: AccessSize): number {
    if (offset + size > Math.ceil(this.vectors / 64) * 8) return 0;
    return this.lock.with(() => readBytes(this.words, this.pba * 4 + offset, size));
  }

  /** Raises `vector`: the message now, or its pending bit while masked. Out-of-range vectors are ignored. */
  notify(vector: number): void {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.vectors) return;
    const control = this.control();
    const message = this.lock.with(() => {
      const e = TABLE + 4 * vector;
      if (!(control & MsixControl.Enable)) return null;
      if (control & MsixControl.FunctionMask || this.words[e + 3]! & VECTOR_MASKED) {
        this.words[this.pba + (vector >> 5)]! |= 1 << (vector & 31);
        return null;
      }
      return [this.words[e]! >>> 0, this.words[e + 1]! >>> 0, this.words[e + 2]! >>> 0] as const;
    });
    if (message) this.sink?.signal(message[0], message[1], message[2]);
  }

  /** Sends what is pending and no longer masked (after a table or message control write). */
  deliverPending(): void {
    const control = this.control();
    if (!(control & MsixControl.Enable) || control & MsixControl.FunctionMask) return;
    const messages = this.lock.with(() => {
      const out: Array<readonly [number, number, number]> = [];
      for (let v = 0; v < this.vectors; v++) {
        const bit = 1 << (v & 31);
        const e = TABLE + 4 * v;
        if (!(this.words[this.pba + (v >> 5)]! & bit) || this.words[e + 3]! & VECTOR_MASKED) continue;
        this.words[this.pba + (v >> 5)]! &= ~bit;
        out.push([this.words[e]! >>> 0, this.words[e + 1]! >>> 0, this.words[e + 2]! >>> 0]);
      }
      return out;
    });
    for (const m of messages) this.sink?.signal(m[0], m[1], m[2]);
  }

  /** Function reset: every vector masked, nothing pending. */
  reset(): void {
    this.lock.with(() => {
      for (let i = TABLE; i < this.words.length; i++) this.words[i] = 0;
      for (let v = 0; v < this.vectors; v++) this.words[TABLE + 4 * v + 3] = VECTOR_MASKED;
    });
  }
}

function le32(v: number): number[] {
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
}

function readBytes(w: Int32Array, byteOffset: number, size: number): number {
  const b = new Uint8Array(w.buffer);
  let value = 0;
  for (let i = size - 1; i >= 0; i--) value = value * 256 + b[byteOffset + i]!;
  return value;
}

function writeBytes(w: Int32Array, byteOffset: number, size: number, value: number): void {
  const b = new Uint8Array(w.buffer);
  for (let i = 0; i < size; i++) b[byteOffset + i] = (value >>> (8 * i)) & 0xff;
}
