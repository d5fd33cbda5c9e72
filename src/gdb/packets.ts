/**
 * The GDB remote serial protocol's framing (GDB manual, "Overview" of the
 * remote protocol): packets `$data#cc` where cc is the modulo-256 sum of
 * data in two hex digits, `+`/`-` acknowledgements (until
 * QStartNoAckMode), and a bare 0x03 byte outside a packet for an
 * interrupt (Ctrl-C in gdb). Binary data escapes `#`, `$`, `}` and `*` as
 * `}` followed by the byte XOR 0x20.
 */

export type FrameEvent = { kind: 'packet'; data: Buffer } | { kind: 'interrupt' } | { kind: 'ack' } | { kind: 'nack' } | { kind: 'bad-checksum'; data: Buffer };

/** Longest packet accepted; gdb is told this size in qSupported (PacketSize). */
export const MAX_PACKET = 64 * 1024;

export function checksum(data: Uint8Array): number {
  let sum = 0;
  for (const b of data) sum = (sum + b) & 0xff;
  return sum;
}

/** `$data#cc` for sending. */
export function encodePacket(data: string | Uint8Array): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'latin1') : Buffer.from(data);
  return Buffer.concat([Buffer.from('$'), body, Buffer.from(`#${checksum(body).toString(16).padStart(2, '0')}`)]);
}

const ESCAPED = new Set([0x23, 0x24, 0x7d, 0x2a]);

/** Escapes binary data for a packet (X packets, qXfer replies). */
export function escapeBinary(data: Uint8Array): Buffer {
  const out: number[] = [];
  for (const b of data) {
    if (ESCAPED.has(b)) out.push(0x7d, b ^ 0x20);
    else out.push(b);
  }
  return Buffer.from(out);
}

/** Undoes escapeBinary. */
export function unescapeBinary(data: Uint8Array): Buffer {
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0x7d && i + 1 < data.length) out.push(data[++i]! ^ 0x20);
    else out.push(data[i]!);
  }
  return Buffer.from(out);
}

/**
 * Splits a byte stream from gdb into events. Oversized packets are
 * dropped (answered with a nack by the caller), never buffered without
 * bound.
 */
export class PacketReader {
  private state: 'idle' | 'data' | 'sum1' | 'sum2' = 'idle';
  private data: number[] = [];
  private sumText = '';
  private overflow = false;

  feed(chunk: Uint8Array): FrameEvent[] {
    const events: FrameEvent[] = [];
    for (const b of chunk) {
      switch (this.state) {
        case 'idle':
          if (b === 0x24) {
            this.state = 'data';
            this.data = [];
            this.overflow = false;
          } else if (b === 0x03) events.push({ kind: 'interrupt' });
          else if (b === 0x2b) events.push({ kind: 'ack' });
          else if (b === 0x2d) events.push({ kind: 'nack' });
          break;
        case 'data':
          if (b === 0x23) {
            this.state = 'sum1';
            this.sumText = '';
          } else if (this.data.length < MAX_PACKET) this.data.push(b);
          else this.overflow = true;
          break;
        case 'sum1':
          this.sumText = String.fromCharCode(b);
          this.state = 'sum2';
          break;
        case 'sum2': {
          this.sumText += String.fromCharCode(b);
          this.state = 'idle';
          const data = Buffer.from(this.data);
          const ok = /^[0-9a-fA-F]{2}$/.test(this.sumText) && parseInt(this.sumText, 16) === checksum(data);
          events.push(ok && !this.overflow ? { kind: 'packet', data } : { kind: 'bad-checksum', data });
          break;
        }
      }
    }
    return events;
  }
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

/** Bytes of a hex string; undefined if it is not one. */
export function fromHex(text: string): Buffer | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  return Buffer.from(text, 'hex');
}

/** A little-endian value of `bytes` bytes as gdb's register hex. */
export function leHex(value: bigint, bytes: number): string {
  const b = Buffer.alloc(bytes);
  let v = BigInt.asUintN(bytes * 8, value);
  for (let i = 0; i < bytes; i++) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b.toString('hex');
}

export function parseLeHex(text: string): bigint | undefined {
  const b = fromHex(text);
  if (!b) return undefined;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}
