import { expect } from 'chai';
import { NodevisorError } from '../src/kvm/errors.js';
import { e820Map, E820_RAM } from '../src/memory/e820.js';
import { parseBzImage } from '../src/boot/bzimage.js';
import { parseVmlinux } from '../src/boot/vmlinux.js';
import {
  bzImagePlacement,
  CMDLINE_ADDR,
  planBootLayout,
  vmlinuxPlacement,
  VMM_BOOT_AREA_END,
  VMM_BOOT_AREA_START,
  ZERO_PAGE_ADDR,
  type BootLayout,
  type KernelPlacement,
} from '../src/boot/boot-layout.js';
import { ACPI_REGION_END, ACPI_REGION_START } from '../src/boot/acpi/tables.js';
import { MP_FLOATING_ADDR } from '../src/boot/mptable.js';
import { fakeBzImage, fakeElf } from './helpers/boot-image.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const kernel: KernelPlacement = {
  prefAddress: 0x1000000,
  relocatable: true,
  alignment: 0x200000,
  imageSize: 10 * MiB,
  footprint: 30 * MiB,
  entryOffset: 0x200,
  cmdlineSize: 2047,
  initrdAddrMax: 0x7fffffff,
};

function memError(f: () => unknown, code: string): NodevisorError {
  try {
    f();
  } catch (e) {
    expect(e).to.be.instanceOf(NodevisorError);
    expect((e as NodevisorError).code).to.equal(code);
    return e as NodevisorError;
  }
  throw new Error('expected an error');
}

/** Every region in the layout must be usable RAM in the e820 map, and none may overlap. */
function checkLayout(layout: BootLayout, ramSize: number): void {
  const regions: Array<[string, number, number]> = [
    ['vmm', VMM_BOOT_AREA_START, VMM_BOOT_AREA_END],
    ['zero page', layout.zeroPage, layout.zeroPage + 4096],
    ['cmdline', layout.cmdline, layout.cmdline + layout.cmdlineCapacity],
    ['kernel', layout.kernelAddr, layout.kernelEnd],
  ];
  if (layout.initrd) regions.push(['initrd', layout.initrd.addr, layout.initrd.addr + layout.initrd.size]);
  for (let i = 0; i < regions.length; i++) {
    for (let j = i + 1; j < regions.length; j++) {
      const [a, as, ae] = regions[i]!;
      const [b, bs, be] = regions[j]!;
      expect(ae <= bs || be <= as, `${a} overlaps ${b}`).to.equal(true);
    }
  }
  const ram = e820Map(ramSize).filter((e) => e.type === E820_RAM);
  for (const [name, start, end] of regions.slice(1)) {
    expect(ram.some((e) => start >= e.addr && end <= e.addr + e.size), `${name} in e820 RAM`).to.equal(true);
  }
}

describe('boot: placement planner', () => {
  it('places the zero page after the VMM boot area and the command line at 0x20000', () => {
    expect(VMM_BOOT_AREA_START).to.equal(0x500);
    expect(VMM_BOOT_AREA_END).to.equal(0x7000);
    expect(ZERO_PAGE_ADDR).to.equal(0x7000);
    expect(CMDLINE_ADDR).to.equal(0x20000);
    expect(ACPI_REGION_START).to.equal(0xe0000);
    expect(ACPI_REGION_END).to.equal(MP_FLOATING_ADDR);
    const l = planBootLayout({ ramSize: 256 * MiB, kernel, cmdlineLength: 20 });
    expect(l.zeroPage).to.equal(0x7000);
    expect(l.cmdline).to.equal(0x20000);
    expect(l.cmdlineCapacity).to.equal(2048);
    checkLayout(l, 256 * MiB);
  });

  it('loads the kernel at pref_address with the entry 0x200 further', () => {
    const l = planBootLayout({ ramSize: 256 * MiB, kernel, cmdlineLength: 0 });
    expect(l.kernelAddr).to.equal(0x1000000);
    expect(l.kernelEnd).to.equal(0x1000000 + 30 * MiB);
    expect(l.entry).to.equal(0x1000200);
    expect(l.initrd).to.equal(null);
    expect(l.lowRamEnd).to.equal(256 * MiB);
  });

  it('counts the image size when it exceeds the stated footprint', () => {
    const l = planBootLayout({ ramSize: 256 * MiB, kernel: { ...kernel, imageSize: 40 * MiB }, cmdlineLength: 0 });
    expect(l.kernelEnd).to.equal(0x1000000 + 40 * MiB);
  });

  it('aligns a relocatable kernel up to kernel_alignment', () => {
    const l = planBootLayout({ ramSize: 256 * MiB, kernel: { ...kernel, prefAddress: 0x1100000 }, cmdlineLength: 0 });
    expect(l.kernelAddr).to.equal(0x1200000);
  });

  it('loads a non-relocatable kernel exactly at pref_address', () => {
    const l = planBootLayout({ ramSize: 256 * MiB, kernel: { ...kernel, relocatable: false, prefAddress: 0x1100000 }, cmdlineLength: 0 });
    expect(l.kernelAddr).to.equal(0x1100000);
  });

  it('puts the initrd as high as possible, page-aligned, below the end of RAM', () => {
    const l = planBootLayout({ ramSize: 256 * MiB, kernel, cmdlineLength: 0, initrdSize: 5 * MiB + 123 });
    expect(l.initrd).to.deep.equal({ addr: Math.floor((256 * MiB - (5 * MiB + 123)) / 4096) * 4096, size: 5 * MiB + 123 });
    expect(l.initrd!.addr % 4096).to.equal(0);
    expect(l.initrd!.addr + l.initrd!.size).to.be.at.most(256 * MiB);
    checkLayout(l, 256 * MiB);
  });

  it('keeps the initrd below initrd_addr_max', () => {
    const l = planBootLayout({ ramSize: 2 * GiB, kernel: { ...kernel, initrdAddrMax: 0x37ffffff }, cmdlineLength: 0, initrdSize: 8 * MiB });
    expect(l.initrd!.addr + l.initrd!.size).to.be.at.most(0x38000000);
    expect(l.initrd!.addr).to.equal(0x38000000 - 8 * MiB);
    checkLayout(l, 2 * GiB);
  });

  it('keeps the initrd below the PCI hole when RAM extends above 4 GiB', () => {
    const l = planBootLayout({ ramSize: 8 * GiB, kernel: { ...kernel, initrdAddrMax: 0xffffffff }, cmdlineLength: 0, initrdSize: 64 * MiB });
    expect(l.lowRamEnd).to.equal(3 * GiB);
    expect(l.initrd!.addr).to.equal(3 * GiB - 64 * MiB);
    checkLayout(l, 8 * GiB);
  });

  it('fits a kernel and initrd exactly into RAM', () => {
    const l = planBootLayout({ ramSize: 16 * MiB + 30 * MiB + 4 * MiB, kernel, cmdlineLength: 0, initrdSize: 4 * MiB });
    expect(l.initrd!.addr).to.equal(l.kernelEnd);
  });

  it('fails clearly when RAM is too small for the kernel', () => {
    const e = memError(() => planBootLayout({ ramSize: 32 * MiB, kernel, cmdlineLength: 0 }), 'EMEMORY');
    expect(e.message).to.contain('the kernel needs RAM up to 0x2e00000').and.contain('at least 46M').and.contain('--memory');
  });

  it('fails clearly when the initrd does not fit next to the kernel', () => {
    const e = memError(() => planBootLayout({ ramSize: 64 * MiB, kernel, cmdlineLength: 0, initrdSize: 20 * MiB }), 'EMEMORY');
    expect(e.message).to.contain('initrd do not both fit').and.contain('at least 66M');
  });

  it('fails clearly when initrd_addr_max leaves no room', () => {
    const e = memError(
      () => planBootLayout({ ramSize: 2 * GiB, kernel: { ...kernel, initrdAddrMax: 0x3000000 }, cmdlineLength: 0, initrdSize: 8 * MiB }),
      'EMEMORY',
    );
    expect(e.message).to.contain('initrd_addr_max 0x3000000');
  });

  it('rejects a command line longer than cmdline_size', () => {
    planBootLayout({ ramSize: 256 * MiB, kernel, cmdlineLength: 2047 });
    const e = memError(() => planBootLayout({ ramSize: 256 * MiB, kernel, cmdlineLength: 2048 }), 'EKERNEL');
    expect(e.message).to.contain('at most 2047');
  });

  it('caps the command line area below the EBDA', () => {
    const l = planBootLayout({ ramSize: 256 * MiB, kernel: { ...kernel, cmdlineSize: 0x100000 }, cmdlineLength: 10 });
    expect(l.cmdline + l.cmdlineCapacity).to.equal(0x9fc00);
  });

  it('rejects a kernel that wants to load below 1 MiB', () => {
    memError(() => planBootLayout({ ramSize: 256 * MiB, kernel: { ...kernel, relocatable: false, prefAddress: 0x10000 }, cmdlineLength: 0 }), 'EKERNEL');
  });

  it('derives a bzImage placement from its header', () => {
    const bz = parseBzImage(fakeBzImage({ initSize: 0x1800000, prefAddress: 0x1000000n }));
    const p = bzImagePlacement(bz);
    expect(p).to.deep.equal({
      prefAddress: 0x1000000,
      relocatable: true,
      alignment: 0x200000,
      imageSize: bz.kernel.length,
      footprint: 0x1800000,
      entryOffset: 0x200,
      cmdlineSize: 2047,
      initrdAddrMax: 0x7fffffff,
    });
    expect(bzImagePlacement(parseBzImage(fakeBzImage({ prefAddress: 0n }))).prefAddress).to.equal(0x1000000);
    expect(bzImagePlacement(parseBzImage(fakeBzImage({ relocatable: false }))).alignment).to.equal(1);
  });

  it('derives a vmlinux placement from its segments', () => {
    const v = parseVmlinux(
      fakeElf({
        entry: 0x1000040n,
        segments: [
          { vaddr: 0xffffffff81000000n, paddr: 0x1000000n, data: new Uint8Array(0x100), memsz: 0x100 },
          { vaddr: 0xffffffff82000000n, paddr: 0x2000000n, data: new Uint8Array(0x10), memsz: 0x300000 },
        ],
      }),
    );
    const p = vmlinuxPlacement(v);
    expect(p).to.deep.include({ prefAddress: 0x1000000, relocatable: false, footprint: 0x1300000, entryOffset: 0x40, cmdlineSize: 2047 });
    const l = planBootLayout({ ramSize: 64 * MiB, kernel: p, cmdlineLength: 5, initrdSize: MiB });
    expect(l.kernelAddr).to.equal(0x1000000);
    expect(l.entry).to.equal(0x1000040);
    expect(l.initrd!.addr).to.equal(63 * MiB);
    checkLayout(l, 64 * MiB);
  });
});
