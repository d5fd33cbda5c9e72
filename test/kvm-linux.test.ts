import { expect } from 'chai';
import { runVm } from './helpers/guests.js';
import { nvbenchInitramfs, testKernelOrSkip } from './helpers/linux.js';
import type { IrqchipMode } from '../src/vcpu/cpuid.js';

/**
 * The test kernel (npm run kernel) booted to user space: nodevisor's /init
 * reports the CPUs it sees, runs a multi-threaded program with one thread
 * per CPU (nvbench compute) and powers the machine off. On
 * software-virtualising hosts user space runs thanks to the test kernel's
 * SYSCALL patch (images/syscall-fetch-fault.patch). Each boot takes ~10-20 s
 * here; NODEVISOR_LINUX_SMP=4,8 adds boots with more vCPUs (CI sets
 * NODEVISOR_REQUIRE_LINUX so a missing kernel fails instead of skipping).
 */
const extra = (process.env.NODEVISOR_LINUX_SMP ?? '').split(',').filter(Boolean).map(Number);
const BOOTS: { vcpus: number; irqchip: IrqchipMode }[] = [
  { vcpus: 1, irqchip: 'user' },
  { vcpus: 2, irqchip: 'user' },
  { vcpus: 2, irqchip: 'split' },
  { vcpus: 2, irqchip: 'kernel' },
  ...extra.map((vcpus) => ({ vcpus, irqchip: 'user' as const })),
];

for (const { vcpus, irqchip } of BOOTS) {
  describe(`Linux test kernel to user space on ${vcpus} vCPU${vcpus > 1 ? 's' : ''} (irqchip "${irqchip}")`, function () {
    this.timeout(300000);
    let log = '';
    let outcome = '';
    let status = -1;

    before(async function () {
      const kernel = testKernelOrSkip(this);
      const initrd = nvbenchInitramfs({ runList: ['nvbench compute 0.5'] });
      const run = await runVm({ vcpus, irqchip, memory: '128M', kernel, initrd }, undefined, 240000);
      log = run.console;
      outcome = run.result.reason.kind;
      status = run.result.exitStatus;
      if (!/nodevisor-init: exit status/.test(log)) {
        throw new Error(`/init did not finish (${run.result.message}); last console output:\n${log.slice(-3000)}`);
      }
    });

    it(`brings up ${vcpus === 1 ? 'its one vCPU' : `all ${vcpus} vCPUs`}`, () => {
      if (vcpus === 1) expect(log).to.match(/smp: Brought up 1 node, 1 CPU/);
      else expect(log).to.match(new RegExp(`smpboot: Total of ${vcpus} processors activated`));
    });

    it(`sees the default topology: one package of ${vcpus} core${vcpus > 1 ? 's' : ''}, one thread each`, () => {
      expect(log).to.match(/CPU topo: Max\. logical packages:\s+1\b/);
      expect(log).to.match(/CPU topo: Max\. threads per core:\s+1\b/);
      expect(log).to.match(new RegExp(`CPU topo: Num\\. cores per package:\\s+${vcpus}\\b`));
    });

    it('has working timers (LAPIC timer calibrated, IO-APIC timer check passed)', () => {
      expect(log).not.to.match(/APIC timer calibration failed/);
      expect(log).not.to.match(/IO-APIC \+ timer doesn't work/);
      expect(log).to.match(/clocksource: Switched to clocksource/);
    });

    it('finds the serial port on IRQ 4', () => {
      expect(log).to.match(/ttyS0 at I\/O 0x3f8 \(irq = 4, base_baud = 115200\) is a 16550A/);
    });

    it('runs /init in user space, which sees every vCPU', () => {
      expect(log).to.contain(`nodevisor-init: ${vcpus} CPUs online`);
    });

    it('runs a program with one thread per CPU, and its threads run on every CPU', () => {
      expect(log).to.contain(`metric threads ${vcpus} threads higher`);
      expect(log).to.contain(`metric cpus-used ${vcpus} cpus higher`);
      expect(log).to.match(/metric throughput [0-9.e+]+ Mops\/s higher/);
      expect(log).to.contain('nodevisor-init: run 1 exited with status 0');
    });

    it('powers off through ACPI once /init is done: exit status 0', () => {
      expect(log).to.contain('nodevisor-init: exit status 0');
      expect(outcome).to.equal('poweroff');
      expect(status).to.equal(0);
    });
  });
}

describe("Linux test kernel: /init's run list fails", function () {
  this.timeout(300000);

  it("reports the failing command's status through the debug-exit port: nodevisor exits (status << 1) | 1", async function () {
    const kernel = testKernelOrSkip(this);
    // nvbench exits 2 on a bad duration; the second command must not run.
    const initrd = nvbenchInitramfs({ runList: ['nvbench compute -1', 'nvbench compute 0.1'] });
    const run = await runVm({ vcpus: 1, memory: '128M', kernel, initrd }, undefined, 240000);
    expect(run.console).to.contain('nodevisor-init: run 1 exited with status 2');
    expect(run.console).not.to.contain('nodevisor-init: run 2:');
    expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code: 2 });
    expect(run.result.exitStatus).to.equal((2 << 1) | 1);
  });
});
