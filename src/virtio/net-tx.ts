import { chainViews } from './chain-io.js';
import { emptyBatch, type NetBatch } from './net-batch.js';
import type { GuestRanges } from './guest-ranges.js';
import { copyFromViews } from './byte-views.js';
import { NET_HDR_SIZE, NetHdr, NetHdrFlag } from './net-header.js';
import { VirtqueueError, type SplitVirtqueue } from './queue.js';

/**
 * The transmit side of one virtio-net queue pair (VIRTIO 1.2, 5.1.6.2):
 * each chain's device-readable part - the virtio-net header, then the
 * frame - goes to the back end as one scatter list of guest-RAM views
 * (writev on a tap: the kernel copies it, no copy here), and the chain is
 * returned at once. A back end that has no room now (a stream socket that
 * is full) keeps the chain for later, which is how a slow peer slows the
 * guest instead of growing a buffer.
 */

export type NetSendResult = 'sent' | 'dropped' | 'busy';

/** A packet sink: the transmit half of a back end. */
export interface NetPacketSink {
  /** Sends one packet (`length` bytes over `views`: header, then frame). 'busy': offer it again once the back end is writable. */
  transmit(views: readonly Uint8Array[], length: number): NetSendResult;
  /** Pushes out what `transmit` buffered; called after each batch. */
  flush?(): void;
}

export interface NetTxResult extends NetBatch {
  /** A packet waits for the back end to become writable. */
  busy: boolean;
}

interface WaitingPacket {
  readonly head: number;
  readonly views: Uint8Array[];
  readonly length: number;
}

export class NetTransmitter {
  private waiting: WaitingPacket | null = null;
  private epoch: number;
  /** The header's flags and gso_type, for the counters. */
  private readonly flags = new Uint8Array(2);

  constructor(
    private readonly q: SplitVirtqueue,
    private readonly ram: GuestRanges,
  ) {
    this.epoch = q.epoch;
  }

  /** Sends up to `budget` packets. Throws VirtqueueError for a malformed ring or transmit chain. */
  transmit(sink: NetPacketSink, budget: number): NetTxResult {
    const r: NetTxResult = { ...emptyBatch(), busy: false };
    if (this.q.epoch !== this.epoch) {
      this.waiting = null;
      this.epoch = this.q.epoch;
    }
    let returned = 0;
    while (r.packets + r.dropped < budget) {
      const p = this.waiting ?? this.next();
      this.waiting = null;
      if (!p) break;
      const sent = sink.transmit(p.views, p.length);
      if (sent === 'busy') {
        this.waiting = p;
        r.busy = true;
        break;
      }
      if (sent === 'sent') {
        r.packets++;
        r.bytes += p.length - NET_HDR_SIZE;
        copyFromViews(p.views, 0, this.flags);
        if (this.flags[NetHdr.GsoType]) r.gso++;
        if (this.flags[NetHdr.Flags]! & NetHdrFlag.NeedsCsum) r.csum++;
      } else r.dropped++;
      const ok = this.q.withLock(() => {
        if (this.q.epoch !== this.epoch || !this.q.ready) return false;
        this.q.push(p.head, 0);
        return true;
      });
      if (!ok) break;
      returned++;
    }
    sink.flush?.();
    if (returned) r.interrupt = this.q.withLock(() => this.q.needsInterrupt());
    return r;
  }

  private next(): WaitingPacket | null {
    const chain = this.q.withLock(() => this.q.pop());
    if (!chain) return null;
    if (chain.readableLength < NET_HDR_SIZE) throw new VirtqueueError(`transmit chain ${chain.head} holds ${chain.readableLength} readable bytes, less than the ${NET_HDR_SIZE}-byte header`);
    return { head: chain.head, views: chainViews(this.ram, chain.readable, 0, chain.readableLength), length: chain.readableLength };
  }
}
