import type { AccessSize } from '../devices/device.js';
import { native } from '../kvm/addon.js';
import { Mutex } from '../sync/mutex.js';
import { defineLayout, i32, loadState, mutex, saveState, StateLayoutError, type SavedState } from '../sync/state-layout.js';
import { VirtioDeviceId } from './constants.js';
import type { VirtioContext, VirtioDeviceModel, VirtioDeviceType } from './device.js';
import { offeredNetFeatures, tunOffloadFlags, type NetBackendCaps } from './net-features.js';
import { setTapOffload, setTapQueueAttached } from './net-tap.js';

/**
 * virtio-net (VIRTIO 1.2, 5.1) as every thread sees it: the configuration
 * space (MAC, link status, queue pairs), the notification path and the
 * device-wide state the I/O threads and the control queue share. Queues:
 * receiveq and transmitq of each pair, then the control queue when there
 * is more than one pair. Each queue has an eventfd that the I/O thread
 * serving it waits on (net-io-worker.ts): KVM signals it itself where the
 * VM registered it as an ioeventfd, otherwise the notify write exits and
 * the vCPU signals it here.
 */

export const VIRTIO_NET_QUEUE_SIZE = 256;
/** Queue pairs per device at most. */
export const VIRTIO_NET_MAX_PAIRS = 8;
/** virtio_net_config.status bits. */
export const NetStatus = { LinkUp: 1 } as const;
/** mac[6], status, max_virtqueue_pairs, mtu (not offered: reads 0). */
const CONFIG_SIZE = 12;

/** VirtioNetState.words. */
export const VIRTIO_NET_LAYOUT = defineLayout('virtio-net', 1, {
  lock: mutex(),
  linkUp: i32(),
  /** Queue pairs the driver uses (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET; 1 after reset). */
  activePairs: i32(),
  /** Bit p: tap queue file p is attached. */
  attached: i32(),
});
/** Int32 word of each field. */
const W = VIRTIO_NET_LAYOUT.at;

/** Counters per queue pair (Float64 slots of VirtioNetState.stats; each pair's I/O thread writes its own). */
export const NetStat = {
  TxPackets: 0,
  TxBytes: 1,
  TxDropped: 2,
  TxNotifications: 3,
  TxInterrupts: 4,
  RxPackets: 5,
  RxBytes: 6,
  RxDropped: 7,
  RxNotifications: 8,
  RxInterrupts: 9,
  /** Packets that crossed as one GSO packet (TSO/UFO), and with a partial checksum for the other side to finish. */
  TxGso: 10,
  TxCsum: 11,
  RxGso: 12,
  RxCsum: 13,
  COUNT: 14,
} as const;

export interface VirtioNetState {
  readonly mac: readonly number[];
  readonly pairs: number;
  readonly caps: NetBackendCaps;
  /** One per queue, in queue order: receiveq0, transmitq0, receiveq1, ..., controlq. */
  readonly eventfds: readonly number[];
  /** The tap back end's queue files, one per pair (for TUNSETOFFLOAD and TUNSETQUEUE). */
  readonly tapFds?: readonly number[];
  readonly words: SharedArrayBuffer;
  readonly stats: SharedArrayBuffer;
}

/** Queues of a device with `pairs` queue pairs: two per pair, and the control queue if there are several. */
export function virtioNetQueueCount(pairs: number): number {
  return 2 * pairs + (pairs > 1 ? 1 : 0);
}

export const netRxQueue = (pair: number): number => 2 * pair;
export const netTxQueue = (pair: number): number => 2 * pair + 1;

export function virtioNetType(pairs: number): VirtioDeviceType {
  if (!Number.isInteger(pairs) || pairs < 1 || pairs > VIRTIO_NET_MAX_PAIRS) throw new RangeError(`virtio-net has 1-${VIRTIO_NET_MAX_PAIRS} queue pairs (got ${pairs})`);
  // Class 0x02 (network), subclass 0x00 (Ethernet), as QEMU reports virtio-net.
  return { deviceId: VirtioDeviceId.Network, classCode: 0x020000, queueSizes: new Array<number>(virtioNetQueueCount(pairs)).fill(VIRTIO_NET_QUEUE_SIZE) };
}

export function allocateVirtioNet(o: { mac: readonly number[]; caps: NetBackendCaps; eventfds: readonly number[]; tapFds?: readonly number[] }): VirtioNetState {
  const pairs = Math.floor(o.eventfds.length / 2);
  virtioNetType(pairs);
  if (o.eventfds.length !== virtioNetQueueCount(pairs)) throw new RangeError(`virtio-net with ${pairs} pairs needs ${virtioNetQueueCount(pairs)} eventfds (got ${o.eventfds.length})`);
  if (o.mac.length !== 6) throw new RangeError('a MAC address has 6 bytes');
  const words = new SharedArrayBuffer(VIRTIO_NET_LAYOUT.byteLength);
  const w = new Int32Array(words);
  w[W.linkUp] = 1;
  // Multiqueue starts off (5.1.6.5.5): pair 0 only, and only its tap queue file attached (openTap detached the others).
  w[W.activePairs] = 1;
  w[W.attached] = 1;
  return { mac: [...o.mac], pairs, caps: o.caps, eventfds: o.eventfds, ...(o.tapFds ? { tapFds: o.tapFds } : {}), words, stats: new SharedArrayBuffer(pairs * NetStat.COUNT * 8) };
}

export class VirtioNet implements VirtioDeviceModel {
  readonly name = 'virtio-net';
  readonly features: bigint;
  readonly configSize = CONFIG_SIZE;
  readonly pairs: number;
  private readonly words: Int32Array;
  private readonly lock: Mutex;
  private readonly config = new DataView(new ArrayBuffer(CONFIG_SIZE));

  constructor(
    private readonly state: VirtioNetState,
    private readonly ctx: VirtioContext,
    private readonly log: (message: string) => void = () => {},
  ) {
    this.pairs = state.pairs;
    this.words = new Int32Array(state.words);
    this.lock = new Mutex(this.words, W.lock);
    this.features = offeredNetFeatures(state.caps, state.pairs);
    state.mac.forEach((b, i) => this.config.setUint8(i, b));
    this.config.setUint16(8, state.pairs, true); // max_virtqueue_pairs
  }

  configRead(offset: number, size: AccessSize): number {
    this.config.setUint16(6, this.linkUp ? NetStatus.LinkUp : 0, true);
    return size === 1 ? this.config.getUint8(offset) : size === 2 ? this.config.getUint16(offset, true) : this.config.getUint32(offset, true);
  }

  /** Nothing is writable: VIRTIO_NET_F_CTRL_MAC_ADDR is not offered. */
  configWrite(): void {}

  notify(index: number): void {
    const fd = this.state.eventfds[index];
    if (fd !== undefined) native.eventfdWrite(fd, 1);
  }

  /** Back to one queue pair, as after power-on (5.1.5: MQ starts with pair 0 only). */
  reset(): void {
    this.setActivePairs(1);
  }

  /** Lets the tap hand us the offloads the driver accepted. */
  featuresAccepted(features: bigint): void {
    const flags = tunOffloadFlags(features);
    for (const fd of this.state.tapFds ?? []) {
      try {
        setTapOffload(fd, flags);
      } catch (e) {
        this.log(`TUNSETOFFLOAD failed (${(e as Error).message}); packets with offloads the driver refused will be dropped`);
      }
    }
  }

  /** What the driver accepted (meaningful once FEATURES_OK is set). */
  acceptedFeatures(): bigint {
    return this.ctx.driverFeatures();
  }

  get linkUp(): boolean {
    return Atomics.load(this.words, W.linkUp) !== 0;
  }

  /** Sets the link status and tells the driver (a configuration change). */
  setLink(up: boolean): void {
    if ((Atomics.exchange(this.words, W.linkUp, up ? 1 : 0) !== 0) === up) return;
    this.ctx.configChanged();
  }

  get activePairs(): number {
    return Atomics.load(this.words, W.activePairs);
  }

  /**
   * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: packets use the first `pairs` queue
   * pairs. On a multi_queue tap the other queue files are detached, so the
   * kernel steers nothing to them; a queue file is attached before its
   * pair counts as active and detached after it stops counting, so an I/O
   * thread never polls a detached one (one polling it as it goes sees
   * POLLERR, looks again and leaves it out).
   */
  setActivePairs(pairs: number): boolean {
    if (!Number.isInteger(pairs) || pairs < 1 || pairs > this.pairs) return false;
    return this.lock.with(() => applyActivePairs(this.state, pairs, this.log));
  }
}

/** With the device's lock held (or before any thread runs): attaches the tap queue files of the first `pairs` pairs, makes them active, detaches the rest. */
function applyActivePairs(state: VirtioNetState, pairs: number, log: (message: string) => void): boolean {
  const words = new Int32Array(state.words);
  const fds = state.tapFds && state.tapFds.length > 1 ? state.tapFds : [];
  const attach = (p: number, on: boolean): boolean => {
    const bit = 1 << p;
    if (((words[W.attached]! & bit) !== 0) === on) return true;
    try {
      setTapQueueAttached(fds[p]!, on);
    } catch (e) {
      log(`cannot ${on ? 'attach' : 'detach'} tap queue ${p}: ${(e as Error).message}`);
      return false;
    }
    words[W.attached] = on ? words[W.attached]! | bit : words[W.attached]! & ~bit;
    return true;
  };
  let good = true;
  for (let p = 0; p < fds.length; p++) if (p < pairs) good = attach(p, true) && good;
  Atomics.store(words, W.activePairs, pairs);
  for (let p = 1; p < fds.length; p++) if (p >= pairs) good = attach(p, false) && good;
  return good;
}

/**
 * The device's part of a snapshot: its link status and the queue pairs the
 * driver made active. (Which tap queue files are attached describes this
 * process's back end, not the machine: a restore attaches its own.)
 */
export function saveVirtioNet(state: VirtioNetState): SavedState {
  return saveState(VIRTIO_NET_LAYOUT, state.words);
}

/**
 * Loads a snapshot's device state onto a freshly opened back end, before
 * any thread runs: the saved link status and active pairs, with the new
 * tap's queue files attached to match and its offloads set to what the
 * driver accepted (`accepted`; null: it had not got that far). The driver
 * negotiated once, in the snapshot's past, and will not again.
 */
export function loadVirtioNet(state: VirtioNetState, saved: SavedState, accepted: bigint | null): void {
  const words = new Int32Array(state.words);
  const attached = words[W.attached]!;
  loadState(VIRTIO_NET_LAYOUT, state.words, saved);
  words[W.attached] = attached;
  const pairs = words[W.activePairs]!;
  if (!Number.isInteger(pairs) || pairs < 1 || pairs > state.pairs) throw new StateLayoutError(`the saved virtio-net device has ${pairs} active queue pairs, this one at most ${state.pairs}`);
  const failures: string[] = [];
  if (!applyActivePairs(state, pairs, (m) => failures.push(m))) throw new Error(`the restored NIC's tap: ${failures.join('; ')}`);
  if (accepted !== null) for (const fd of state.tapFds ?? []) setTapOffload(fd, tunOffloadFlags(accepted));
}
