import { chainViews } from './chain-io.js';
import { emptyBatch, type NetBatch } from './net-batch.js';
import { copyFromViews, copyToViews } from './byte-views.js';
import type { GuestRanges } from './guest-ranges.js';
import { NET_HDR_SIZE, NetHdr, NetHdrFlag } from './net-header.js';
import { VirtioNetFeature, has, maxReceivePacket, receivable } from './net-features.js';
import { VirtqueueError, type SplitVirtqueue } from './queue.js';

/**
 * The receive side of one virtio-net queue pair (VIRTIO 1.2, 5.1.6.3 and
 * 5.1.6.4): packets from the back end go straight into the driver's
 * buffers. The device takes chains from the receive queue as it needs
 * them and holds them until a packet fills them, so each chain is popped
 * (and validated) once: with mergeable buffers enough chains to hold the
 * largest packet the driver can receive, otherwise one chain, whose views
 * are handed to the back end as one scatter list (readv on a tap). A
 * packet that spans k chains gets num_buffers = k; one that did not fit
 * (the back end says how long it was) or carries an offload the driver
 * did not accept is dropped and its chains are used for the next.
 */

/** A packet source: the receive half of a back end. */
export interface NetPacketSource {
  /**
   * Reads the next packet - its virtio-net header, then the frame - into
   * `views`. Returns its whole length, more than the views hold when it
   * did not fit (the rest is lost); 0 when none is waiting; -1 when the
   * back end is gone.
   */
  receive(views: readonly Uint8Array[]): number;
}

export interface NetRxFeatures {
  readonly accepted: bigint;
  readonly mergeable: boolean;
  /** The most bytes one packet may need, header included. */
  readonly maxPacket: number;
  readonly guestCsum: boolean;
}

export function netRxFeatures(accepted: bigint): NetRxFeatures {
  return {
    accepted,
    mergeable: has(accepted, VirtioNetFeature.MrgRxbuf),
    maxPacket: maxReceivePacket(accepted),
    guestCsum: has(accepted, VirtioNetFeature.GuestCsum),
  };
}

export interface NetRxResult extends NetBatch {
  /** The driver has not posted enough buffers for another packet: wait for its notification. */
  starved: boolean;
  /** The back end is gone. */
  gone: boolean;
}

/** readv(2) takes at most this many buffers (UIO_MAXIOV). */
export const MAX_IOV = 1024;

interface HeldChain {
  readonly head: number;
  readonly views: Uint8Array[];
  readonly capacity: number;
}

export class NetReceiver {
  private held: HeldChain[] = [];
  private heldBytes = 0;
  private epoch: number;
  private readonly header = new Uint8Array(NET_HDR_SIZE);
  private readonly numBuffers = new Uint8Array(2);

  constructor(
    private readonly q: SplitVirtqueue,
    private readonly ram: GuestRanges,
  ) {
    this.epoch = q.epoch;
  }

  /** Receive chains taken from the driver and not filled yet. */
  get heldChains(): number {
    return this.held.length;
  }

  /**
   * Moves up to `budget` packets from `source` into the queue. Throws
   * VirtqueueError for a malformed ring or receive chain.
   */
  receive(source: NetPacketSource, f: NetRxFeatures, budget: number): NetRxResult {
    const r: NetRxResult = { ...emptyBatch(), starved: false, gone: false };
    this.followReset();
    while (r.packets + r.dropped < budget) {
      if (!this.take(f)) {
        r.starved = true;
        break;
      }
      const { views, capacity } = this.scatterList(f);
      const n = source.receive(views);
      if (n === 0) break;
      if (n < 0) {
        r.gone = true;
        break;
      }
      if (n > capacity || n < NET_HDR_SIZE || !this.acceptHeader(views, f)) {
        r.dropped++;
        continue;
      }
      if (!this.complete(n)) break; // the device was reset meanwhile
      if (this.header[NetHdr.GsoType]) r.gso++;
      if (this.header[NetHdr.Flags]! & NetHdrFlag.NeedsCsum) r.csum++;
      r.packets++;
      r.bytes += n - NET_HDR_SIZE;
    }
    if (r.packets) r.interrupt = this.q.withLock(() => this.q.needsInterrupt());
    return r;
  }

  /** Drops held chains of an earlier incarnation of the queue (the driver reset the device). */
  private followReset(): void {
    if (this.q.epoch === this.epoch) return;
    this.held = [];
    this.heldBytes = 0;
    this.epoch = this.q.epoch;
  }

  /**
   * Takes chains until one more packet surely fits: one chain, or with
   * mergeable buffers `maxPacket` bytes of them (or the whole ring, if the
   * driver's buffers add up to less). False when the driver has not made
   * enough available.
   */
  private take(f: NetRxFeatures): boolean {
    const enough = (): boolean => (f.mergeable ? this.heldBytes >= f.maxPacket || this.held.length >= this.q.register('size') : this.held.length > 0);
    if (enough()) return true;
    return this.q.withLock(() => {
      while (!enough()) {
        const chain = this.q.pop();
        if (!chain) return false;
        if (chain.readable.length) throw new VirtqueueError(`receive chain ${chain.head} has device-readable buffers`);
        if (chain.writableLength < NET_HDR_SIZE) throw new VirtqueueError(`receive chain ${chain.head} holds ${chain.writableLength} bytes, less than the ${NET_HDR_SIZE}-byte header`);
        const views = chainViews(this.ram, chain.writable, 0, chain.writableLength);
        this.held.push({ head: chain.head, views, capacity: chain.writableLength });
        this.heldBytes += chain.writableLength;
      }
      return true;
    });
  }

  /** The views one packet is read into: the first held chain, or with mergeable buffers as many as `maxPacket` needs. */
  private scatterList(f: NetRxFeatures): { views: Uint8Array[]; capacity: number } {
    if (!f.mergeable) return { views: this.held[0]!.views, capacity: this.held[0]!.capacity };
    const views: Uint8Array[] = [];
    let capacity = 0;
    for (const c of this.held) {
      if (capacity >= f.maxPacket) break;
      for (const v of c.views) {
        if (views.length === MAX_IOV) return { views, capacity };
        views.push(v);
        capacity += v.length;
      }
    }
    return { views, capacity };
  }

  /** Checks the header the back end wrote against the driver's offloads; clears DATA_VALID where it did not take checksum offload. */
  private acceptHeader(views: readonly Uint8Array[], f: NetRxFeatures): boolean {
    const h = this.header;
    copyFromViews(views, 0, h);
    const flags = h[NetHdr.Flags]!;
    if (!receivable({ flags, gsoType: h[NetHdr.GsoType]! }, f.accepted)) return false;
    if (flags & NetHdrFlag.DataValid && !f.guestCsum) copyToViews(views, NetHdr.Flags, Uint8Array.of(flags & ~NetHdrFlag.DataValid));
    return true;
  }

  /** Returns the chains a packet of `n` bytes filled to the driver, num_buffers set; false if the queue was reset meanwhile. */
  private complete(n: number): boolean {
    const used: Array<[number, number]> = [];
    for (let left = n, i = 0; left > 0; i++) {
      const c = this.held[i]!;
      const len = Math.min(c.capacity, left);
      used.push([c.head, len]);
      left -= len;
    }
    this.numBuffers[0] = used.length & 0xff;
    this.numBuffers[1] = used.length >> 8;
    copyToViews(this.held[0]!.views, NetHdr.NumBuffers, this.numBuffers);
    const done = this.q.withLock(() => {
      if (this.q.epoch !== this.epoch || !this.q.ready) return false;
      for (const [head, len] of used) this.q.push(head, len);
      return true;
    });
    if (!done) {
      this.followReset();
      return false;
    }
    for (let i = 0; i < used.length; i++) this.heldBytes -= this.held.shift()!.capacity;
    return true;
  }
}
