import { defineLayout, i32, loadState, mutex, saveState, StateLayoutError, type SavedState } from '../sync/state-layout.js';
import { GuestMemoryError } from '../memory/guest-memory.js';
import { Mutex } from '../sync/mutex.js';
import { VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_USED_F_NO_NOTIFY, VIRTQ_MAX_SIZE, VIRTIO_MSI_NO_VECTOR, VirtqDesc } from './constants.js';
import type { GuestRanges } from './guest-ranges.js';

/**
 * A split virtqueue (VIRTIO 1.2, 2.7) as the device side sees it, over
 * guest RAM reached only through `GuestMemory`'s bounds-checked accessors.
 *
 * The queue's configuration and the device's private indices live in shared
 * memory behind one mutex, so any thread may drive the queue: the vCPU that
 * writes the notify register, an I/O worker completing a request, the main
 * thread feeding console input. Callers hold the lock (`withLock`) around
 * `pop`, `push` and `needsInterrupt`.
 *
 * Descriptor chains are validated before anything is returned: a head or a
 * `next` outside the table, a chain longer than the table (which is how a
 * loop shows), an indirect table that is empty, misaligned, nested, chained
 * or not negotiated, a readable buffer after a writable one, a buffer
 * outside guest RAM, or a chain whose lengths add up to 4 GiB or more all
 * throw `VirtqueueError`, which the transport turns into DEVICE_NEEDS_RESET.
 * The rings themselves are checked when the driver enables the queue.
 */

/** A malformed queue or chain: the device stops using the queue until reset. */
export class VirtqueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VirtqueueError';
  }
}

/** One guest buffer of a chain. */
export interface VirtqBuffer {
  readonly addr: number;
  readonly len: number;
}

/** A validated descriptor chain: device-readable buffers first, then device-writable ones. */
export interface DescriptorChain {
  readonly head: number;
  readonly readable: readonly VirtqBuffer[];
  readonly writable: readonly VirtqBuffer[];
  readonly readableLength: number;
  readonly writableLength: number;
}

/** The shared state of one queue; structured-cloneable. */
export interface VirtqueueState {
  readonly regs: SharedArrayBuffer;
}

/** Negotiated ring features the queue honours. */
export interface VirtqueueFeatures {
  indirect: boolean;
  eventIdx: boolean;
}

/** The most entries an indirect table may have: bounds the work one chain can cause. */
export const MAX_INDIRECT_ENTRIES = 1024;
const DESC_SIZE = 16;
const MAX_CHAIN_BYTES = 0xffffffff;

export const VIRTQUEUE_LAYOUT = defineLayout('split-virtqueue', 1, {
  lock: mutex(),
  maxSize: i32(),
  /**
   * Chains taken by a thread that will complete them later (virtio-blk's
   * I/O threads), not yet returned: a snapshot waits for 0. Outside the
   * words a reset clears, as those chains still complete after one.
   */
  inService: i32(),
  size: i32(),
  ready: i32(),
  vector: i32(),
  descLo: i32(),
  descHi: i32(),
  driverLo: i32(),
  driverHi: i32(),
  deviceLo: i32(),
  deviceHi: i32(),
  /** Next avail ring slot the device will take (free-running 16-bit). */
  lastAvail: i32(),
  /** The used index the device has published (free-running 16-bit). */
  usedIdx: i32(),
  /** Used index at the last interrupt decision, for event idx (2.7.10). */
  signalledUsed: i32(),
  signalledValid: i32(),
  indirect: i32(),
  eventIdx: i32(),
  /** Bumped at every reset, so completions of requests taken before it are dropped. */
  epoch: i32(),
  reserved: i32(13),
  /** A word only ever added 0 to: a memory fence (see `fence`). */
  fence: i32(),
});
/** Int32 word of each field of the state. */
const A = VIRTQUEUE_LAYOUT.at;

/** Queue registers the transport exposes in the common configuration. */
export type QueueRegister = 'size' | 'ready' | 'vector' | 'descLo' | 'descHi' | 'driverLo' | 'driverHi' | 'deviceLo' | 'deviceHi';

export class SplitVirtqueue {
  private readonly words: Int32Array;
  private readonly lock: Mutex;

  static allocate(maxSize: number): VirtqueueState {
    if (!Number.isInteger(maxSize) || maxSize < 1 || maxSize > VIRTQ_MAX_SIZE || (maxSize & (maxSize - 1)) !== 0) {
      throw new RangeError(`a split virtqueue's size is a power of two from 1 to ${VIRTQ_MAX_SIZE} (got ${maxSize})`);
    }
    const regs = VIRTQUEUE_LAYOUT.allocate();
    const w = new Int32Array(regs);
    w[A.maxSize] = maxSize;
    resetWords(w);
    return { regs };
  }

  /**
   * The queue's registers and positions by name, as a snapshot keeps them
   * (queue lock held, requests in service drained). Chains the device took
   * and still holds unused - virtio-net's receive buffers waiting for
   * packets, a transmit packet its back end had no room for, a control
   * command being run - go back to the ring: the saved `lastAvail` is the
   * used index, so the restored device takes them again from the avail
   * ring, where the driver left them. That is exact because such devices
   * use chains in the order they took them; one that completes out of
   * order (virtio-blk) has none in service by now.
   */
  static save(state: VirtqueueState): SavedState {
    const w = new Int32Array(state.regs);
    if (Atomics.load(w, A.inService) !== 0) throw new Error(`a queue with ${Atomics.load(w, A.inService)} chains in service cannot be saved (quiesce the device first)`);
    const saved = saveState(VIRTQUEUE_LAYOUT, state.regs);
    saved.fields.lastAvail = w[A.usedIdx]!;
    return saved;
  }

  static load(state: VirtqueueState, saved: SavedState): void {
    const maxSize = new Int32Array(state.regs)[A.maxSize];
    loadState(VIRTQUEUE_LAYOUT, state.regs, saved);
    if (new Int32Array(state.regs)[A.maxSize] !== maxSize) throw new StateLayoutError(`a saved queue of ${new Int32Array(state.regs)[A.maxSize]} entries does not fit this device's ${maxSize}`);
  }

  constructor(
    state: VirtqueueState,
    private readonly ram: GuestRanges,
  ) {
    this.words = new Int32Array(state.regs);
    this.lock = new Mutex(this.words, A.lock);
  }

  /** With the lock held: a chain just taken will be completed later, outside this lock. */
  beginService(): void {
    this.words[A.inService]! += 1;
  }

  /** With the lock held: a chain counted by `beginService` was completed (or dropped by a reset). */
  endService(): void {
    this.words[A.inService]! -= 1;
  }

  /**
   * For a snapshot: takes the lock if no chain is in service, and keeps it
   * until `unlockAfterSnapshot`; false (lock not held) while one is.
   */
  lockIfIdle(): boolean {
    this.lock.lock();
    if (Atomics.load(this.words, A.inService) === 0) return true;
    this.lock.unlock();
    return false;
  }

  unlockAfterSnapshot(): void {
    this.lock.unlock();
  }

  withLock<T>(fn: () => T): T {
    return this.lock.with(fn);
  }

  get maxSize(): number {
    return this.words[A.maxSize]!;
  }

  /** Driver-visible register read (transport, any thread). */
  register(name: QueueRegister): number {
    return Atomics.load(this.words, A[name]) >>> 0;
  }

  /**
   * Driver-visible register write. Size must be a power of two no larger
   * than the maximum (others are ignored, as 4.1.4.3.2 lets the device
   * refuse); nothing but `ready` changes once the queue is enabled.
   * Enabling checks the whole ring layout (see `layoutError`) and throws
   * VirtqueueError, leaving the queue disabled, if it is not sound.
   */
  setRegister(name: QueueRegister, value: number): void {
    this.lock.with(() => {
      const w = this.words;
      if (name === 'ready') {
        // 4.1.4.3.2: the driver writes 1 to enable; 0 is not a way to disable.
        if ((value & 1) && !w[A.ready]) {
          const bad = this.layoutError();
          if (bad) throw new VirtqueueError(bad);
          w[A.ready] = 1;
          w[A.signalledValid] = 0;
        }
        return;
      }
      if (w[A.ready]) return;
      if (name === 'size') {
        if (value >= 1 && value <= w[A.maxSize]! && (value & (value - 1)) === 0) w[A.size] = value;
        return;
      }
      if (name === 'vector') {
        w[A.vector] = value & 0xffff;
        return;
      }
      w[A[name]] = value | 0;
    });
  }

  /** The MSI-X vector the driver chose (may change while enabled, 4.1.5.1.3). */
  setVector(value: number): void {
    Atomics.store(this.words, A.vector, value & 0xffff);
  }

  get vector(): number {
    return Atomics.load(this.words, A.vector) & 0xffff;
  }

  get ready(): boolean {
    return Atomics.load(this.words, A.ready) !== 0;
  }

  /** Sets the ring features the driver accepted (at FEATURES_OK). */
  setFeatures(f: VirtqueueFeatures): void {
    this.lock.with(() => {
      this.words[A.indirect] = f.indirect ? 1 : 0;
      this.words[A.eventIdx] = f.eventIdx ? 1 : 0;
    });
  }

  /** Device reset: back to the disabled state with the maximum size. */
  reset(): void {
    this.lock.with(() => {
      const epoch = this.words[A.epoch]!;
      resetWords(this.words);
      this.words[A.epoch] = (epoch + 1) | 0;
    });
  }

  /** Which incarnation of the queue this is (changes at every reset). */
  get epoch(): number {
    return Atomics.load(this.words, A.epoch);
  }

  /**
   * Takes the next available chain, or null when the driver has made none
   * available (or the queue is not enabled). Caller holds the lock. Throws
   * VirtqueueError for a malformed ring or chain; the chain is consumed
   * only when it is valid. `arm` false: the device is not asking for
   * notifications now (see setNotifications), so avail_event stays put.
   */
  pop(arm = true): DescriptorChain | null {
    const w = this.words;
    if (!w[A.ready]) return null;
    const size = w[A.size]!;
    const driver = address(w, A.driverLo);
    const last = w[A.lastAvail]!;
    let availIdx = this.guest(() => this.ram.memory.readU16(driver + 2), 'avail ring');
    if (availIdx === last) {
      // Ask for a notification at the next addition (which also lifts a
      // NO_NOTIFY a poller left, e.g. in a snapshot), then look again: the
      // driver may have added one between our read and its reading the request.
      if (!arm || !this.setNotifications(true)) return null;
      availIdx = this.guest(() => this.ram.memory.readU16(driver + 2), 'avail ring');
    }
    const pending = (availIdx - last) & 0xffff;
    if (pending > size) throw new VirtqueueError(`the driver made ${pending} buffers available on a queue of ${size}`);
    // Read the ring entry only after the index (the driver wrote them in the other order).
    fence(w);
    const head = this.guest(() => this.ram.memory.readU16(driver + 4 + 2 * (last % size)), 'avail ring');
    const chain = this.walk(head, size);
    w[A.lastAvail] = (last + 1) & 0xffff;
    if (w[A.eventIdx] && arm) this.guest(() => this.ram.memory.writeU16(address(w, A.deviceLo) + 4 + 8 * size, w[A.lastAvail]!), 'used ring');
    return chain;
  }

  /**
   * Asks the driver to notify (true) or tells it that it need not (false),
   * while a thread polls the ring instead (2.7.10: VIRTQ_USED_F_NO_NOTIFY,
   * or with VIRTIO_F_EVENT_IDX an avail_event left behind the driver).
   * Best effort, as the spec has it: a driver may notify anyway. Caller
   * holds the lock. Enabling returns whether chains are available: one
   * published before the driver could see the request gets no
   * notification, so look again before sleeping.
   */
  setNotifications(enabled: boolean): boolean {
    const w = this.words;
    if (!w[A.ready]) return false;
    const used = address(w, A.deviceLo);
    if (w[A.eventIdx]) {
      if (enabled) this.guest(() => this.ram.memory.writeU16(used + 4 + 8 * w[A.size]!, w[A.lastAvail]!), 'used ring');
    } else {
      this.guest(() => this.ram.memory.writeU16(used, enabled ? 0 : VIRTQ_USED_F_NO_NOTIFY), 'used ring');
    }
    if (!enabled) return false;
    fence(w);
    return this.hasAvailable();
  }

  /**
   * Whether the driver seems to have made buffers available, without the
   * lock: a hint for a thread polling for work (`pop`, under the lock,
   * decides). A ring outside guest RAM reads as work, so that the serving
   * path meets the error and fails the device.
   */
  peekAvailable(): boolean {
    try {
      return this.hasAvailable();
    } catch {
      return true;
    }
  }

  /** Whether the driver has made buffers available that `pop` has not taken yet. Caller holds the lock. */
  hasAvailable(): boolean {
    const w = this.words;
    if (!w[A.ready]) return false;
    const driver = address(w, A.driverLo);
    return this.guest(() => this.ram.memory.readU16(driver + 2), 'avail ring') !== w[A.lastAvail];
  }

  /** Returns chain `head` to the driver with `written` bytes written into it. Caller holds the lock. */
  push(head: number, written: number): void {
    const w = this.words;
    const size = w[A.size]!;
    const used = address(w, A.deviceLo);
    const idx = w[A.usedIdx]!;
    const slot = used + 4 + 8 * (idx % size);
    this.guest(() => {
      this.ram.memory.writeU32(slot, head);
      this.ram.memory.writeU32(slot + 4, written);
      // The element must be visible before the index that publishes it.
      fence(w);
      this.ram.memory.writeU16(used + 2, (idx + 1) & 0xffff);
    }, 'used ring');
    w[A.usedIdx] = (idx + 1) & 0xffff;
  }

  /**
   * Whether the driver wants an interrupt for what was pushed since the last
   * call: with event idx, whether used_event was crossed (2.7.10);
   * otherwise unless VIRTQ_AVAIL_F_NO_INTERRUPT is set. Caller holds the lock.
   */
  needsInterrupt(): boolean {
    const w = this.words;
    if (!w[A.ready]) return false;
    const size = w[A.size]!;
    const driver = address(w, A.driverLo);
    fence(w);
    if (!w[A.eventIdx]) return !(this.guest(() => this.ram.memory.readU16(driver), 'avail ring') & VIRTQ_AVAIL_F_NO_INTERRUPT);
    const now = w[A.usedIdx]!;
    const old = w[A.signalledUsed]!;
    const valid = w[A.signalledValid]!;
    w[A.signalledUsed] = now;
    w[A.signalledValid] = 1;
    if (!valid) return true;
    const usedEvent = this.guest(() => this.ram.memory.readU16(driver + 4 + 2 * size), 'avail ring');
    return vringNeedEvent(usedEvent, now, old);
  }

  /**
   * Why the configured rings cannot be used, or null: each of the three
   * (with the event-index fields, 2.7.10, whether or not they were
   * negotiated) must lie wholly in guest RAM with the alignment 2.7 asks
   * for. Checked once at enable, so that no ring access while the queue
   * runs can fault; alignment also keeps every ring element inside one
   * RAM region.
   */
  private layoutError(): string | null {
    const w = this.words;
    const size = w[A.size]!;
    const rings = [
      { what: 'descriptor table', at: address(w, A.descLo), bytes: DESC_SIZE * size, align: 16 },
      { what: 'avail ring', at: address(w, A.driverLo), bytes: 6 + 2 * size, align: 2 },
      { what: 'used ring', at: address(w, A.deviceLo), bytes: 6 + 8 * size, align: 4 },
    ];
    for (const r of rings) {
      const where = `the ${r.what} at 0x${r.at.toString(16)} (0x${r.bytes.toString(16)} bytes for ${size} entries)`;
      if (r.at % r.align !== 0) return `${where} is not ${r.align}-byte aligned`;
      if (!this.ram.contains(r.at, r.bytes)) return `${where} is not in guest RAM`;
    }
    return null;
  }

  /** Follows the chain at `head`, validating every descriptor (see the module comment). */
  private walk(head: number, size: number): DescriptorChain {
    const readable: VirtqBuffer[] = [];
    const writable: VirtqBuffer[] = [];
    let readableLength = 0;
    let writableLength = 0;
    const add = (addr: number, len: number, write: boolean): void => {
      if (readableLength + writableLength + len > MAX_CHAIN_BYTES) throw new VirtqueueError('the chain describes 4 GiB or more');
      if (write) {
        writable.push({ addr, len });
        writableLength += len;
      } else {
        if (writable.length) throw new VirtqueueError('a device-readable descriptor follows a device-writable one');
        readable.push({ addr, len });
        readableLength += len;
      }
    };

    if (head >= size) throw new VirtqueueError(`avail ring head ${head} is outside a queue of ${size}`);
    let table = address(this.words, A.descLo);
    let limit = size;
    let index = head;
    let count = 0;
    let indirect = false;
    for (;;) {
      if (++count > limit) throw new VirtqueueError(`descriptor chain at ${head} is longer than its table (${limit}): a loop`);
      const d = this.readDesc(table, index);
      if (d.flags & VirtqDesc.Indirect) {
        if (!this.words[A.indirect]) throw new VirtqueueError('indirect descriptor without VIRTIO_F_INDIRECT_DESC');
        if (indirect) throw new VirtqueueError('an indirect table refers to another indirect table');
        if (d.flags & VirtqDesc.Next) throw new VirtqueueError('an indirect descriptor also has NEXT set');
        if (d.len === 0 || d.len % DESC_SIZE !== 0) throw new VirtqueueError(`indirect table length ${d.len} is not a nonzero multiple of 16`);
        const entries = d.len / DESC_SIZE;
        if (entries > MAX_INDIRECT_ENTRIES) throw new VirtqueueError(`indirect table of ${entries} entries exceeds ${MAX_INDIRECT_ENTRIES}`);
        if (!this.ram.contains(d.addr, d.len)) throw new VirtqueueError(`indirect table 0x${d.addr.toString(16)}+0x${d.len.toString(16)} is not guest RAM`);
        // 2.7.5.3.1: the chain continues in the table, from its first entry.
        indirect = true;
        table = d.addr;
        limit = entries;
        index = 0;
        count = 0;
        continue;
      }
      add(d.addr, d.len, (d.flags & VirtqDesc.Write) !== 0);
      if (!(d.flags & VirtqDesc.Next)) break;
      if (d.next >= limit) throw new VirtqueueError(`descriptor next ${d.next} is outside its table (${limit})`);
      index = d.next;
    }
    // Buffers are checked once the chain's shape and total length are known to be sane.
    for (const b of [...readable, ...writable]) {
      if (!this.ram.contains(b.addr, b.len)) throw new VirtqueueError(`descriptor buffer 0x${b.addr.toString(16)}+0x${b.len.toString(16)} is not guest RAM`);
    }
    return { head, readable, writable, readableLength, writableLength };
  }

  private readDesc(table: number, index: number): { addr: number; len: number; flags: number; next: number } {
    const at = table + DESC_SIZE * index;
    return this.guest(() => {
      const addr = this.ram.memory.readU64(at);
      if (addr > BigInt(Number.MAX_SAFE_INTEGER)) throw new VirtqueueError(`descriptor address 0x${addr.toString(16)} is not guest RAM`);
      return { addr: Number(addr), len: this.ram.memory.readU32(at + 8), flags: this.ram.memory.readU16(at + 12), next: this.ram.memory.readU16(at + 14) };
    }, 'descriptor table');
  }

  /** Runs a ring access, turning "not guest RAM" into a queue error. */
  private guest<T>(fn: () => T, what: string): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof GuestMemoryError) throw new VirtqueueError(`the ${what} is not in guest RAM (${e.message})`);
      throw e;
    }
  }
}

/** vring_need_event (2.7.10): whether `newIdx` passed `event` since `oldIdx`. */
export function vringNeedEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

function address(w: Int32Array, lo: number): number {
  return (w[lo]! >>> 0) + (w[lo + 1]! >>> 0) * 2 ** 32;
}

/**
 * Orders guest-RAM accesses around it: an Atomics operation is a full
 * barrier for V8's compiler and, on x86, a locked instruction for the CPU.
 */
function fence(w: Int32Array): void {
  Atomics.add(w, A.fence, 0);
}

function resetWords(w: Int32Array): void {
  for (let i = A.size; i < A.fence; i++) w[i] = 0;
  w[A.size] = w[A.maxSize]!;
  w[A.vector] = VIRTIO_MSI_NO_VECTOR;
}
