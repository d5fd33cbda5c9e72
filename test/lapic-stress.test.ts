import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import { LapicReg, LapicSet } from '../src/irqchip/lapic.js';
import { FakeClock } from '../src/sync/clock.js';
import {
  CTL_READY,
  CTL_START,
  ctlWords,
  type StressResult,
  type StressWorkerData,
} from './lapic-stress.worker.js';

const VCPUS = 8;
/** Average per worker; odd vCPUs send half, even ones one and a half times as many. */
const SENDS_PER_VCPU = 32_768;
const WAIT_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 30_000;

function runWorker(data: StressWorkerData, workers: Worker[]): Promise<StressResult> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./lapic-stress.worker.js', import.meta.url), { workerData: data });
    workers.push(w);
    w.once('message', (r: StressResult) => resolve(r));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`vCPU ${data.vcpu} exited (${code}) without a result`)));
  });
}

async function waitFor(ctl: Int32Array, index: number, value: number): Promise<void> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (let v = Atomics.load(ctl, index); v !== value; v = Atomics.load(ctl, index)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for control word ${index}`);
    const r = Atomics.waitAsync(ctl, index, v, 100);
    if (r.async) await r.value;
  }
}

describe('LAPIC stress: concurrent delivery across worker threads', function () {
  this.timeout(TEST_TIMEOUT_MS + 5_000);

  it(`loses and duplicates nothing with ${VCPUS} vCPU threads`, async () => {
    const lapics = LapicSet.allocate(VCPUS);
    const ctlBuffer = new SharedArrayBuffer(ctlWords(VCPUS) * 4);
    const ctl = new Int32Array(ctlBuffer);
    const main = new LapicSet(lapics, { clock: new FakeClock(), wake: () => {} });
    // Software-enable every APIC before any thread delivers.
    for (let i = 0; i < VCPUS; i++) main.get(i).write(LapicReg.SVR, 4, 0x1ff);

    const sends = Array.from({ length: VCPUS }, (_, i) => (i % 2 ? SENDS_PER_VCPU / 2 : (SENDS_PER_VCPU * 3) / 2));
    const totalSends = sends.reduce((a, b) => a + b, 0);
    expect(totalSends).to.be.at.least(100_000);

    const workers: Worker[] = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      const results = Promise.all(
        sends.map((n, vcpu) =>
          runWorker(
            {
              lapics,
              ctl: ctlBuffer,
              vcpu,
              vcpus: VCPUS,
              sends: n,
              seed: 0x9e3779b9 ^ (vcpu * 0x85ebca6b),
              waitTimeoutMs: WAIT_TIMEOUT_MS,
            },
            workers,
          ),
        ),
      );
      results.catch(() => {}); // a timeout below reports instead
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('stress test timed out (deadlock?)')), TEST_TIMEOUT_MS);
      });
      await Promise.race([waitFor(ctl, CTL_READY, VCPUS), timeout]);
      const t0 = performance.now();
      Atomics.store(ctl, CTL_START, 1);
      Atomics.notify(ctl, CTL_START);
      const all = await Promise.race([results, timeout]);
      const elapsedMs = performance.now() - t0;

      // Exact accounting: every acceptance that set a new IRR bit was
      // acknowledged exactly once by its target, per vector.
      let newTotal = 0;
      let coalesced = 0;
      let parks = 0;
      for (const r of all) {
        coalesced += r.coalesced;
        parks += r.parks;
      }
      for (let target = 0; target < VCPUS; target++) {
        const acked = all.find((r) => r.vcpu === target)!.acknowledged;
        for (let v = 0; v < 256; v++) {
          let sent = 0;
          for (const r of all) sent += r.newlyPending[target * 256 + v]!;
          newTotal += sent;
          if (acked[v] !== sent) {
            expect.fail(`vCPU ${target} vector 0x${v.toString(16)}: ${sent} newly pending, ${acked[v]} acknowledged`);
          }
        }
      }
      expect(newTotal + coalesced).to.equal(totalSends);
      expect(coalesced, 'hot vectors should coalesce sometimes').to.be.greaterThan(0);

      // Nothing left pending or in service anywhere.
      for (let i = 0; i < VCPUS; i++) {
        const l = main.get(i);
        for (let w = 0; w < 8; w++) {
          expect(l.read(LapicReg.IRR + w * 16, 4), `vCPU ${i} IRR[${w}]`).to.equal(0);
          expect(l.read(LapicReg.ISR + w * 16, 4), `vCPU ${i} ISR[${w}]`).to.equal(0);
        }
        expect(l.pendingVector()).to.equal(-1);
      }

      const rate = Math.round(totalSends / (elapsedMs / 1000));
      console.log(
        `      ${totalSends} deliveries (${newTotal} new, ${coalesced} coalesced, ${parks} parks) ` +
          `in ${elapsedMs.toFixed(0)} ms: ${rate} interrupts/s`,
      );
    } finally {
      clearTimeout(timer);
      await Promise.all(workers.map((w) => w.terminate()));
    }
  });
});
