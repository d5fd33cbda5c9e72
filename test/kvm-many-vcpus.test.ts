import { expect } from 'chai';
import { Kvm } from '../src/kvm/kvm.js';
import { IRQCHIP_MODES } from '../src/vm/options.js';
import { ExitStatus } from '../src/vm/stop-reason.js';
import { runVm } from './helpers/guests.js';

/** The most vCPUs xAPIC IDs (0-254) address: every irqchip mode takes them, ours included. */
const VCPUS = 255;

describe(`the demo guest on ${VCPUS} vCPUs`, function () {
  // Hundreds of threads on a small, shared host: minutes, not a speed test.
  this.timeout(600_000);

  before(function () {
    const kvm = Kvm.open();
    const max = kvm.maxVcpus;
    kvm.close();
    if (max < VCPUS) {
      console.log(`      skipped: this host's KVM allows at most ${max} vCPUs (KVM_CAP_MAX_VCPUS)`);
      this.skip();
    }
  });

  for (const irqchip of IRQCHIP_MODES) {
    it(`boots with the ${irqchip} irqchip: every vCPU checks in with its own APIC ID and the guest powers off`, async () => {
      const run = await runVm({ vcpus: VCPUS, irqchip }, undefined, 540_000);
      expect(run.result.exitStatus, run.result.message).to.equal(ExitStatus.poweroff);
      for (let i = 0; i < VCPUS; i++) expect(run.console).to.contain(`vCPU ${i} (APIC ID ${i}) of ${VCPUS} online`);
      expect(run.console).to.contain(`all ${VCPUS} vCPUs reported; powering off`);
      expect(new Set(run.vm.stats().vcpus.map((s) => s.tid)).size).to.equal(VCPUS);
    });
  }
});
