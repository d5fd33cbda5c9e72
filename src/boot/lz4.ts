/**
 * LZ4 "legacy" frame decoding (what Linux's `lz4 -l` produces for
 * CONFIG_KERNEL_LZ4): magic 0x184C2102, then blocks of [u32 compressed
 * size][LZ4 block], each expanding to at most 8 MiB. Lets the VMM unpack a
 * bzImage payload itself instead of running the kernel's decompressor in
 * emulated ring 0.
 */
const LEGACY_MAGIC = 0x184c2102;
const MAX_BLOCK = 8 << 20;

export class Lz4Error extends Error {
  constructor(message: string) {
    super(`LZ4: ${message}`);
    this.name = 'Lz4Error';
  }
}

export const isLz4Legacy = (b: Uint8Array): boolean =>
  b.length >= 4 && new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true) === LEGACY_MAGIC;

/**
 * Decodes a legacy frame. `expectedSize`, when known (the kernel appends it),
 * sizes the output once and bounds every write.
 */
export function decodeLz4Legacy(input: Uint8Array, expectedSize?: number): Uint8Array {
  const dv = new DataView(input.buffer, input.byteOffset, input.byteLength);
  if (!isLz4Legacy(input)) throw new Lz4Error('not a legacy frame (bad magic)');
  const chunks: Uint8Array[] = [];
  let total = 0;
  let at = 4;
  while (at + 4 <= input.length) {
    const size = dv.getUint32(at, true);
    if (size === LEGACY_MAGIC) {
      at += 4; // concatenated frames
      continue;
    }
    if (at + 4 + size > input.length) break; // trailing bytes (e.g. the appended size)
    const block = new Uint8Array(MAX_BLOCK);
    const n = decodeBlock(input.subarray(at + 4, at + 4 + size), block);
    chunks.push(block.subarray(0, n));
    total += n;
    at += 4 + size;
    if (expectedSize !== undefined && total >= expectedSize) break;
  }
  if (expectedSize !== undefined && total !== expectedSize) throw new Lz4Error(`decoded ${total} bytes, expected ${expectedSize}`);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/** Decodes one LZ4 block into `out`; returns the decoded length. */
export function decodeBlock(src: Uint8Array, out: Uint8Array): number {
  let s = 0;
  let o = 0;
  while (s < src.length) {
    const token = src[s++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (s >= src.length) throw new Lz4Error('truncated literal length');
        b = src[s++]!;
        lit += b;
      } while (b === 255);
    }
    if (s + lit > src.length || o + lit > out.length) throw new Lz4Error('literals run past the end of a block');
    out.set(src.subarray(s, s + lit), o);
    s += lit;
    o += lit;
    if (s >= src.length) break; // the last sequence has literals only
    if (s + 2 > src.length) throw new Lz4Error('truncated match offset');
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > o) throw new Lz4Error(`match offset ${offset} points before the output`);
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (s >= src.length) throw new Lz4Error('truncated match length');
        b = src[s++]!;
        len += b;
      } while (b === 255);
    }
    if (o + len > out.length) throw new Lz4Error('match runs past the end of a block');
    let from = o - offset;
    // Overlapping copies repeat the pattern, byte by byte.
    if (offset >= len) {
      out.copyWithin(o, from, from + len);
      o += len;
    } else {
      for (let i = 0; i < len; i++) out[o++] = out[from++]!;
    }
  }
  return o;
}
