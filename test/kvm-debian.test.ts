import { expect } from 'chai';
import { Kvm } from '../src/kvm/kvm.js';
import { fetchDebianImage } from '../src/images/debian.js';
import { runVm } from './helpers/guests.js';

/**
 * Debian's stock cloud kernel booted under nodevisor (opt-in: it downloads
 * ~28 MB once, and on software-virtualising hosts the boot takes minutes,
 * ~270 s or more to /init). Run with NODEVISOR_DEBIAN=1.
 */
const enabled = process.env.NODEVISOR_DEBIAN === '1';
const softwareVirt = Kvm.isSoftwareVirtualised();
const VCPUS = 2;
const BOOT_DEADLINE_MS = 20 * 60 * 1000;

describe(`Debian stock cloud kernel on ${VCPUS} vCPUs (irqchip "user")${enabled ? '' : ' [skipped: set NODEVISOR_DEBIAN=1 to download and boot it]'}`, function () {
  this.timeout(BOOT_DEADLINE_MS + 5 * 60 * 1000);
  let log = '';
  let outcome = '';

  before(async function () {
    if (!enabled) this.skip();
    const image = fetchDebianImage({ log: (line) => console.log(`      ${line}`) });
    const started = Date.now();
    const run = await runVm(
      { vcpus: VCPUS, memory: '512M', irqchip: 'user', kernel: image.kernel, initrd: image.initrd, cmdline: 'console=ttyS0 panic=-1 nokaslr' },
      undefined,
      BOOT_DEADLINE_MS,
    );
    log = run.console;
    outcome = run.result.reason.kind;
    const at = log.indexOf('Run /init as init process');
    console.log(`      ${image.version}: ${((Date.now() - started) / 1000).toFixed(1)} s, stop: ${outcome}${at < 0 ? ', /init not reached' : ''}`);
    if (at < 0) {
      throw new Error(`the kernel did not reach /init (${run.result.message}); last console lines:\n${log.split('\n').slice(-40).join('\n')}`);
    }
  });

  it('reaches "Run /init as init process"', () => {
    expect(log).to.match(/Run \/init as init process/);
  });

  it(`activates all ${VCPUS} processors (found through ACPI: the cloud kernel has no MP-table parser)`, () => {
    expect(log).to.match(new RegExp(`smpboot: Total of ${VCPUS} processors activated`));
  });

  it(softwareVirt ? 'stops when /init dies at its first system call (user space cannot run on this host)' : 'runs init.sh on every vCPU and powers off', () => {
    if (softwareVirt) {
      expect(log).to.match(/Attempted to kill init/);
      expect(outcome).to.equal('reset'); // panic=-1 reboots; nodevisor stops instead
    } else {
      expect(log).to.contain(`nodevisor-init: ${VCPUS} CPUs online`);
      expect(log).to.match(new RegExp(`nodevisor-init: ${VCPUS} busy loops of \\d+ iterations done in \\d+ ms`));
      expect(outcome).to.equal('poweroff');
    }
  });
});
