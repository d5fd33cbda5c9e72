import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVm } from './helpers/guests.js';
import { testKernelOrSkip, testInitramfs } from './helpers/linux.js';
import { VirtioStatus } from '../src/virtio/constants.js';
import type { VmStats } from '../src/vm/vm.js';

/**
 * The test kernel probes the virtio PCI devices: virtio-blk over an image
 * with an MBR partition table, virtio-rng, and virtio-console, which
 * becomes the kernel's console (hvc0) once bound. Two boots cover both
 * interrupt paths: MSI-X in split mode (KVM's LAPICs, KVM_SIGNAL_MSI), and
 * with `pci=nomsi` INTx in user mode, through the DSDT's interrupt links,
 * our IOAPIC and our LAPIC.
 */
const BOOTS = [
  { irqchip: 'split', extra: '', interrupts: 'msix' },
  { irqchip: 'user', extra: ' pci=nomsi', interrupts: 'intx' },
] as const;

for (const boot of BOOTS) {
  describe(`Linux test kernel with virtio-blk, virtio-rng and virtio-console (irqchip "${boot.irqchip}", ${boot.interrupts === 'msix' ? 'MSI-X' : 'INTx'})`, function () {
    this.timeout(300000);
    let log = '';
    let logs: string[] = [];
    let virtio: VmStats['virtio'] = [];

    before(async function () {
      const kernel = testKernelOrSkip(this);
      const dir = mkdtempSync(join(tmpdir(), 'nodevisor-linux-blk-'));
      const image = join(dir, 'disk.img');
      const bytes = Buffer.alloc(8 << 20);
      // An MBR with one Linux partition (type 0x83) at LBA 2048, 4096 sectors.
      bytes[446 + 4] = 0x83;
      bytes.writeUInt32LE(2048, 446 + 8);
      bytes.writeUInt32LE(4096, 446 + 12);
      bytes[510] = 0x55;
      bytes[511] = 0xaa;
      writeFileSync(image, bytes);
      const cmdline = `earlyprintk=serial console=hvc0 panic=-1${boot.extra}`;
      try {
        const run = await runVm(
          { vcpus: 1, memory: '256M', irqchip: boot.irqchip, kernel, initrd: testInitramfs(), cmdline, disks: [{ path: image }], rng: true, console: 'virtio' },
          async (vm) => {
            // Sample the devices every 50 ms while the guest runs, and judge the last sample in which every
            // driver had its device live, once /init has started (every driver has probed by then). /init
            // powers off soon after and the drivers' shutdown resets every device, so one sample taken after
            // seeing the line could meet that (CI saw it when its host was slow to hand us the console).
            let seen = '';
            let stopped = false;
            vm.on('console', (c: Buffer) => (seen += c.toString('latin1')));
            void vm.wait().then(() => (stopped = true));
            const live = (sample: VmStats['virtio']): boolean => sample.length > 0 && sample.every((v) => (v.status & VirtioStatus.DriverOk) !== 0);
            for (const deadline = Date.now() + 220000; !stopped && Date.now() < deadline; ) {
              const initRuns = /Run \/init as init process/.test(seen);
              const sample = vm.stats().virtio;
              if (live(sample)) virtio = sample;
              if (initRuns && live(virtio)) break;
              await new Promise((r) => setTimeout(r, 50));
            }
            if (!live(virtio)) virtio = vm.stats().virtio;
          },
          240000,
        );
        log = run.console;
        logs = run.logs;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('enumerates every function on bus 0 with their BARs in the PCI MMIO window', () => {
      expect(log).to.match(/pci 0000:00:01\.0: \[1af4:1042\] type 00 class 0x018000/);
      expect(log).to.match(/pci 0000:00:02\.0: \[1af4:1044\] type 00 class 0xff0000/);
      expect(log).to.match(/pci 0000:00:03\.0: \[1af4:1043\] type 00 class 0x078000/);
      expect(log).to.match(/LNKA: Enabled at IRQ 16/);
      // PCI0's _CRS: Linux takes the host bridge windows from ACPI.
      expect(log).to.match(/pci_bus 0000:00: root bus resource \[mem 0xc0000000-0xfebfffff window\]/);
      expect(log).to.match(/pci_bus 0000:00: root bus resource \[io  0x0d00-0xffff window\]/);
      expect(log).to.match(/pci_bus 0000:00: root bus resource \[bus 00-ff\]/);
    });

    it('finds vda with the image size and reads its partition table', () => {
      expect(log).to.match(/virtio_blk virtio0: \[vda\] 16384 512-byte logical blocks \(8\.39 MB\/8\.00 MiB\)/);
      expect(log).to.match(/ vda: vda1/);
    });

    it('hands the console from the UART boot console to hvc0, which carries the rest of the log', () => {
      // 6.12 prints "legacy console"/"legacy bootconsole" for consoles that are not nbcon.
      const handover = log.search(/printk: (legacy )?console \[hvc0\] enabled/);
      expect(handover).to.be.greaterThan(0);
      expect(log).to.match(/printk: (legacy )?bootconsole \[earlyser0\] disabled/);
      // The kernel no longer writes to the UART: what follows came through virtio-console.
      expect(log.indexOf('Run /init as init process')).to.be.greaterThan(handover);
      expect(log.match(/Run \/init as init process/g)).to.have.length(1);
    });

    it(`drives every device to DRIVER_OK with ${boot.interrupts === 'msix' ? 'MSI-X' : 'INTx'} interrupts; disk notifications without exits`, () => {
      expect(virtio.map((v) => v.name)).to.deep.equal(['virtio-blk', 'virtio-rng', 'virtio-console']);
      for (const v of virtio) {
        expect(v.status & (VirtioStatus.DriverOk | VirtioStatus.DeviceNeedsReset), `${v.name} (status 0x${v.status.toString(16)}; the VM's log: ${JSON.stringify(logs)})`).to.equal(VirtioStatus.DriverOk);
        expect(v.interrupts, v.name).to.equal(boot.interrupts);
      }
      // The partition table was read: at least one notification, all through the ioeventfd.
      // (A refused ioeventfd registration says why in the VM's log.)
      expect(virtio[0]!.notifications.exits, `notifications that exited; the VM's log: ${JSON.stringify(logs)}`).to.equal(0);
      expect(virtio[0]!.notifications.ioeventfd).to.be.greaterThan(0);
    });
  });
}
