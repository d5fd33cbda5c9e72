import { expect } from 'chai';
import { runVm } from './helpers/guests.js';
import { nvbenchInitramfs, testKernelOrSkip } from './helpers/linux.js';
import type { VcpuStats } from '../src/vm/vcpu-stats.js';
import type { ExitProfileEntry } from '../src/vcpu/exit-profile.js';

/**
 * Paravirtual EOI with a real guest: the test kernel (CONFIG_KVM_GUEST) on
 * the userspace LAPIC, booted with and without it and running a wake-up
 * ping-pong between its two CPUs (IPIs). Linux enables PV EOI on each CPU
 * with a WRMSR of MSR_KVM_PV_EOI_EN where CPUID offers it, then skips the
 * EOI register write for interrupts we armed. Counted, not timed.
 */
const EOI_REGISTER = 0xfee000b0;

interface Boot {
  log: string;
  outcome: string;
  vcpus: VcpuStats[];
  profile: ExitProfileEntry[];
}

async function boot(kernel: string, pvEoi: boolean): Promise<Boot> {
  const initrd = nvbenchInitramfs({ runList: ['nvbench pingpong 0.5'] });
  const run = await runVm({ vcpus: 2, irqchip: 'user', memory: '128M', kernel, initrd, pvEoi, exitProfile: true }, undefined, 240000);
  if (!/nodevisor-init: exit status/.test(run.console)) throw new Error(`/init did not finish (${run.result.message}); last console output:\n${run.console.slice(-3000)}`);
  return { log: run.console, outcome: run.result.reason.kind, vcpus: run.vm.stats().vcpus, profile: run.vm.exitProfile() ?? [] };
}

const sum = (vs: VcpuStats[], f: (v: VcpuStats) => number): number => vs.reduce((n, v) => n + f(v), 0);
const eoiWrites = (b: Boot): number => b.profile.find((e) => e.kind === 'mmio-write' && e.address === EOI_REGISTER)?.exits ?? 0;
const lapicExits = (b: Boot): number => b.profile.filter((e) => e.device === 'lapic').reduce((n, e) => n + e.exits, 0);

describe('Linux test kernel with paravirtual EOI (irqchip "user", 2 vCPUs)', function () {
  this.timeout(600000);
  let on: Boot;
  let off: Boot;

  before(async function () {
    const kernel = testKernelOrSkip(this);
    on = await boot(kernel, true);
    off = await boot(kernel, false);
    const line = (name: string, b: Boot): string => {
      const injections = sum(b.vcpus, (v) => v.injections);
      return `${name}: ${injections} interrupts injected, ${sum(b.vcpus, (v) => v.pvEois)} PV EOIs, ${eoiWrites(b)} EOI register writes, ${(lapicExits(b) / injections).toFixed(2)} LAPIC exits per interrupt`;
    };
    console.log(`      ${line('PV EOI on ', on)}\n      ${line('PV EOI off', off)}`);
  });

  it('runs the ping-pong in user space and powers off, either way', () => {
    for (const b of [on, off]) {
      expect(b.log).to.contain('nodevisor-init: run 1 exited with status 0');
      expect(b.outcome).to.equal('poweroff');
    }
  });

  it('is enabled by the guest on every CPU (its WRMSR reaches our LAPIC), and only where CPUID offers it', () => {
    for (const v of on.vcpus) expect(v.exitsByReason.WrMsr ?? 0, `vCPU ${v.index}`).to.be.at.least(1);
    for (const v of off.vcpus) expect(v.exitsByReason.WrMsr ?? 0, `vCPU ${v.index}`).to.equal(0);
    expect(sum(off.vcpus, (v) => v.pvEois)).to.equal(0);
  });

  it('carries most EOIs: the EOI register is written for a small share of interrupts, where it was for most without', () => {
    const injected = (b: Boot): number => sum(b.vcpus, (v) => v.injections);
    expect(sum(on.vcpus, (v) => v.pvEois)).to.be.above(injected(on) / 2);
    expect(eoiWrites(on)).to.be.below(injected(on) / 4);
    expect(eoiWrites(off)).to.be.above(injected(off) / 2);
  });

  it('takes fewer LAPIC exits per interrupt', () => {
    const perInterrupt = (b: Boot): number => lapicExits(b) / sum(b.vcpus, (v) => v.injections);
    expect(perInterrupt(on)).to.be.below(perInterrupt(off) - 0.5);
  });
});
