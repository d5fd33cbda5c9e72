import { expect } from 'chai';
import { NodevisorError } from '../src/kvm/errors.js';
import { e820Map } from '../src/memory/e820.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { parseBzImage } from '../src/boot/bzimage.js';
import {
  BootParamsOffset,
  buildBootParams,
  E820_ENTRY_SIZE,
  E820_MAX_ENTRIES_ZEROPAGE,
  encodeCmdline,
  HEAP_END_PTR,
  syntheticSetupHeader,
  writeBootParams,
  ZERO_PAGE_SIZE,
} from '../src/boot/boot-params.js';
import { fakeBzImage } from './helpers/boot-image.js';

const GiB = 1024 ** 3;

function view(page: Uint8Array): DataView {
  return new DataView(page.buffer, page.byteOffset, page.byteLength);
}

describe('boot: boot_params (zero page)', () => {
  const file = fakeBzImage({ loadflags: 0x01 | 0x40 | 0x20 });
  const bz = parseBzImage(file);
  const ram = 6 * GiB;
  const page = buildBootParams({
    header: bz.header,
    cmdlineAddr: 0x20000,
    initrd: { addr: 0x7fc00000, size: 0x123456 },
    e820: e820Map(ram),
    acpiRsdpAddr: 0xe0000,
  });
  const v = view(page);

  it('exports the zero-page offsets of zero-page.rst', () => {
    expect(BootParamsOffset).to.include({
      acpiRsdpAddr: 0x070,
      extRamdiskImage: 0x0c0,
      extRamdiskSize: 0x0c4,
      extCmdLinePtr: 0x0c8,
      e820Entries: 0x1e8,
      sentinel: 0x1ef,
      hdr: 0x1f1,
      e820Table: 0x2d0,
    });
    expect(ZERO_PAGE_SIZE).to.equal(4096);
    expect(E820_ENTRY_SIZE).to.equal(20);
    expect(E820_MAX_ENTRIES_ZEROPAGE).to.equal(128);
  });

  it('copies the setup header from the bzImage at 0x1f1, keeping the kernel-provided fields', () => {
    expect(page[0x1f1]).to.equal(file[0x1f1]);
    expect(v.getUint16(0x1fe, true)).to.equal(0xaa55);
    expect(v.getUint32(0x202, true)).to.equal(0x53726448);
    expect(v.getUint16(0x206, true)).to.equal(0x020f);
    expect(v.getUint32(0x230, true)).to.equal(0x200000); // kernel_alignment
    expect(v.getUint16(0x236, true)).to.equal(0x0003); // xloadflags
    expect(v.getUint32(0x238, true)).to.equal(2047); // cmdline_size
    expect(v.getUint32(0x260, true)).to.equal(0x2000000); // init_size
    expect(v.getBigUint64(0x258, true)).to.equal(0x1000000n); // pref_address
  });

  it('sets the loader fields', () => {
    expect(page[0x210]).to.equal(0xff); // type_of_loader: undefined
    // LOADED_HIGH and QUIET kept from the kernel, KEEP_SEGMENTS cleared, CAN_USE_HEAP set.
    expect(page[0x211]).to.equal(0x01 | 0x20 | 0x80);
    expect(v.getUint16(0x224, true)).to.equal(HEAP_END_PTR);
    expect(HEAP_END_PTR).to.equal(0xde00);
    expect(v.getUint32(0x228, true)).to.equal(0x20000); // cmd_line_ptr
    expect(v.getUint32(0x0c8, true)).to.equal(0); // ext_cmd_line_ptr
    expect(v.getUint32(0x218, true)).to.equal(0x7fc00000); // ramdisk_image
    expect(v.getUint32(0x21c, true)).to.equal(0x123456); // ramdisk_size
    expect(v.getUint32(0x0c0, true)).to.equal(0);
    expect(v.getUint32(0x0c4, true)).to.equal(0);
    expect(v.getBigUint64(0x070, true)).to.equal(0xe0000n); // acpi_rsdp_addr
  });

  it('leaves everything else zero, the sentinel included', () => {
    expect(page[0x1ef]).to.equal(0);
    expect(page.subarray(0, 0x70).every((b) => b === 0)).to.equal(true);
    expect(page.subarray(0x78, 0xc0).every((b) => b === 0)).to.equal(true);
    expect(page.subarray(0xcc, 0x1e8).every((b) => b === 0)).to.equal(true);
    expect(page.subarray(0x1e9, 0x1f1).every((b) => b === 0)).to.equal(true);
    expect(page.subarray(0x26c, 0x2d0).every((b) => b === 0)).to.equal(true);
    const e820End = 0x2d0 + e820Map(ram).length * 20;
    expect(page.subarray(e820End, 4096).every((b) => b === 0)).to.equal(true);
  });

  it('writes the e820 map from e820Map', () => {
    const map = e820Map(ram);
    expect(page[0x1e8]).to.equal(map.length);
    map.forEach((e, i) => {
      const at = 0x2d0 + i * 20;
      expect(Number(v.getBigUint64(at, true)), `entry ${i} addr`).to.equal(e.addr);
      expect(Number(v.getBigUint64(at + 8, true)), `entry ${i} size`).to.equal(e.size);
      expect(v.getUint32(at + 16, true), `entry ${i} type`).to.equal(e.type);
    });
    // 6 GiB: low RAM to 3 GiB, 3 GiB above 4 GiB.
    const last = map.length - 1;
    expect(Number(v.getBigUint64(0x2d0 + last * 20, true))).to.equal(4 * GiB);
    expect(Number(v.getBigUint64(0x2d0 + last * 20 + 8, true))).to.equal(3 * GiB);
  });

  it('splits addresses above 4 GiB into the ext_ fields', () => {
    const p = buildBootParams({ header: bz.header, cmdlineAddr: 0x1_2345_6000, initrd: { addr: 0x2_0000_1000, size: 0x1_0000_0010 }, e820: [] });
    const pv = view(p);
    expect(pv.getUint32(0x228, true)).to.equal(0x2345_6000);
    expect(pv.getUint32(0x0c8, true)).to.equal(1);
    expect(pv.getUint32(0x218, true)).to.equal(0x1000);
    expect(pv.getUint32(0x0c0, true)).to.equal(2);
    expect(pv.getUint32(0x21c, true)).to.equal(0x10);
    expect(pv.getUint32(0x0c4, true)).to.equal(1);
  });

  it('writes no initrd and no RSDP when there are none', () => {
    const p = buildBootParams({ header: bz.header, cmdlineAddr: 0x20000, e820: [] });
    const pv = view(p);
    expect(pv.getUint32(0x218, true)).to.equal(0);
    expect(pv.getUint32(0x21c, true)).to.equal(0);
    expect(pv.getBigUint64(0x070, true)).to.equal(0n);
    expect(p[0x1e8]).to.equal(0);
  });

  it('writes the page into guest RAM', () => {
    const mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(1024 * 1024) }]);
    mem.fill(0x7000, 4096, 0xcc);
    writeBootParams(mem, 0x7000, { header: bz.header, cmdlineAddr: 0x20000, e820: e820Map(256 * 1024 * 1024) });
    expect(Array.from(mem.read(0x7000, 4096))).to.deep.equal(Array.from(buildBootParams({ header: bz.header, cmdlineAddr: 0x20000, e820: e820Map(256 * 1024 * 1024) })));
  });

  it('rejects more than 128 e820 entries and malformed headers', () => {
    const many = Array.from({ length: 129 }, (_, i) => ({ addr: i * 0x1000, size: 0x1000, type: 1 }));
    expect(() => buildBootParams({ header: bz.header, cmdlineAddr: 0x20000, e820: many })).to.throw(RangeError, /129 e820 entries/);
    expect(() => buildBootParams({ header: new Uint8Array(10), cmdlineAddr: 0x20000, e820: [] })).to.throw(RangeError, /setup header/);
    expect(() => buildBootParams({ header: new Uint8Array(0x200), cmdlineAddr: 0x20000, e820: [] })).to.throw(RangeError, /setup header/);
    expect(() => buildBootParams({ header: bz.header, cmdlineAddr: -1, e820: [] })).to.throw(RangeError);
  });

  it('synthesises a 2.15 header for a vmlinux', () => {
    const hdr = syntheticSetupHeader({ cmdlineSize: 4095 });
    const p = buildBootParams({ header: hdr, cmdlineAddr: 0x20000, e820: [] });
    const pv = view(p);
    expect(hdr.length).to.equal(0x26c - 0x1f1);
    expect(pv.getUint16(0x1fe, true)).to.equal(0xaa55);
    expect(p[0x200]).to.equal(0xeb);
    expect(0x202 + p[0x201]!).to.equal(0x26c);
    expect(pv.getUint32(0x202, true)).to.equal(0x53726448);
    expect(pv.getUint16(0x206, true)).to.equal(0x020f);
    expect(p[0x211]).to.equal(0x01 | 0x80);
    expect(pv.getUint16(0x236, true) & 1).to.equal(1);
    expect(pv.getUint32(0x238, true)).to.equal(4095);
    expect(pv.getUint32(0x22c, true)).to.equal(0x7fffffff);
  });

  describe('command line encoding', () => {
    it('adds the NUL', () => {
      expect(Array.from(encodeCmdline('ro', 10))).to.deep.equal([0x72, 0x6f, 0]);
      expect(Array.from(encodeCmdline('', 10))).to.deep.equal([0]);
    });
    it('accepts exactly cmdline_size bytes and rejects one more', () => {
      expect(encodeCmdline('x'.repeat(16), 16).length).to.equal(17);
      expect(() => encodeCmdline('x'.repeat(17), 16)).to.throw(NodevisorError, /17 bytes; this kernel accepts at most 16/);
    });
    it('counts UTF-8 bytes and rejects NUL', () => {
      expect(encodeCmdline('é', 2).length).to.equal(3);
      expect(() => encodeCmdline('a\0b', 10)).to.throw(NodevisorError, /NUL/);
    });
  });
});
