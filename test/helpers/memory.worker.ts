import { parentPort, workerData } from 'node:worker_threads';
import { GuestMemory, type MemoryRegion } from '../../src/memory/guest-memory.js';

// A thread that is neither the main thread nor a vCPU: reads guest RAM and
// writes into it on request, to prove the SharedArrayBuffer is truly shared.
const memory = new GuestMemory(workerData.regions as MemoryRegion[]);
parentPort!.on('message', (m: { op: 'read'; gpa: number; length: number } | { op: 'write64'; gpa: number; value: bigint }) => {
  if (m.op === 'read') parentPort!.postMessage(memory.read(m.gpa, m.length));
  else {
    memory.writeU64(m.gpa, m.value);
    parentPort!.postMessage('done');
  }
});
