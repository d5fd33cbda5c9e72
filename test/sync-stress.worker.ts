// The far side of the cross-thread tests in sync.test.ts. One worker file
// serves several scenarios, picked by `workerData.kind`; every scenario
// reports through `postMessage` and exits on its own (no test ever has to
// terminate a worker, so a failure shows up as a message, not a hang).
// The test imports this module's constants on the main thread, where the
// scenario code below does not run.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ByteRing } from '../src/sync/byte-ring.js';
import { monotonicClock } from '../src/sync/clock.js';
import { Mutex } from '../src/sync/mutex.js';
import { WakeWord } from '../src/sync/wake-word.js';

/** Int32 word indices of the counter scenario's shared buffer. */
export const Counter = {
  Mutex: 0,
  Value: 1,
  A: 2,
  B: 3,
  Violations: 4,
  Ready: 5,
  Go: 6,
  /** Times a worker found the mutex held (locked mode only). */
  Contended: 7,
  /** Where the dawdling result goes, so it is not optimised away. */
  Sink: 8,
  /** Never changes; a worker sleeps on it with a timeout. */
  Nap: 9,
  Words: 12,
} as const;

/** Int32 word indices of the ping-pong scenario's shared buffer. */
export const PingPong = {
  Ping: 0,
  Pong: 1,
  Request: 2,
  Response: 3,
  Words: 4,
} as const;

/** Int32 word indices of the hold-the-lock scenario's shared buffer. */
export const Hold = {
  Mutex: 0,
  Held: 1,
  Marker: 2,
  Sleep: 3,
  Words: 4,
} as const;

/** Value the holder writes (without atomics) just before it unlocks. */
export const HOLD_MARKER = 0x5a5a;

/** Byte `i` of the ring transfer: a hash, so no stretch repeats at any period. */
export const ringByte = (i: number): number => Math.imul(i, 0x9e3779b1) >>> 24;

export type SyncWorkerData =
  | {
      kind: 'counter';
      shared: SharedArrayBuffer;
      iterations: number;
      /** False runs the same read-modify-write without the mutex. */
      locked: boolean;
    }
  | {
      kind: 'ping-pong';
      shared: SharedArrayBuffer;
      rounds: number;
      /** 'answer' waits for requests and answers them; 'ask' sends them. */
      role: 'answer' | 'ask';
      timeoutMs: number;
    }
  | { kind: 'hold'; shared: SharedArrayBuffer; holdMs: number }
  | { kind: 'ring-producer'; ring: SharedArrayBuffer; space: SharedArrayBuffer; total: number; timeoutMs: number }
  | { kind: 'clock' };

export type SyncWorkerMessage =
  | { kind: 'ready' }
  | { kind: 'done'; count: number }
  | { kind: 'failed'; detail: string }
  | { kind: 'now'; ns: number };

const post = (m: SyncWorkerMessage): void => parentPort!.postMessage(m);

/** A little work the JIT cannot drop, to widen the window a race needs. */
function dawdle(seed: number): number {
  let x = seed | 0;
  for (let i = 0; i < 24; i++) x = (Math.imul(x, 31) + i) | 0;
  return x;
}

function counter(d: Extract<SyncWorkerData, { kind: 'counter' }>): void {
  const words = new Int32Array(d.shared);
  const mutex = new Mutex(words, Counter.Mutex);
  // Start together, so the workers really overlap.
  Atomics.add(words, Counter.Ready, 1);
  post({ kind: 'ready' });
  while (Atomics.load(words, Counter.Go) === 0) Atomics.wait(words, Counter.Go, 0);

  let contended = 0;
  for (let n = 0; n < d.iterations; n++) {
    if (d.locked) {
      // Every other iteration probes first, to count how often the lock
      // was busy (proof that the workers did overlap); lock() either way.
      if (n % 2 === 0) mutex.lock();
      else if (!mutex.tryLock()) {
        contended++;
        mutex.lock();
      }
    }
    // Plain (non-atomic) accesses: only the mutex makes these safe.
    const a = words[Counter.A]!;
    const b = words[Counter.B]!;
    if (a !== b) Atomics.add(words, Counter.Violations, 1);
    words[Counter.A] = a + 1;
    const v = words[Counter.Value]!;
    words[Counter.Sink] = dawdle(v);
    // Now and then, sleep inside the critical section, so that the others
    // give up spinning and park: unlock's wake-up path gets exercised too.
    if (n % 256 === 255) Atomics.wait(words, Counter.Nap, 0, 0.2);
    words[Counter.Value] = v + 1;
    words[Counter.B] = b + 1;
    if (d.locked) mutex.unlock();
  }
  Atomics.add(words, Counter.Contended, contended);
  post({ kind: 'done', count: d.iterations });
}

function pingPong(d: Extract<SyncWorkerData, { kind: 'ping-pong' }>): void {
  const words = new Int32Array(d.shared);
  const ping = new WakeWord(words, PingPong.Ping);
  const pong = new WakeWord(words, PingPong.Pong);
  post({ kind: 'ready' });
  for (let round = 1; round <= d.rounds; round++) {
    if (d.role === 'ask') {
      Atomics.store(words, PingPong.Request, round);
      ping.notify();
    }
    // Wait for the other side: for a request when answering, for the answer when asking.
    const [word, index] = d.role === 'answer' ? [ping, PingPong.Request] : [pong, PingPong.Response];
    for (;;) {
      const seen = word.snapshot();
      if (Atomics.load(words, index) >= round) break;
      if (!word.wait(seen, d.timeoutMs) && Atomics.load(words, index) < round) {
        post({ kind: 'failed', detail: `${d.role}: lost wake-up in round ${round}` });
        return;
      }
    }
    if (d.role === 'answer') {
      Atomics.store(words, PingPong.Response, round);
      pong.notify();
    }
  }
  post({ kind: 'done', count: d.rounds });
}

function hold(d: Extract<SyncWorkerData, { kind: 'hold' }>): void {
  const words = new Int32Array(d.shared);
  const mutex = new Mutex(words, Hold.Mutex);
  mutex.lock();
  Atomics.store(words, Hold.Held, 1);
  Atomics.notify(words, Hold.Held);
  // Keep the lock a while, so the other side is likely parked on it.
  Atomics.wait(words, Hold.Sleep, 0, d.holdMs);
  words[Hold.Marker] = HOLD_MARKER;
  mutex.unlock();
  post({ kind: 'done', count: 0 });
}

function ringProducer(d: Extract<SyncWorkerData, { kind: 'ring-producer' }>): void {
  const ring = new ByteRing(d.ring);
  const space = new WakeWord(new Int32Array(d.space), 0);
  const chunk = new Uint8Array(1024);
  let sent = 0;
  let step = 0;
  while (sent < d.total) {
    // Chunks of varying length, so pushes land at every ring offset.
    const len = Math.min(d.total - sent, 1 + ((step++ * 389) % 1000));
    for (let i = 0; i < len; i++) chunk[i] = ringByte(sent + i);
    let done = 0;
    while (done < len) {
      done += ring.pushMany(chunk.subarray(done, len));
      if (done === len) break;
      const seen = space.snapshot();
      if (ring.free() > 0) continue;
      if (!space.wait(seen, d.timeoutMs) && ring.free() === 0) {
        post({ kind: 'failed', detail: `producer: no space after ${sent + done} bytes` });
        return;
      }
    }
    sent += len;
  }
  post({ kind: 'done', count: sent });
}

function run(data: SyncWorkerData): void {
  switch (data.kind) {
    case 'counter':
      return counter(data);
    case 'ping-pong':
      return pingPong(data);
    case 'hold':
      return hold(data);
    case 'ring-producer':
      return ringProducer(data);
    case 'clock':
      return post({ kind: 'now', ns: monotonicClock.nowNs() });
  }
}

if (!isMainThread && parentPort) run(workerData as SyncWorkerData);
