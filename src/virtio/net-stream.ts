import { native } from '../kvm/addon.js';
import { errnoCode } from '../kvm/errors.js';
import { copyFromViews, copyToViews } from './byte-views.js';
import { NET_HDR_SIZE } from './net-header.js';
import type { NetPacketSource } from './net-rx.js';
import type { NetPacketSink, NetSendResult } from './net-tx.js';

/**
 * A back end that carries plain Ethernet frames over a stream socket in
 * QEMU's "stream" netdev framing - each frame preceded by its length as a
 * 4-byte big-endian number - which is what passt speaks. No offloads cross
 * it, so received packets get an all-zero virtio-net header and sent ones
 * lose theirs. Incoming bytes are read in large chunks and split into
 * frames here; outgoing frames are gathered and written per batch, and
 * when the socket is full the transmit queue waits (`busy`) until it
 * drains.
 */

const LENGTH_BYTES = 4;
/** The shortest frame that makes sense (an Ethernet header) and the longest a 16-bit IP length allows. */
export const STREAM_MIN_FRAME = 14;
export const STREAM_MAX_FRAME = 65535 + 18;
const IN_BYTES = 256 * 1024;
const OUT_BYTES = 512 * 1024;

export class StreamPacketIo implements NetPacketSource, NetPacketSink {
  /** The peer closed the socket, failed, or broke the framing. */
  gone = false;
  /** Why it is gone, for the log; empty when the peer closed the connection (its exit is reported where it is watched). */
  why = '';
  private readonly inBuf = new Uint8Array(IN_BYTES);
  private inStart = 0;
  private inEnd = 0;
  private readonly outBuf = new Uint8Array(OUT_BYTES);
  private outStart = 0;
  private outEnd = 0;
  private readonly zeroHeader = new Uint8Array(NET_HDR_SIZE);

  /** `fd`: a connected stream socket, which this sets non-blocking. */
  constructor(readonly fd: number) {
    native.setNonBlocking(fd, true);
  }

  /** Bytes accepted from the guest and not yet written to the socket. */
  get pendingOutput(): number {
    return this.outEnd - this.outStart;
  }

  receive(views: readonly Uint8Array[]): number {
    if (this.gone) return -1;
    let frame = this.nextFrame();
    if (!frame && !this.gone) {
      this.fill();
      frame = this.nextFrame();
    }
    if (!frame) return this.gone ? -1 : 0;
    copyToViews(views, 0, this.zeroHeader);
    copyToViews(views, NET_HDR_SIZE, frame);
    return NET_HDR_SIZE + frame.length;
  }

  transmit(views: readonly Uint8Array[], length: number): NetSendResult {
    const frame = length - NET_HDR_SIZE;
    if (this.gone || frame < STREAM_MIN_FRAME || frame > STREAM_MAX_FRAME) return 'dropped';
    const need = LENGTH_BYTES + frame;
    if (OUT_BYTES - this.outEnd < need) {
      this.flush();
      if (this.gone) return 'dropped';
      if (this.outStart > 0) {
        this.outBuf.copyWithin(0, this.outStart, this.outEnd);
        this.outEnd -= this.outStart;
        this.outStart = 0;
      }
      if (OUT_BYTES - this.outEnd < need) return 'busy';
    }
    new DataView(this.outBuf.buffer).setUint32(this.outEnd, frame, false);
    copyFromViews(views, NET_HDR_SIZE, this.outBuf.subarray(this.outEnd + LENGTH_BYTES, this.outEnd + need));
    this.outEnd += need;
    return 'sent';
  }

  /** Writes what it can of the gathered frames; the rest waits for the socket to become writable. */
  flush(): void {
    while (this.outStart < this.outEnd && !this.gone) {
      const n = this.io(() => native.writev(this.fd, [this.outBuf.subarray(this.outStart, this.outEnd)]));
      if (n <= 0) break;
      this.outStart += n;
    }
    if (this.outStart === this.outEnd) this.outStart = this.outEnd = 0;
  }

  /** The next whole frame already read, or null. */
  private nextFrame(): Uint8Array | null {
    const have = this.inEnd - this.inStart;
    if (have < LENGTH_BYTES) return null;
    const len = new DataView(this.inBuf.buffer).getUint32(this.inStart, false);
    if (len < STREAM_MIN_FRAME || len > STREAM_MAX_FRAME) {
      // A stream cannot be resynchronised after a bad length.
      this.lose(`the peer sent a frame length of ${len}`);
      return null;
    }
    if (have < LENGTH_BYTES + len) return null;
    const frame = this.inBuf.subarray(this.inStart + LENGTH_BYTES, this.inStart + LENGTH_BYTES + len);
    this.inStart += LENGTH_BYTES + len;
    return frame;
  }

  /** Reads what the socket has into the input buffer (moving a partial frame to its start first). */
  private fill(): void {
    if (this.inStart > 0) {
      this.inBuf.copyWithin(0, this.inStart, this.inEnd);
      this.inEnd -= this.inStart;
      this.inStart = 0;
    }
    if (this.inEnd === IN_BYTES) return;
    const n = this.io(() => native.readv(this.fd, [this.inBuf.subarray(this.inEnd)]));
    if (n === 0) this.lose('');
    else if (n > 0) this.inEnd += n;
  }

  /** Runs a read or write: bytes moved, -1 for "try later", and errors that end the connection mark it gone. */
  private io(op: () => number): number {
    try {
      const n = op();
      return n < 0 ? -1 : n;
    } catch (e) {
      this.lose(`${errnoCode(e) ?? 'error'}: ${(e as Error).message}`);
      return -1;
    }
  }

  private lose(why: string): void {
    if (this.gone) return;
    this.gone = true;
    this.why = why && `the user-mode network peer failed: ${why}`;
  }
}
