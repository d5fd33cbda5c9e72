import { expect } from 'chai';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { kitImage } from './helpers/guests.js';
import { createVm, type Vm } from '../src/index.js';

/**
 * The UART console under a stalled output stream (a pipe whose reader
 * stopped reading): the guest's output must wait, holding no more than the
 * UART's transmit ring between guest and stream, and a stream that fails
 * (EPIPE once the reader is gone) must end the VM cleanly.
 */
const RESULTS = 0x1000000;
const TX_RING = 64 * 1024;
const HIGH_WATER = 4096;

/** Waits until the guest's byte count (RESULTS[0]) has not moved for a while; returns how long it kept moving, in polls. */
async function untilBlocked(vm: Vm, deadlinePolls = 600): Promise<{ blocked: boolean; written: number }> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < deadlinePolls && still < 20; i++) {
    await sleep(100);
    const now = vm.memory.readU32(RESULTS);
    still = now === last ? still + 1 : 0;
    last = now;
  }
  return { blocked: still >= 20, written: last };
}

describe('UART console output under a stalled stream, under KVM', function () {
  this.timeout(180000);

  it('holds the guest back while the stream is full, resumes it when the stream drains, and stops the VM cleanly when the stream fails with EPIPE', async () => {
    const held: Array<() => void> = [];
    let flowing = false;
    const out = new Writable({
      highWaterMark: HIGH_WATER,
      write(_chunk: Buffer, _enc, cb) {
        if (flowing) cb();
        else held.push(() => cb());
      },
    });
    const vm = createVm({ image: kitImage('uart-flood'), memory: '64M', consoleOutput: out });
    const logs: string[] = [];
    vm.on('log', (_level: string, m: string) => logs.push(m));
    await vm.start();
    try {
      const stalled = await untilBlocked(vm);
      expect(stalled.blocked, `the guest kept writing (${stalled.written} bytes) into a stream that took nothing`).to.equal(true);
      // Between the guest and the stalled stream: the stream's buffer and the UART's transmit ring, nothing more.
      expect(out.writableLength).to.be.at.most(HIGH_WATER + TX_RING);
      expect(stalled.written - out.writableLength).to.be.at.most(TX_RING);
      expect(out.listenerCount('drain'), 'drain listeners').to.be.at.most(1);

      flowing = true;
      for (const cb of held.splice(0)) cb();
      let resumed = stalled.written;
      for (let i = 0; i < 600 && resumed <= stalled.written + 2 * TX_RING; i++) {
        await sleep(50);
        resumed = vm.memory.readU32(RESULTS);
      }
      expect(resumed, 'bytes the guest wrote once the stream drained').to.be.greaterThan(stalled.written + 2 * TX_RING);

      out.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      const result = await vm.wait();
      expect(result.reason).to.deep.equal({ kind: 'stopped' });
      expect(logs).to.include('console output failed: write EPIPE (its reader went away); stopping the VM');
    } finally {
      await vm.stop();
    }
  });
});
