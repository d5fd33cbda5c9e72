// The other thread of the conformance suite: builds its own view of a
// device's shared state and runs the case's guest program through it.
import { parentPort, workerData } from 'node:worker_threads';
import { conformanceHost, deviceCase, runAccesses } from './helpers/device-cases.js';

export interface ConformanceWorkerData {
  name: string;
  state: unknown;
}

const data = workerData as ConformanceWorkerData;
const c = deviceCase(data.name);
runAccesses(c.view(data.state, conformanceHost()), c.program, 1);
parentPort?.postMessage('done');
