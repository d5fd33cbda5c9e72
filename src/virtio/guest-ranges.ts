import { GuestMemory, GuestMemoryError } from '../memory/guest-memory.js';

/**
 * Guest buffers as views of guest RAM. A virtqueue buffer is a guest-physical
 * range that may straddle two RAM regions (regions are split every 2 GiB,
 * see src/memory/layout.ts), which `GuestMemory.view` alone refuses; this
 * cuts such a range at region boundaries and asks `GuestMemory` for each
 * piece, so every byte is still reached only through its bounds checks.
 */
export class GuestRanges {
  private readonly bounds: ReadonlyArray<{ gpa: number; end: number }>;

  constructor(readonly memory: GuestMemory) {
    this.bounds = memory
      .descriptors()
      .map((r) => ({ gpa: r.gpa, end: r.gpa + r.buffer.byteLength }))
      .sort((a, b) => a.gpa - b.gpa);
  }

  /** True if every byte of [gpa, gpa+length) is guest RAM. */
  contains(gpa: number, length: number): boolean {
    if (!Number.isSafeInteger(gpa) || !Number.isSafeInteger(length) || gpa < 0 || length < 0) return false;
    let at = gpa;
    const end = gpa + length;
    while (at < end) {
      const r = this.bounds.find((b) => at >= b.gpa && at < b.end);
      if (!r) return false;
      at = r.end;
    }
    return true;
  }

  /** Live views covering [gpa, gpa+length) in order; throws GuestMemoryError unless all of it is RAM. */
  views(gpa: number, length: number): Uint8Array[] {
    if (!this.contains(gpa, length)) throw new GuestMemoryError(gpa, length);
    const out: Uint8Array[] = [];
    let at = gpa;
    const end = gpa + length;
    while (at < end) {
      const r = this.bounds.find((b) => at >= b.gpa && at < b.end)!;
      const n = Math.min(end, r.end) - at;
      out.push(this.memory.view(at, n));
      at += n;
    }
    return out;
  }
}
