/**
 * Exit profile: how many exits each port, MMIO address and other exit
 * reason caused, and how long the VMM took to handle the port and MMIO
 * ones, per vCPU, in shared memory so that any thread can read it while the
 * VM runs. Off unless asked for (VmOptions `exitProfile`): recording costs
 * two clock reads and a hash-table probe per exit.
 *
 * Each vCPU owns a table of SLOTS entries (open addressing, linear probing)
 * that only its thread writes. An entry is a key, a count, VMM nanoseconds,
 * and the name of the device that answered (written once, when the entry is
 * made). Once a table is full, new keys are counted in its last slot as
 * "other".
 */

/** What an exit was. */
export const ExitKind = { PioIn: 0, PioOut: 1, MmioRead: 2, MmioWrite: 3, Other: 4, Overflow: 5 } as const;
export type ExitKind = (typeof ExitKind)[keyof typeof ExitKind];
const KIND_NAMES = ['pio-in', 'pio-out', 'mmio-read', 'mmio-write', 'exit', 'other'] as const;
export type ExitKindName = (typeof KIND_NAMES)[number];

const SLOTS = 512;
const F64_PER_SLOT = 3; // key, count, ns
const NAME_BYTES = 16;
const TABLE_BYTES = SLOTS * (F64_PER_SLOT * 8 + NAME_BYTES);

/** One row of a profile: an address (or exit reason) and what it cost. */
export interface ExitProfileEntry {
  kind: ExitKindName;
  /** Port, guest-physical MMIO address, or (kind "exit") the KVM exit reason number. */
  address: number;
  /** The device that answered (port and MMIO), or the exit reason's name. */
  device: string;
  exits: number;
  /** Nanoseconds the VMM spent handling them (port and MMIO only; 0 otherwise). */
  vmmNs: number;
}

/** Shared tables for `vcpus` vCPUs. */
export function allocateExitProfile(vcpus: number): SharedArrayBuffer {
  return new SharedArrayBuffer(vcpus * TABLE_BYTES);
}

/** The key for (kind, address): 0 marks an empty slot. Addresses up to 2^49 stay exact. */
const keyOf = (kind: number, address: number): number => address * 8 + kind + 1;

/** One vCPU's recorder (its own thread only). */
export class ExitProfileRecorder {
  private readonly f64: Float64Array;
  private readonly names: Uint8Array;

  constructor(buffer: SharedArrayBuffer, vcpu: number) {
    this.f64 = new Float64Array(buffer, vcpu * TABLE_BYTES, SLOTS * F64_PER_SLOT);
    this.names = new Uint8Array(buffer, vcpu * TABLE_BYTES + SLOTS * F64_PER_SLOT * 8, SLOTS * NAME_BYTES);
  }

  /** Counts one exit; `name` is asked for only when the entry is new. */
  record(kind: ExitKind, address: number, ns: number, name: () => string): void {
    const key = keyOf(kind, address);
    const f = this.f64;
    const mask = SLOTS - 2; // the last slot is the overflow
    let i = (Math.imul((address | 0) ^ ((address / 0x100000000) | 0) ^ (kind << 28), 0x9e3779b1) >>> 0) % (SLOTS - 1);
    for (let probes = 0; probes <= mask; probes++, i = i === mask ? 0 : i + 1) {
      const at = i * F64_PER_SLOT;
      const k = f[at]!;
      if (k === key) {
        f[at + 1]! += 1;
        f[at + 2]! += ns;
        return;
      }
      if (k === 0) {
        this.setName(i, name());
        f[at + 1] = 1;
        f[at + 2] = ns;
        f[at] = key; // last: a reader that sees the key sees a complete entry
        return;
      }
    }
    const at = (SLOTS - 1) * F64_PER_SLOT;
    f[at + 1]! += 1;
    f[at + 2]! += ns;
    f[at] = keyOf(ExitKind.Overflow, 0);
  }

  private setName(slot: number, name: string): void {
    const bytes = Buffer.from(name, 'latin1').subarray(0, NAME_BYTES);
    this.names.fill(0, slot * NAME_BYTES, (slot + 1) * NAME_BYTES);
    this.names.set(bytes, slot * NAME_BYTES);
  }
}

/** Every vCPU's entries merged by kind and address, most exits first (any thread, any time). */
export function readExitProfile(buffer: SharedArrayBuffer, vcpus: number): ExitProfileEntry[] {
  const merged = new Map<number, ExitProfileEntry>();
  for (let v = 0; v < vcpus; v++) {
    const f = new Float64Array(buffer, v * TABLE_BYTES, SLOTS * F64_PER_SLOT);
    const names = new Uint8Array(buffer, v * TABLE_BYTES + SLOTS * F64_PER_SLOT * 8, SLOTS * NAME_BYTES);
    for (let i = 0; i < SLOTS; i++) {
      const key = f[i * F64_PER_SLOT]!;
      if (key === 0) continue;
      const exits = f[i * F64_PER_SLOT + 1]!;
      const vmmNs = f[i * F64_PER_SLOT + 2]!;
      const e = merged.get(key);
      if (e) {
        e.exits += exits;
        e.vmmNs += vmmNs;
        continue;
      }
      const kind = (key - 1) % 8;
      const raw = names.subarray(i * NAME_BYTES, (i + 1) * NAME_BYTES);
      const end = raw.indexOf(0);
      merged.set(key, {
        kind: KIND_NAMES[kind] ?? 'other',
        address: (key - 1 - kind) / 8,
        device: Buffer.from(end < 0 ? raw : raw.subarray(0, end)).toString('latin1'),
        exits,
        vmmNs,
      });
    }
  }
  return [...merged.values()].sort((a, b) => b.exits - a.exits || a.address - b.address);
}
