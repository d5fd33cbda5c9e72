// The far side of the IOAPIC's cross-thread test: a device-like thread with
// its own view over the shared IOAPIC, toggling its own pins.
import { workerData } from 'node:worker_threads';
import { Ioapic } from '../src/irqchip/ioapic.js';
import type { ApicMessage } from '../src/irqchip/types.js';

export interface IoapicWorkerData {
  ioapic: SharedArrayBuffer;
  /** Int32 per vector: deliveries seen by any thread's bus. */
  counts: SharedArrayBuffer;
  /** Int32 words: [0] go (set by the main thread), [1] workers finished. */
  flags: SharedArrayBuffer;
  pins: number[];
  cycles: number;
}

const GO = 0;
const DONE = 1;

const data = workerData as IoapicWorkerData;
const counts = new Int32Array(data.counts);
const flags = new Int32Array(data.flags);
const ioapic = new Ioapic(data.ioapic, {
  deliver(msg: ApicMessage) {
    Atomics.add(counts, msg.vector, 1);
  },
});

Atomics.wait(flags, GO, 0);
for (let i = 0; i < data.cycles; i++) {
  for (const pin of data.pins) {
    ioapic.setLevel(pin, true);
    // A repeated level is not an edge.
    if ((i & 7) === 0) ioapic.setLevel(pin, true);
    ioapic.setLevel(pin, false);
  }
}
Atomics.add(flags, DONE, 1);
Atomics.notify(flags, DONE);
