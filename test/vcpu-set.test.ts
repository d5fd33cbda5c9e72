import { expect } from 'chai';
import type { StopReason } from '../src/devices/device.js';
import { VmControlBlock } from '../src/vcpu/control.js';
import { VcpuSet, type VcpuSetHost } from '../src/vm/vcpu-set.js';
import type { VcpuWorkerData } from '../src/vm/threads/vcpu-worker-data.js';
import type { FakeVcpuData } from './vcpu-set.worker.js';

/** A VcpuSet over stand-in vCPU threads (no KVM), recording what reaches the VM. */
function harness(options: { stopAfter?: number } = {}) {
  const seen = { logs: [] as string[], stopped: [] as StopReason[], requested: [] as StopReason[], debug: [] as string[], spawned: 0 };
  let stopping = false;
  const host: VcpuSetHost = {
    url: () => {
      seen.spawned++;
      if (options.stopAfter !== undefined && seen.spawned >= options.stopAfter) stopping = true;
      return new URL('./vcpu-set.worker.js', import.meta.url);
    },
    log: (_level, message) => seen.logs.push(message),
    stopped: (reason) => seen.stopped.push(reason),
    requestStop: (reason) => {
      seen.requested.push(reason);
      stopping = true;
    },
    debugOutput: (bytes) => seen.debug.push(bytes.toString()),
    debugStop: () => {},
    stopping: () => stopping,
  };
  return { set: new VcpuSet(host), seen };
}

const fake = (d: FakeVcpuData): VcpuWorkerData => d as unknown as VcpuWorkerData;

describe('the vCPU thread set', () => {
  it('resolves once every thread is ready, passes on their logs, stop reasons and debug output, and sees them all end', async () => {
    const { set, seen } = harness();
    await set.spawn(3, (i) => fake({ index: i }));
    await set.exited();
    expect(seen.spawned).to.equal(3);
    expect(seen.logs).to.have.members(['vCPU 0 up', 'vCPU 1 up', 'vCPU 2 up']);
    expect(seen.debug).to.have.members(['dbg0', 'dbg1', 'dbg2']);
    expect(seen.stopped).to.deep.equal([{ kind: 'debug-exit', code: 1 }]);
  });

  it('throws the set-up failure of a thread that dies, and asks the VM to stop naming that vCPU', async () => {
    const { set, seen } = harness();
    let error: Error | undefined;
    await set.spawn(2, (i) => fake({ index: i, ...(i === 1 ? { fail: 'no vCPU for you' } : {}) })).catch((e: Error) => (error = e));
    await set.exited();
    expect(error?.message).to.equal('no vCPU for you');
    expect(seen.requested).to.have.length(1);
    expect(seen.requested[0]).to.include({ kind: 'error', vcpu: 1 });
  });

  it('spawns no more threads once the VM is stopping, and its abort ends the ones it has', async () => {
    const { set, seen } = harness({ stopAfter: 2 });
    await set.spawn(50, (i) => fake({ index: i, hang: true }));
    expect(seen.spawned).to.equal(2);
    // The stand-ins never claim their KVM set-up, so abort terminates them where they hang.
    await set.abort(new VmControlBlock(VmControlBlock.allocate(2), 2));
  });
});
