/**
 * Framing of the GDB remote serial protocol (GDB manual, "Remote Protocol",
 * "Overview"): a packet is `$` payload `#` and two hex digits of the
 * payload's byte sum modulo 256; the receiver answers `+` (or `-` to have it
 * sent again) until both sides agree on QStartNoAckMode; a lone 0x03 byte
 * between packets is an interrupt (Ctrl-C). In binary data `}` escapes the
 * next byte, which is sent XOR 0x20; `#`, `$`, `}` and `*` must be escaped.
 */

export type GdbInput =
  | { kind: 'packet'; payload: Buffer }
  /** A packet whose checksum did not match (answer `-` in ack mode). */
  | { kind: 'corrupt' }
  | { kind: 'interrupt' }
  | { kind: 'ack' }
  | { kind: 'nak' };

const DOLLAR = 0x24;
const HASH = 0x23;
const ESCAPE = 0x7d;
const STAR = 0x2a;
const CTRL_C = 0x03;

export function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i++) sum += bytes[i]!;
  return sum & 0xff;
}

/** A packet ready to send. */
export function frame(payload: string | Uint8Array): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : Buffer.from(payload);
  return Buffer.concat([Buffer.from([DOLLAR]), body, Buffer.from(`#${checksum(body).toString(16).padStart(2, '0')}`, 'latin1')]);
}

/** Binary data with the protocol's escapes applied (X packets, qXfer replies). */
export function escapeBinary(data: Uint8Array): Buffer {
  let extra = 0;
  for (const b of data) if (b === DOLLAR || b === HASH || b === ESCAPE || b === STAR) extra++;
  const out = Buffer.alloc(data.length + extra);
  let j = 0;
  for (const b of data) {
    if (b === DOLLAR || b === HASH || b === ESCAPE || b === STAR) {
      out[j++] = ESCAPE;
      out[j++] = b ^ 0x20;
    } else out[j++] = b;
  }
  return out;
}

/** Undoes `escapeBinary`; a trailing lone `}` is dropped. */
export function unescapeBinary(data: Uint8Array): Buffer {
  const out = Buffer.alloc(data.length);
  let j = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== ESCAPE) out[j++] = data[i]!;
    else if (i + 1 < data.length) out[j++] = data[++i]! ^ 0x20;
  }
  return out.subarray(0, j);
}

/**
 * Cuts the byte stream from gdb into inputs. Bytes outside packets other
 * than `+`, `-` and 0x03 are ignored; a packet longer than `maxPayload` is
 * reported corrupt rather than buffered without bound.
 */
export class PacketDecoder {
  private state: 'idle' | 'body' | 'sum' = 'idle';
  private body: number[] = [];
  private sum = '';
  private tooLong = false;

  constructor(private readonly maxPayload: number) {}

  push(chunk: Uint8Array): GdbInput[] {
    const out: GdbInput[] = [];
    for (const b of chunk) {
      switch (this.state) {
        case 'idle':
          if (b === DOLLAR) {
            this.state = 'body';
            this.body = [];
            this.tooLong = false;
          } else if (b === CTRL_C) out.push({ kind: 'interrupt' });
          else if (b === 0x2b) out.push({ kind: 'ack' });
          else if (b === 0x2d) out.push({ kind: 'nak' });
          break;
        case 'body':
          if (b === HASH) {
            this.state = 'sum';
            this.sum = '';
          } else if (this.body.length < this.maxPayload) this.body.push(b);
          else this.tooLong = true;
          break;
        case 'sum':
          this.sum += String.fromCharCode(b);
          if (this.sum.length === 2) {
            this.state = 'idle';
            out.push(this.finish());
          }
          break;
      }
    }
    return out;
  }

  private finish(): GdbInput {
    const payload = Buffer.from(this.body);
    if (this.tooLong || !/^[0-9a-fA-F]{2}$/.test(this.sum) || parseInt(this.sum, 16) !== checksum(payload)) return { kind: 'corrupt' };
    return { kind: 'packet', payload };
  }
}
