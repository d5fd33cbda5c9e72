import { expect } from 'chai';
import type { StopReason } from '../src/devices/device.js';
import { VmControlBlock } from '../src/vcpu/control.js';
import { ServingPool, type LogLevel } from '../src/vm/threads/serving-pool.js';
import { threadVmControl, type ThreadReport } from '../src/vm/threads/thread-control.js';
import type { StopAskingTask } from './serving-pool.worker.js';

describe('stop requests and log lines from VM threads', () => {
  it('reach the main thread from every I/O thread of a serving pool, with their reasons', async () => {
    const logs: Array<[LogLevel, string]> = [];
    const stops: StopReason[] = [];
    const failures: Error[] = [];
    const pool = new ServingPool<StopAskingTask>({
      filename: new URL('./serving-pool.worker.js', import.meta.url).href,
      workerData: null,
      tasks: [{ code: 3 }, { code: 4 }],
      log: (level, message) => logs.push([level, message]),
      requestStop: (reason) => stops.push(reason),
      failed: (e) => failures.push(e),
    });
    for (let i = 0; i < 500 && stops.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    await pool.close();
    expect(failures).to.deep.equal([]);
    expect(stops).to.have.deep.members([
      { kind: 'debug-exit', code: 3 },
      { kind: 'debug-exit', code: 4 },
    ]);
    expect(logs).to.have.deep.members([
      ['warn', 'task 3 is asking for a stop'],
      ['warn', 'task 4 is asking for a stop'],
    ]);
  });

  it('leave the claim to the main thread when the thread has no control block (I/O threads)', () => {
    const posted: ThreadReport[] = [];
    const vm = threadVmControl((m) => posted.push(m));
    vm.requestStop({ kind: 'poweroff' });
    vm.requestStop({ kind: 'reset' });
    expect(posted).to.deep.equal([
      { type: 'stop', reason: { kind: 'poweroff' } },
      { type: 'stop', reason: { kind: 'reset' } },
    ]);
  });

  it('claim the stop on vCPU and timer threads: only the first request is reported, and the VM is stopping', () => {
    const control = new VmControlBlock(VmControlBlock.allocate(2), 2);
    const posted: ThreadReport[] = [];
    const vm = threadVmControl((m) => posted.push(m), control);
    vm.requestStop({ kind: 'poweroff' });
    vm.requestStop({ kind: 'reset' });
    vm.log('info', 'after');
    expect(control.stopRequested).to.equal(true);
    expect(posted).to.deep.equal([
      { type: 'stop', reason: { kind: 'poweroff' } },
      { type: 'log', level: 'info', message: 'after' },
    ]);
  });
});
