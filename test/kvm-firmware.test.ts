import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createVm } from '../src/index.js';
import type { VmOptions } from '../src/vm/options.js';
import { buildDisk } from '../src/images/build-disk.js';
import { buildInitramfs } from '../src/images/initramfs.js';
import { runVm } from './helpers/guests.js';
import { until } from './helpers/until.js';
import { multibootKernel } from './helpers/multiboot.js';
import { ConsoleWatcher, testKernelOrSkip } from './helpers/linux.js';
import { bootSectorDisk, scratchDir, seabiosOrSkip } from './helpers/firmware.js';

describe('KVM: firmware boot (SeaBIOS, fw_cfg, boot from disk)', function () {
  this.timeout(600_000);
  let dir = '';
  before(() => (dir = scratchDir()));
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function firmwareRun(options: VmOptions): Promise<{ console: string; debug: string; status: number; message: string }> {
    let debug = '';
    const run = await runVm({ bios: true, memory: '128M', ...options }, async (vm) => {
      vm.on('debug-output', (b: Buffer) => (debug += b.toString('latin1')));
    }, 300_000);
    return { console: run.console, debug, status: run.result.exitStatus, message: run.result.message };
  }

  for (const irqchip of ['user', 'split', 'kernel'] as const) {
    it(`starts SeaBIOS (${irqchip} irqchip), which prints its banner on the serial console, finds the virtio disk and, with no boot sector on it, stops with status 12`, async function () {
      seabiosOrSkip(this);
      const r = await firmwareRun({ irqchip, vcpus: 2, disks: [{ path: bootSectorDisk(dir, `blank-${irqchip}.img`) }] });
      expect(r.console).to.match(/SeaBIOS \(version /);
      expect(r.debug).to.match(/Found QEMU fw_cfg/);
      expect(r.debug).to.match(/QEMU fw_cfg DMA interface supported/);
      expect(r.debug).to.match(/Found 2 cpu\(s\)/);
      expect(r.debug).to.match(/found virtio-blk at 00:01\.0/);
      expect(r.console).to.match(/Boot failed: not a bootable disk/);
      expect(r.status).to.equal(12);
      expect(r.message).to.match(/no bootable device \(not a bootable disk/);
    });
  }

  for (const irqchip of ['user', 'kernel'] as const) {
    it(`snapshots a VM in the middle of its firmware's POST (PAM area shadowed, fw_cfg in use; ${irqchip} irqchip) and restores it: the firmware finishes and boots the disk`, async function () {
      seabiosOrSkip(this);
      const snap = join(dir, `snap-${irqchip}`);
      const disk = bootSectorDisk(dir, `snap-${irqchip}.img`, 'S', 0x21);
      const first = createVm({ bios: true, irqchip, vcpus: 2, memory: '64M', disks: [{ path: disk, readonly: true }] });
      let debug = '';
      first.on('debug-output', (b: Buffer) => (debug += b.toString('latin1')));
      await first.start();
      try {
        // Past PCI enumeration: the firmware runs from its shadow copy in RAM, and has APs to wake and more to read from fw_cfg.
        await until(() => /found virtio-blk at 00:01\.0/.test(debug), 'the firmware to find the disk', 240_000, 20);
        expect(debug, 'the snapshot is taken before the boot').to.not.match(/Booting from Hard Disk/);
        await first.snapshot(snap, { resume: false });
      } finally {
        await first.stop();
      }
      const run = await runVm({ restore: snap }, async (vm) => {
        vm.on('debug-output', (b: Buffer) => (debug += b.toString('latin1')));
      }, 300_000);
      expect(run.result.exitStatus, `${run.result.message}\n${run.console.slice(-2000)}\n${debug.slice(-2000)}`).to.equal((0x21 << 1) | 1);
      expect(run.console).to.contain('S');
      expect(debug).to.match(/Booting from Hard Disk/);
    });
  }

  it('restores a firmware snapshot only as it was taken: no --bios or boot order of its own', async function () {
    seabiosOrSkip(this);
    const snap = join(dir, 'snap-kernel');
    expect(() => createVm({ restore: snap, bios: true })).to.throw(/it boots nothing, so "bios" cannot be given/);
    expect(() => createVm({ restore: snap, bootOrder: [0] })).to.throw(/it boots nothing, so "bootOrder" cannot be given/);
  });

  it('boots the disks in --disk order, or as the boot order says', async function () {
    seabiosOrSkip(this);
    const disks = [{ path: bootSectorDisk(dir, 'one.img', '1', 0x11) }, { path: bootSectorDisk(dir, 'two.img', '2', 0x12) }];
    const inOrder = await firmwareRun({ disks });
    expect(inOrder.status).to.equal((0x11 << 1) | 1);
    const reordered = await firmwareRun({ disks, bootOrder: [1, 0] });
    expect(reordered.status).to.equal((0x12 << 1) | 1);
    expect(reordered.debug).to.match(/Searching bootorder for: \/pci@i0cf8\/\*@2/);
  });

  it('boots a disk from `image build-disk`: SYSLINUX loads the test kernel, which takes both vCPUs from the loader-built MADT, finds the disk where the firmware put its BAR and reaches user space', async function () {
    seabiosOrSkip(this);
    const kernel = testKernelOrSkip(this);
    const initrd = join(dir, 'initrd.cpio');
    writeFileSync(initrd, buildInitramfs());
    const disk = join(dir, 'linux.img');
    buildDisk(disk, { kernel, initrd, timeout: 1 });
    const t0 = Date.now();
    const vm = createVm({ bios: true, vcpus: 2, memory: '256M', disks: [{ path: disk, readonly: true }] });
    const watch = new ConsoleWatcher(vm);
    await vm.start();
    const deadline = setTimeout(() => void vm.stop(), 540_000);
    try {
      const at = async (re: RegExp): Promise<number> => (await watch.waitFor(re, 540_000), (Date.now() - t0) / 1000);
      const banner = await at(/SeaBIOS \(version/);
      const loader = await at(/SYSLINUX \d/);
      const kernelLine = await at(/Linux version/);
      const user = await at(/nodevisor-init: \d+ CPUs online/);
      const result = await vm.wait();
      // Stage times on this host (reported, never asserted).
      console.log(`      firmware ${banner.toFixed(1)} s, boot loader at ${loader.toFixed(1)} s, kernel's first line at ${kernelLine.toFixed(1)} s, user space at ${user.toFixed(1)} s`);
      expect(watch.text).to.match(/ACPI: APIC 0x[0-9A-F]+ [0-9A-F]+ \(v04 NODEVI NODEVISR/);
      expect(watch.text).to.match(/ACPI: Using ACPI \(MADT\) for SMP configuration information/);
      expect(watch.text).to.match(/nodevisor-init: 2 CPUs online/);
      // Linux reads the disk's partition table through the BAR the firmware assigned.
      expect(watch.text).to.match(/vda: vda1/);
      expect(result.reason.kind).to.equal('poweroff');
    } finally {
      clearTimeout(deadline);
      await vm.stop();
    }
  });
});

describe('KVM: multiboot kernels', function () {
  this.timeout(120_000);
  for (const irqchip of ['user', 'split', 'kernel'] as const) {
    it(`enters our multiboot test kernel (${irqchip} irqchip) with the magic, the memory map, the command line and two modules`, async () => {
      const dir = scratchDir();
      try {
        writeFileSync(join(dir, 'm0'), 'first data\n');
        writeFileSync(join(dir, 'm1'), 'second\n');
        const r = await runVm({
          irqchip,
          vcpus: 2,
          kernel: multibootKernel('multiboot'),
          cmdline: 'mbtest hello=world',
          modules: [
            { source: join(dir, 'm0'), args: 'mod-a arg1 arg2' },
            { source: join(dir, 'm1'), args: 'mod-b' },
          ],
        });
        expect(r.console).to.contain('multiboot: all checks passed');
        expect(r.result.exitStatus).to.equal((0x10 << 1) | 1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
