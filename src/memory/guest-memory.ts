/**
 * Guest RAM as the VMM sees it: SharedArrayBuffers over the same memfd pages
 * KVM maps into the guest. Every access by guest-physical address is
 * bounds-checked: a guest can hand the VMM any address, and it must never
 * make the VMM touch memory outside guest RAM.
 */

export interface MemoryRegion {
  /** Guest-physical address of the first byte. */
  readonly gpa: number;
  readonly buffer: SharedArrayBuffer;
}

/** A guest-physical range that is not (entirely) guest RAM. */
export class GuestMemoryError extends RangeError {
  constructor(
    readonly gpa: number,
    readonly length: number,
  ) {
    super(`guest-physical range 0x${gpa.toString(16)}+0x${length.toString(16)} is not guest RAM`);
    this.name = 'GuestMemoryError';
  }
}

interface Region {
  gpa: number;
  end: number;
  bytes: Uint8Array;
  view: DataView;
}

export class GuestMemory {
  private readonly regions: Region[];
  /** Total bytes of RAM. */
  readonly size: number;

  constructor(regions: readonly MemoryRegion[]) {
    this.regions = regions
      .map((r) => ({ gpa: r.gpa, end: r.gpa + r.buffer.byteLength, bytes: new Uint8Array(r.buffer), view: new DataView(r.buffer) }))
      .sort((a, b) => a.gpa - b.gpa);
    for (let i = 1; i < this.regions.length; i++) {
      if (this.regions[i]!.gpa < this.regions[i - 1]!.end) throw new RangeError('guest memory regions overlap');
    }
    this.size = this.regions.reduce((n, r) => n + (r.end - r.gpa), 0);
  }

  /** The regions, for posting to other threads. */
  descriptors(): MemoryRegion[] {
    return this.regions.map((r) => ({ gpa: r.gpa, buffer: r.bytes.buffer as SharedArrayBuffer }));
  }

  private find(gpa: number, length: number): Region {
    if (!(gpa >= 0) || !(length >= 0) || !Number.isSafeInteger(gpa) || !Number.isSafeInteger(length)) {
      throw new GuestMemoryError(gpa, length);
    }
    for (const r of this.regions) {
      if (gpa >= r.gpa && gpa + length <= r.end) return r;
    }
    throw new GuestMemoryError(gpa, length);
  }

  /** True if [gpa, gpa+length) lies inside one RAM region. */
  contains(gpa: number, length: number): boolean {
    try {
      this.find(gpa, length);
      return true;
    } catch {
      return false;
    }
  }

  /** A live view (no copy) of guest RAM; throws GuestMemoryError if out of range. */
  view(gpa: number, length: number): Uint8Array {
    const r = this.find(gpa, length);
    return r.bytes.subarray(gpa - r.gpa, gpa - r.gpa + length);
  }

  read(gpa: number, length: number): Uint8Array {
    return this.view(gpa, length).slice();
  }

  write(gpa: number, data: Uint8Array): void {
    this.view(gpa, data.length).set(data);
  }

  fill(gpa: number, length: number, value = 0): void {
    this.view(gpa, length).fill(value);
  }

  readU8(gpa: number): number {
    const r = this.find(gpa, 1);
    return r.bytes[gpa - r.gpa]!;
  }

  readU16(gpa: number): number {
    const r = this.find(gpa, 2);
    return r.view.getUint16(gpa - r.gpa, true);
  }

  readU32(gpa: number): number {
    const r = this.find(gpa, 4);
    return r.view.getUint32(gpa - r.gpa, true);
  }

  readU64(gpa: number): bigint {
    const r = this.find(gpa, 8);
    return r.view.getBigUint64(gpa - r.gpa, true);
  }

  writeU8(gpa: number, v: number): void {
    const r = this.find(gpa, 1);
    r.bytes[gpa - r.gpa] = v;
  }

  writeU16(gpa: number, v: number): void {
    const r = this.find(gpa, 2);
    r.view.setUint16(gpa - r.gpa, v, true);
  }

  writeU32(gpa: number, v: number): void {
    const r = this.find(gpa, 4);
    r.view.setUint32(gpa - r.gpa, v >>> 0, true);
  }

  writeU64(gpa: number, v: bigint): void {
    const r = this.find(gpa, 8);
    r.view.setBigUint64(gpa - r.gpa, BigInt.asUintN(64, v), true);
  }
}
