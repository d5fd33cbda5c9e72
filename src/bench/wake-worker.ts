/**
 * Worker for the wake ping-pong (see micro-wake.ts). The 'pinger' times
 * each round trip: bump-and-notify PING, sleep on PONG until the 'ponger'
 * (asleep on PING) answers. Both sleep in Atomics.wait, so every round trip
 * is two futex wakes of a sleeping thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WakeWord } from '../sync/wake-word.js';

export interface WakeWorkerData {
  role: 'pinger' | 'ponger';
  words: SharedArrayBuffer;
  rounds: number;
}

/** Word indices in `words`: the two wake words and a stop flag. */
export const WakeWords = { ping: 0, pong: 1, stop: 2, count: 3 } as const;

const data = workerData as WakeWorkerData;
const words = new Int32Array(data.words);
const ping = new WakeWord(words, WakeWords.ping);
const pong = new WakeWord(words, WakeWords.pong);

// Both start from the words' initial 0, not a snapshot: a ping sent before
// the ponger got here is then answered at once instead of lost.
if (data.role === 'ponger') {
  let seen = 0;
  for (;;) {
    ping.wait(seen);
    seen = ping.snapshot();
    if (Atomics.load(words, WakeWords.stop)) break;
    pong.notify();
  }
  parentPort!.postMessage({ done: true });
} else {
  const ns: number[] = [];
  let seen = 0;
  for (let i = 0; i < data.rounds; i++) {
    const t0 = process.hrtime.bigint();
    ping.notify();
    while (pong.snapshot() === seen) pong.wait(seen);
    const t1 = process.hrtime.bigint();
    seen = pong.snapshot();
    ns.push(Number(t1 - t0));
  }
  Atomics.store(words, WakeWords.stop, 1);
  ping.notify();
  parentPort!.postMessage({ ns });
}
