import type { GuestRanges } from './guest-ranges.js';
import type { NetBatch } from './net-batch.js';
import { NetStat, netRxQueue, netTxQueue, type VirtioNet, type VirtioNetState } from './net.js';
import { NetReceiver, netRxFeatures, type NetPacketSource, type NetRxFeatures } from './net-rx.js';
import { NetTransmitter, type NetPacketSink } from './net-tx.js';
import type { VirtioPciTransport } from './pci-transport.js';
import { VirtqueueError } from './queue.js';

/**
 * One virtio-net queue pair as its I/O thread serves it: which back-end
 * events to wait for, and moving packets when the driver notifies or the
 * back end has some. Each direction handles at most BUDGET packets per
 * turn so the pairs of one thread take turns; a pair cut short asks for
 * another turn at once (`serve` returns true). Counters go to the pair's
 * slots of the device's stats.
 */

/** What a pair needs from its back end. */
export interface NetPairIo extends NetPacketSource, NetPacketSink {
  readonly fd: number;
  gone: boolean;
  /** Why it is gone, where it knows more than "closed". */
  readonly why?: string;
  /** Bytes waiting to be written (stream back ends). */
  readonly pendingOutput?: number;
}

export const NET_BUDGET = 64;

/** Where packets sent on a pair the driver has not activated go: nowhere (a driver that does it is broken). */
const DISCARD: NetPacketSink = { transmit: () => 'dropped' };

export class NetPairServer {
  readonly rxQueue: number;
  readonly txQueue: number;
  private readonly rx: NetReceiver;
  private readonly tx: NetTransmitter;
  private readonly stats: Float64Array;
  private starved = false;
  private txBusy = false;
  private rxMore = false;
  private txMore = false;
  private lost = false;
  private accepted = -1n;
  private rxFeatures: NetRxFeatures = netRxFeatures(0n);

  constructor(
    readonly pair: number,
    private readonly transport: VirtioPciTransport,
    private readonly net: VirtioNet,
    readonly io: NetPairIo,
    ram: GuestRanges,
    state: VirtioNetState,
    private readonly warn: (message: string) => void = () => {},
  ) {
    this.rxQueue = netRxQueue(pair);
    this.txQueue = netTxQueue(pair);
    this.rx = new NetReceiver(transport.queues[this.rxQueue]!, ram);
    this.tx = new NetTransmitter(transport.queues[this.txQueue]!, ram);
    this.stats = new Float64Array(state.stats, pair * NetStat.COUNT * 8, NetStat.COUNT);
  }

  private get active(): boolean {
    return this.pair < this.net.activePairs;
  }

  /** The poll(2) events to wait for on the back end's file (0: do not poll it). */
  backendEvents(pollIn: number, pollOut: number): number {
    if (this.io.gone || !this.active) return 0;
    let e = 0;
    if (!this.starved && this.transport.accepting(this.rxQueue)) e |= pollIn;
    if (this.txBusy || (this.io.pendingOutput ?? 0) > 0) e |= pollOut;
    return e;
  }

  /** `count` notifications of the receive or transmit queue came in. */
  notified(direction: 'rx' | 'tx', count: number): void {
    this.transport.countEventfdNotifications(count);
    this.stats[direction === 'rx' ? NetStat.RxNotifications : NetStat.TxNotifications]! += count;
    if (direction === 'rx') this.starved = false;
  }

  /** Moves what there is to move; true if a direction was cut short by the budget. */
  serve(ready: { rx: boolean; tx: boolean }): boolean {
    if (ready.rx || this.rxMore) this.receive();
    if (ready.tx || this.txMore) this.transmit();
    return this.rxMore || this.txMore;
  }

  private features(): NetRxFeatures {
    const f = this.net.acceptedFeatures();
    if (f !== this.accepted) {
      this.accepted = f;
      this.rxFeatures = netRxFeatures(f);
    }
    return this.rxFeatures;
  }

  private receive(): void {
    this.rxMore = false;
    if (this.io.gone) this.backendGone();
    if (!this.active || this.io.gone || !this.transport.accepting(this.rxQueue)) return;
    const r = this.guarded(() => this.rx.receive(this.io, this.features(), NET_BUDGET));
    if (!r) return;
    this.record('Rx', r, this.rxQueue);
    this.starved = r.starved;
    this.rxMore = r.packets + r.dropped >= NET_BUDGET;
    if (r.gone) this.backendGone();
  }

  private transmit(): void {
    this.txMore = false;
    if (!this.transport.accepting(this.txQueue)) return;
    const r = this.guarded(() => this.tx.transmit(this.active ? this.io : DISCARD, NET_BUDGET));
    if (!r) return;
    this.record('Tx', r, this.txQueue);
    this.txBusy = r.busy;
    this.txMore = !r.busy && r.packets + r.dropped >= NET_BUDGET;
    if (this.io.gone) this.backendGone();
  }

  /** Adds a turn to the pair's counters and raises the queue's interrupt if the driver wants it. */
  private record(d: 'Rx' | 'Tx', r: NetBatch, queue: number): void {
    const s = this.stats;
    s[NetStat[`${d}Packets`]]! += r.packets;
    s[NetStat[`${d}Bytes`]]! += r.bytes;
    s[NetStat[`${d}Dropped`]]! += r.dropped;
    s[NetStat[`${d}Gso`]]! += r.gso;
    s[NetStat[`${d}Csum`]]! += r.csum;
    if (!r.interrupt) return;
    s[NetStat[`${d}Interrupts`]]!++;
    this.transport.interruptQueue(queue);
  }

  /** Runs a queue operation; a malformed ring or chain fails the device (DEVICE_NEEDS_RESET) instead of throwing. */
  private guarded<T>(op: () => T): T | undefined {
    try {
      return op();
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.transport.fail(e.message);
      return undefined;
    }
  }

  /**
   * The back end failed. A tap queue file the control queue detached
   * while this thread used it fails too: that pair is simply no longer
   * active. Otherwise the link goes down (once; the driver hears of it
   * through a configuration change) and the pair's packets are dropped.
   */
  private backendGone(): void {
    if (!this.active) {
      this.io.gone = false;
      return;
    }
    if (this.lost) return;
    this.lost = true;
    if (this.io.why) this.warn(`${this.io.why}; the link is down`);
    this.net.setLink(false);
  }
}
