import { expect } from 'chai';
import { Kvm } from '../src/kvm/kvm.js';
import { runVm } from './helpers/guests.js';
import { testKernelOrSkip, testInitramfs } from './helpers/linux.js';

/**
 * The small test kernel (npm run kernel) booted to its /init. These boots
 * take ~10-20 s each on software-virtualising hosts; larger vCPU counts run
 * with NODEVISOR_LINUX_SMP=4,8 (CI sets NODEVISOR_REQUIRE_LINUX so a missing
 * kernel fails instead of skipping).
 */
const softwareVirt = Kvm.isSoftwareVirtualised();
const extra = (process.env.NODEVISOR_LINUX_SMP ?? '').split(',').filter(Boolean).map(Number);

for (const vcpus of [1, 2, ...extra]) {
  describe(`Linux test kernel on ${vcpus} vCPU${vcpus > 1 ? 's' : ''} (irqchip "user")`, function () {
    this.timeout(300000);
    let log = '';
    let outcome = '';

    before(async function () {
      const kernel = testKernelOrSkip(this);
      const run = await runVm(
        { vcpus, memory: '256M', kernel, initrd: testInitramfs(), cmdline: 'console=ttyS0 panic=-1' },
        undefined,
        240000,
      );
      log = run.console;
      outcome = run.result.reason.kind;
      if (!/Run \/init as init process/.test(log)) {
        throw new Error(`the kernel did not reach /init (${run.result.message}); last console output:\n${log.slice(-3000)}`);
      }
    });

    it('reaches "Run /init as init process"', () => {
      expect(log).to.match(/Run \/init as init process/);
    });

    it(`brings up ${vcpus === 1 ? 'its one vCPU' : `all ${vcpus} vCPUs`}`, () => {
      if (vcpus === 1) expect(log).to.match(/smp: Brought up 1 node, 1 CPU/);
      else expect(log).to.match(new RegExp(`smpboot: Total of ${vcpus} processors activated`));
    });

    it('has working timers (LAPIC timer calibrated, IO-APIC timer check passed)', () => {
      expect(log).not.to.match(/APIC timer calibration failed/);
      expect(log).not.to.match(/IO-APIC \+ timer doesn't work/);
      expect(log).to.match(/clocksource: Switched to clocksource/);
    });

    it('finds the serial port on IRQ 4', () => {
      expect(log).to.match(/ttyS0 at I\/O 0x3f8 \(irq = 4, base_baud = 115200\) is a 16550A/);
    });

    it(softwareVirt ? 'stops when /init dies at its first system call (user space cannot run on this host)' : 'runs /init in user space, which reports the CPU count and powers off', () => {
      if (softwareVirt) {
        expect(log).to.match(/Attempted to kill init/);
        expect(outcome).to.equal('reset'); // panic=-1 reboots; nodevisor stops instead
      } else {
        expect(log).to.contain(`nodevisor-init: ${vcpus} CPUs online`);
        expect(outcome).to.equal('poweroff');
      }
    });
  });
}
