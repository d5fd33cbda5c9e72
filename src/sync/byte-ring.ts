import { WakeWord } from './wake-word.js';
import { bytes, defineLayout, i32, loadState, saveState, type Migration, type SavedRecord, type SavedState, type StateLayout } from './state-layout.js';

/** The layout of a ring of `capacity` bytes (the capacity is part of the VM's configuration). */
export function byteRingLayout(capacity: number): StateLayout {
  return defineLayout('byte-ring', 2, {
    head: i32(), // next byte the consumer reads (consumer-owned)
    tail: i32(), // next byte the producer writes (producer-owned)
    wake: i32(), // bumped by a push that finds the consumer waiting
    waiting: i32(), // while the consumer is (about to be) asleep in waitForData: what wakes it (WakeOn), else 0
    data: bytes(capacity),
  });
}
/** Version 2 turned the reserved header word into `waiting`; nobody waits on a ring being loaded. */
const MIGRATIONS: Readonly<Record<number, Migration>> = {
  1: (fields) => {
    const next: SavedRecord = { ...fields, waiting: 0 };
    delete next.reserved;
    return next;
  },
};
const HEADER = byteRingLayout(2);
const HEAD = HEADER.at.head as number;
const TAIL = HEADER.at.tail as number;
const WAKE = HEADER.at.wake as number;
const WAITING = HEADER.at.waiting as number;
const WAIT_BYTE = 1;
const WAIT_LINE = 2;

/** What wakes a consumer waiting for data: any byte, or the end of a line (see `waitForData`). */
export type WakeOn = 'byte' | 'line';
const HEADER_WORDS = HEADER.bytesByteOffset / 4;

/** The power-of-two capacity a ring buffer was allocated for (its size may be padded). */
const capacityOf = (buffer: SharedArrayBuffer): number => 2 ** Math.floor(Math.log2(buffer.byteLength - HEADER_WORDS * 4));

/**
 * A single-producer single-consumer byte ring in shared memory. Producers on
 * several threads must serialise themselves (devices do, under their lock).
 * Head and tail are free-running 32-bit counters; capacity is a power of two.
 */
export class ByteRing {
  readonly capacity: number;
  private readonly header: Int32Array;
  private readonly data: Uint8Array;
  private readonly wake: WakeWord;

  /** The ring's state by name, for a snapshot. */
  static save(buffer: SharedArrayBuffer): SavedState {
    return saveState(byteRingLayout(capacityOf(buffer)), buffer);
  }

  static load(buffer: SharedArrayBuffer, saved: SavedState): void {
    loadState(byteRingLayout(capacityOf(buffer)), buffer, saved, MIGRATIONS);
    // A consumer that waited when the snapshot was taken is not waiting here.
    Atomics.store(new Int32Array(buffer, 0, HEADER_WORDS), WAITING, 0);
  }

  static allocate(capacity: number): SharedArrayBuffer {
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 2 ** 30 || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`ring capacity must be a power of two between 2 and 2^30 (got ${capacity})`);
    }
    return byteRingLayout(capacity).allocate();
  }

  constructor(buffer: SharedArrayBuffer) {
    this.header = new Int32Array(buffer, 0, HEADER_WORDS);
    this.data = new Uint8Array(buffer, HEADER_WORDS * 4, capacityOf(buffer));
    this.capacity = this.data.length;
    this.wake = new WakeWord(this.header, WAKE);
  }

  size(): number {
    return (Atomics.load(this.header, TAIL) - Atomics.load(this.header, HEAD)) >>> 0;
  }

  free(): number {
    return this.capacity - this.size();
  }

  /** Appends one byte; false if the ring is full. */
  push(byte: number): boolean {
    const tail = Atomics.load(this.header, TAIL);
    if (((tail - Atomics.load(this.header, HEAD)) >>> 0) >= this.capacity) return false;
    this.data[tail & (this.capacity - 1)] = byte;
    Atomics.store(this.header, TAIL, (tail + 1) | 0);
    // Only a consumer that declared itself waiting needs waking, and one that
    // waits for lines only at the end of one (or when the ring fills up): a
    // wake-up per byte made a guest's console writes ~1.5x as expensive.
    const waiting = Atomics.load(this.header, WAITING);
    if (waiting === WAIT_BYTE || (waiting === WAIT_LINE && (byte === 0x0a || ((tail + 1 - Atomics.load(this.header, HEAD)) >>> 0) >= this.capacity >>> 1))) {
      this.wake.notify();
    }
    return true;
  }

  /** Appends as many bytes as fit; returns how many. */
  pushMany(bytes: Uint8Array): number {
    let n = 0;
    while (n < bytes.length && this.push(bytes[n]!)) n++;
    return n;
  }

  /** Removes one byte, or returns -1 if empty. */
  shift(): number {
    const head = Atomics.load(this.header, HEAD);
    if (head === Atomics.load(this.header, TAIL)) return -1;
    const b = this.data[head & (this.capacity - 1)]!;
    Atomics.store(this.header, HEAD, (head + 1) | 0);
    return b;
  }

  /** Looks at the next byte without removing it, or -1 if empty. */
  peek(): number {
    const head = Atomics.load(this.header, HEAD);
    if (head === Atomics.load(this.header, TAIL)) return -1;
    return this.data[head & (this.capacity - 1)]!;
  }

  /** Removes everything available and returns it. */
  drain(): Uint8Array {
    const n = this.size();
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.shift();
    return out;
  }

  /** A snapshot to pass to `waitForData` once the ring has been drained. */
  snapshot(): number {
    return this.wake.snapshot();
  }

  /**
   * Resolves when a push wakes the consumer or on timeout; true unless it
   * timed out. `seen` is a `snapshot()` taken before the ring was last
   * drained. `wakeOn` 'byte' (the default) wakes on the next byte, and at
   * once if the ring holds any; 'line' only on a newline or a ring half
   * full, so that a stream of output wakes its consumer once a line, not
   * once a byte (bytes in between wait for the timeout). The consumer
   * publishes that it waits before it looks at the ring once more, and a
   * producer looks at that after publishing its byte, so one of the two
   * always sees the other (all sequentially consistent atomics).
   */
  async waitForData(seen: number, timeoutMs = Infinity, wakeOn: WakeOn = 'byte'): Promise<boolean> {
    Atomics.store(this.header, WAITING, wakeOn === 'byte' ? WAIT_BYTE : WAIT_LINE);
    try {
      if (wakeOn === 'byte' && this.size() > 0) return true;
      return await this.wake.waitAsync(seen, timeoutMs);
    } finally {
      Atomics.store(this.header, WAITING, 0);
    }
  }
}
