import type { GuestRanges } from './guest-ranges.js';
import type { VirtqBuffer } from './queue.js';

/**
 * Copies between device data and the buffers of a validated chain. Offsets
 * are into the concatenation of `buffers`; every byte goes through
 * `GuestRanges`, i.e. `GuestMemory`'s bounds checks.
 */

/** Live views of bytes [offset, offset+length) of `buffers` (fewer bytes if the buffers end first). */
export function chainViews(ram: GuestRanges, buffers: readonly VirtqBuffer[], offset: number, length: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = offset;
  let want = length;
  for (const b of buffers) {
    if (want <= 0) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const n = Math.min(b.len - skip, want);
    out.push(...ram.views(b.addr + skip, n));
    want -= n;
    skip = 0;
  }
  return out;
}

/** Bytes [offset, offset+length) of `buffers`, copied (shorter if the buffers end first). */
export function readChain(ram: GuestRanges, buffers: readonly VirtqBuffer[], offset: number, length: number): Uint8Array {
  const views = chainViews(ram, buffers, offset, length);
  const out = new Uint8Array(views.reduce((n, v) => n + v.length, 0));
  let at = 0;
  for (const v of views) {
    out.set(v, at);
    at += v.length;
  }
  return out;
}

/** Writes `data` at `offset` of `buffers`; returns how many bytes fitted. */
export function writeChain(ram: GuestRanges, buffers: readonly VirtqBuffer[], offset: number, data: Uint8Array): number {
  let at = 0;
  for (const v of chainViews(ram, buffers, offset, data.length)) {
    v.set(data.subarray(at, at + v.length));
    at += v.length;
  }
  return at;
}
