import { expect } from 'chai';
import { createVm, NodevisorError } from '../src/index.js';
import type { Vm } from '../src/vm/vm.js';
import type { IrqchipMode } from '../src/vcpu/cpuid.js';
import { until } from './helpers/until.js';
import { R, PM_HZ, RESULTS } from './helpers/pause-ticks.js';
import { kitImage } from './helpers/guests.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


for (const irqchip of ['user', 'split', 'kernel'] as IrqchipMode[]) {
  describe(`pause and resume (irqchip "${irqchip}")`, function () {
    this.timeout(120000);
    let vm: Vm;
    const seen: Record<string, number> = {};

    before(async () => {
      vm = createVm({ vcpus: 2, memory: '64M', irqchip, image: kitImage('pause-ticks') });
      await vm.start();
      await until(() => R(vm, 0) >= 20, '20 timer ticks');
      vm.memory.writeU32(RESULTS + 4 * 4, 0);
      await vm.pause();
      seen.ticks = R(vm, 0);
      seen.spins = R(vm, 1);
      seen.states = vm.stats().vcpus.filter((v) => v.state === 'paused').length;
      await sleep(1000);
      seen.ticksLater = R(vm, 0);
      seen.spinsLater = R(vm, 1);
      await vm.pause(); // a second pause changes nothing
      await vm.resume();
      await until(() => R(vm, 0) >= seen.ticks! + 20, '20 ticks after resuming');
      seen.maxStep = R(vm, 4);
      seen.spinsAfter = R(vm, 1);
      seen.paused = Math.min(...vm.stats().vcpus.map((v) => v.pausedSeconds));
      vm.memory.writeU32(RESULTS + 15 * 4, 1);
    });

    after(async () => {
      if (vm) await vm.stop();
    });

    it('parks every vCPU outside the guest: no guest instruction runs while paused', () => {
      expect(seen.states).to.equal(2);
      expect(seen.spinsLater).to.equal(seen.spins);
    });

    it('fires no timer interrupt while paused', () => {
      expect(seen.ticksLater).to.equal(seen.ticks);
    });

    it("continues the guest's clock without a jump: no tick-to-tick step near the pause's length", () => {
      // The pause lasted a second; the largest step between ticks stays far below it.
      expect(seen.maxStep).to.be.below(PM_HZ / 4);
    });

    it('runs every vCPU again after resume, and counts the paused time per vCPU', () => {
      expect(seen.spinsAfter).to.be.greaterThan(seen.spins!);
      expect(seen.paused).to.be.at.least(0.9);
    });

    it('finishes normally afterwards', async () => {
      const r = await vm.wait();
      expect(r.reason).to.deep.equal({ kind: 'debug-exit', code: 0x42 });
    });
  });
}

describe('pause and resume: lifecycle', function () {
  this.timeout(60000);

  it('stops a paused VM promptly', async () => {
    const vm = createVm({ vcpus: 2, memory: '64M', image: kitImage('pause-ticks') });
    await vm.start();
    await vm.pause();
    expect(vm.isPaused).to.equal(true);
    const r = await vm.stop();
    expect(r.reason.kind).to.equal('stopped');
  });

  it('refuses to pause or resume a VM that is not running', async () => {
    const vm = createVm({ memory: '64M', image: kitImage('pause-ticks') });
    let err: unknown;
    await vm.pause().catch((e) => (err = e));
    expect(err).to.be.instanceOf(NodevisorError);
    expect((err as Error).message).to.match(/cannot pause a VM that is new/);
  });
});
