// A stand-in vCPU thread for test/vcpu-set.test.ts: reports what its data
// asks for, as a real vCPU worker would, then ends.
import { parentPort, workerData } from 'node:worker_threads';
import type { WorkerMessage } from '../src/vm/threads/vcpu-worker-data.js';

export interface FakeVcpuData {
  index: number;
  /** Throw during set-up instead of reporting ready. */
  fail?: string;
  /** Stay alive (reported ready) until terminated. */
  hang?: boolean;
}

const data = workerData as FakeVcpuData;
const post = (m: WorkerMessage): void => parentPort!.postMessage(m);
if (data.fail) throw new Error(data.fail);
post({ type: 'ready', index: data.index, tid: 0 });
post({ type: 'log', level: 'info', message: `vCPU ${data.index} up` });
post({ type: 'debug-output', bytes: new TextEncoder().encode(`dbg${data.index}`) });
if (data.index === 1) post({ type: 'stop', reason: { kind: 'debug-exit', code: 1 } });
if (data.hang) setInterval(() => {}, 1000);
