/**
 * Little-endian byte assembly for firmware tables and boot structures, and
 * the 8-bit checksum that MP and ACPI tables share (every byte of the
 * covered range, checksum included, sums to 0 modulo 256).
 */

/** A growable little-endian byte buffer; `patch*` rewrite bytes already written. */
export class ByteWriter {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initialCapacity = 256) {
    this.buf = new Uint8Array(Math.max(16, initialCapacity));
    this.view = new DataView(this.buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.len;
  }

  /** Makes room for `n` more bytes and returns where they start (read `buf`/`view` only after calling it: it may replace them). */
  private reserve(n: number): number {
    const at = this.len;
    if (at + n > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, at + n));
      bigger.set(this.buf.subarray(0, at));
      this.buf = bigger;
      this.view = new DataView(bigger.buffer);
    }
    this.len += n;
    return at;
  }

  u8(v: number): this {
    checkUint(v, 0xff, 'u8');
    const at = this.reserve(1);
    this.buf[at] = v;
    return this;
  }

  u16(v: number): this {
    checkUint(v, 0xffff, 'u16');
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
    return this;
  }

  u32(v: number): this {
    checkUint(v, 0xffffffff, 'u32');
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
    return this;
  }

  u64(v: number | bigint): this {
    const big = BigInt(v);
    if (big < 0n || big > 0xffffffffffffffffn) throw new RangeError(`u64 out of range: ${v}`);
    const at = this.reserve(8);
    this.view.setBigUint64(at, big, true);
    return this;
  }

  bytes(data: Uint8Array): this {
    const at = this.reserve(data.length);
    this.buf.set(data, at);
    return this;
  }

  zeros(n: number): this {
    const at = this.reserve(n);
    this.buf.fill(0, at, this.len);
    return this;
  }

  /** `text` as ASCII, padded with `pad` (or truncated) to exactly `width` bytes. */
  ascii(text: string, width: number, pad = 0x20): this {
    this.bytes(asciiField(text, width, pad));
    return this;
  }

  /** Zero bytes up to the next multiple of `alignment`. */
  align(alignment: number): this {
    const rem = this.len % alignment;
    if (rem !== 0) this.zeros(alignment - rem);
    return this;
  }

  patchU8(offset: number, v: number): void {
    checkUint(v, 0xff, 'u8');
    this.checkPatch(offset, 1);
    this.buf[offset] = v;
  }

  patchU16(offset: number, v: number): void {
    checkUint(v, 0xffff, 'u16');
    this.checkPatch(offset, 2);
    this.view.setUint16(offset, v, true);
  }

  patchU32(offset: number, v: number): void {
    checkUint(v, 0xffffffff, 'u32');
    this.checkPatch(offset, 4);
    this.view.setUint32(offset, v, true);
  }

  private checkPatch(offset: number, n: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + n > this.len) {
      throw new RangeError(`patch at ${offset}+${n} is outside the ${this.len} bytes written`);
    }
  }

  /** A copy of the bytes written. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} out of range: ${v}`);
}

/** `text` as a fixed-width ASCII field (OEM IDs, bus type strings...). Non-ASCII is rejected. */
export function asciiField(text: string, width: number, pad = 0x20): Uint8Array {
  const out = new Uint8Array(width).fill(pad);
  for (let i = 0; i < Math.min(text.length, width); i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7e || c < 0x20) throw new RangeError(`"${text}" is not printable ASCII`);
    out[i] = c;
  }
  return out;
}

/** Sum of `bytes[start..end)` modulo 256. */
export function sum8(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let s = 0;
  for (let i = start; i < end; i++) s = (s + bytes[i]!) & 0xff;
  return s;
}

/**
 * Stores at `bytes[at]` the value that makes `bytes[start..end)` sum to 0
 * modulo 256 (MP spec 1.4 §4.1/§4.2, ACPI 6.x §5.2.5.3/§5.2.6); the byte at
 * `at` must lie in the range and is counted as 0 while summing.
 */
export function setChecksum8(bytes: Uint8Array, at: number, start = 0, end = bytes.length): void {
  if (at < start || at >= end) throw new RangeError('checksum byte outside the range it covers');
  bytes[at] = 0;
  bytes[at] = (0x100 - sum8(bytes, start, end)) & 0xff;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

export function alignDown(value: number, alignment: number): number {
  return Math.floor(value / alignment) * alignment;
}

export function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}
