import { WakeWord } from './wake-word.js';
import { bytes, defineLayout, i32, loadState, saveState, type SavedState, type StateLayout } from './state-layout.js';

/** The layout of a ring of `capacity` bytes (the capacity is part of the VM's configuration). */
export function byteRingLayout(capacity: number): StateLayout {
  return defineLayout('byte-ring', 1, {
    head: i32(), // next byte the consumer reads (consumer-owned)
    tail: i32(), // next byte the producer writes (producer-owned)
    wake: i32(), // bumped on every push, for a sleeping consumer
    reserved: i32(),
    data: bytes(capacity),
  });
}
const HEADER = byteRingLayout(2);
const HEAD = HEADER.at.head as number;
const TAIL = HEADER.at.tail as number;
const WAKE = HEADER.at.wake as number;
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
    loadState(byteRingLayout(capacityOf(buffer)), buffer, saved);
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
    this.wake.notify();
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

  /** Resolves when a push happened after `seen` was taken (or on timeout). */
  waitForData(seen: number, timeoutMs = Infinity): Promise<boolean> {
    return this.wake.waitAsync(seen, timeoutMs);
  }
}
