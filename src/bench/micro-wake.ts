/**
 * Cross-thread wake cost: two worker_threads ping-pong through the
 * WakeWord primitive the vCPU threads park on (src/sync/wake-word.ts), so a
 * round trip is two "Atomics.notify wakes a thread asleep in Atomics.wait"
 * hand-offs: the path a halted vCPU is woken by. Timed in the pinger with
 * process.hrtime around each round trip.
 */
import { Worker } from 'node:worker_threads';
import type { WakeWorkerData } from './wake-worker.js';

const WORDS = 3;

/** Runs `warmup + rounds` round trips in fresh workers; returns the last `rounds` in microseconds. */
export async function wakeRoundTrips(rounds: number, warmup: number): Promise<number[]> {
  const words = new SharedArrayBuffer(WORDS * 4);
  const url = new URL('./wake-worker.js', import.meta.url);
  const start = (role: WakeWorkerData['role']): Worker => new Worker(url, { workerData: { role, words, rounds: rounds + warmup } satisfies WakeWorkerData });
  const finished = (w: Worker): Promise<{ ns?: number[] }> =>
    new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`wake benchmark worker exited (${code}) before reporting`)));
    });
  const ponger = start('ponger');
  const pongerDone = finished(ponger);
  // Not needed for correctness (see wake-worker.ts), but keeps the
  // ponger's start-up out of the first round trips.
  await new Promise<void>((resolve) => ponger.once('online', () => resolve()));
  const pinger = start('pinger');
  try {
    const [result] = await Promise.all([finished(pinger), pongerDone]);
    if (!result.ns) throw new Error('wake benchmark worker reported no timings');
    return result.ns.slice(warmup).map((ns) => ns / 1000);
  } finally {
    await Promise.all([pinger.terminate(), ponger.terminate()]);
  }
}
