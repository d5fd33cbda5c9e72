import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import type { ConformanceWorkerData } from './device-conformance.worker.js';
import { asBytes, conformanceHost, DEVICE_CASES, type DeviceCase, joinBytes, runAccesses } from './helpers/device-cases.js';

/** A fresh state with the case's program run through one view. */
function programmed(c: DeviceCase): unknown {
  const state = c.allocate();
  runAccesses(c.view(state, conformanceHost()), c.program);
  return state;
}

/** What the probes read through a new view of `state`. */
function probe(c: DeviceCase, state: unknown): number[] {
  return runAccesses(c.view(state, conformanceHost()), c.probe);
}

/** The saved state as a snapshot file would hold it. */
function saved(c: DeviceCase, state: unknown): unknown {
  return JSON.parse(JSON.stringify(c.save(state))) as unknown;
}

async function programInWorker(c: DeviceCase, state: unknown): Promise<void> {
  const data: ConformanceWorkerData = { name: c.name, state };
  const worker = new Worker(new URL('./device-conformance.worker.js', import.meta.url), { workerData: data });
  await new Promise<void>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
  });
}

describe('every device with shared state (conformance)', function () {
  this.timeout(30_000);

  for (const c of DEVICE_CASES) {
    describe(c.name, () => {
      it('shows the guest program in what the probes read (so the checks below can fail)', () => {
        expect(probe(c, programmed(c))).to.not.deep.equal(probe(c, c.allocate()));
      });

      it('shows a program run through a view on another thread to a view on this one, as if run here', async () => {
        const state = c.allocate();
        runAccesses(c.view(state, conformanceHost()), []); // this thread's view exists first, as a vCPU's would
        await programInWorker(c, state);
        expect(saved(c, state)).to.deep.equal(saved(c, programmed(c)));
        expect(probe(c, state)).to.deep.equal(probe(c, programmed(c)));
      });

      it('round-trips its state through a snapshot: the loaded copy saves and reads back the same', () => {
        const original = programmed(c);
        const record = saved(c, original);
        const copy = c.allocate();
        c.load(copy, record);
        expect(saved(c, copy)).to.deep.equal(record);
        expect(probe(c, copy)).to.deep.equal(probe(c, programmed(c)));
      });

      if (c.wide.length > 0) {
        it('answers a wide access as the byte accesses it covers, lowest byte first', () => {
          const wideState = programmed(c);
          const byteState = programmed(c);
          const wideReads = runAccesses(c.view(wideState, conformanceHost()), c.wide);
          const bytes = asBytes(c.wide);
          const byteReads = runAccesses(c.view(byteState, conformanceHost()), bytes);
          expect(wideReads).to.deep.equal(joinBytes(c.wide, byteReads));
          expect(saved(c, wideState)).to.deep.equal(saved(c, byteState));
        });
      }
    });
  }
});
