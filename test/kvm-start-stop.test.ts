import { expect } from 'chai';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createVm } from '../src/index.js';
import { NodevisorError } from '../src/kvm/errors.js';
import { testImage } from './helpers/guests.js';

/** What of KVM this process still holds: descriptors and mapped vCPU run pages. */
function kvmHeld(): { fds: number; mappings: number } {
  const fds = readdirSync('/proc/self/fd').filter((f) => {
    try {
      return /kvm/.test(readlinkSync(`/proc/self/fd/${f}`));
    } catch {
      return false;
    }
  }).length;
  return { fds, mappings: readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => /anon_inode:kvm/.test(l)).length };
}

async function startError(p: Promise<void>): Promise<NodevisorError> {
  try {
    await p;
  } catch (e) {
    expect(e).to.be.instanceOf(NodevisorError);
    return e as NodevisorError;
  }
  throw new Error('start() should have failed');
}

describe('starting and stopping VMs under KVM', function () {
  this.timeout(120000);

  it('cuts a 64-vCPU start short when stop() comes while it spawns: start() rejects ESTOPPED, stop() resolves, nothing of KVM is left', async () => {
    const vm = createVm({ vcpus: 64, memory: '64M', image: testImage('spin-forever') });
    const starting = vm.start();
    await new Promise((resolve) => setImmediate(resolve)); // the first vCPU threads are spawning
    const stopped = vm.stop();
    const e = await startError(starting);
    expect(e.code).to.equal('ESTOPPED');
    expect(e.message).to.equal('the VM was stopped while it was starting');
    expect((await stopped).reason).to.deep.equal({ kind: 'stopped' });
    expect((await vm.wait()).exitStatus).to.equal(8);
    expect(vm.stats().vcpus.filter((v) => v.tid !== 0).length, 'vCPUs that were created').to.be.below(64);
    expect(kvmHeld()).to.deep.equal({ fds: 0, mappings: 0 });
  });

  it('settles wait() when a start fails, with why', async () => {
    const vm = createVm({ memory: '64M', kernel: '/nonexistent/bzImage' });
    expect((await startError(vm.start())).code).to.equal('EKERNEL');
    const result = await vm.wait();
    expect(result.reason.kind).to.equal('error');
    expect(result.message).to.equal('the VM could not start: kernel /nonexistent/bzImage does not exist');
  });

  it('refuses a kvmPath that is not the KVM device with a clear error, and leaves no descriptor open', async () => {
    const before = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 3; i++) {
      const e = await startError(createVm({ memory: '64M', kvmPath: '/etc/hostname' }).start());
      expect(e.code).to.equal('EKVM');
      expect(e.message).to.equal('/etc/hostname is not the KVM device (it does not answer KVM_GET_API_VERSION: ioctl: Inappropriate ioctl for device): use /dev/kvm');
    }
    expect(readdirSync('/proc/self/fd').length).to.equal(before);
  });
});
