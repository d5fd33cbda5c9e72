import { expect } from 'chai';
import { gzipSync } from 'node:zlib';
import { NodevisorError } from '../src/kvm/errors.js';
import { e820Map } from '../src/memory/e820.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { loadLinux } from '../src/boot/linux.js';
import { fakeBzImage, fakeElf } from './helpers/boot-image.js';
import { readMadt, readMpTable, readRsdp, readSdt, readXsdtEntries, scanForRsdp } from './helpers/boot-tables.js';

const MiB = 1024 * 1024;

function memory(size: number): GuestMemory {
  return new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(size) }]);
}

describe('boot: loadLinux (everything in guest memory for the 64-bit entry)', () => {
  it('boots a bzImage: kernel, initrd, command line, ACPI, MP table and zero page', () => {
    const mem = memory(64 * MiB);
    const file = fakeBzImage({ initSize: 24 * MiB });
    const initrd = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 13) & 0xff);
    const boot = loadLinux(mem, { kernel: file, initrd, cmdline: 'console=ttyS0 panic=-1', cpus: 4 });

    expect(boot.format).to.equal('bzimage');
    expect(boot.entry).to.equal(0x1000200);
    expect(boot.bootParams).to.equal(0x7000);

    // Kernel: the protected-mode part of the file at the load address.
    const kernel = file.subarray(5 * 512);
    expect(Array.from(mem.read(0x1000000, kernel.length))).to.deep.equal(Array.from(kernel));
    // Initrd: at the top of RAM, page-aligned.
    expect(boot.layout.initrd).to.deep.equal({ addr: 64 * MiB - 3 * 4096, size: 10_000 });
    expect(Array.from(mem.read(boot.layout.initrd!.addr, initrd.length))).to.deep.equal(Array.from(initrd));
    // Command line, NUL-terminated.
    expect(new TextDecoder().decode(mem.read(0x20000, 23))).to.equal('console=ttyS0 panic=-1\0');

    // Zero page fields point at all of it.
    const zp = 0x7000;
    expect(mem.readU16(zp + 0x1fe)).to.equal(0xaa55);
    expect(mem.readU8(zp + 0x210)).to.equal(0xff);
    expect(mem.readU32(zp + 0x228)).to.equal(0x20000);
    expect(mem.readU32(zp + 0x218)).to.equal(boot.layout.initrd!.addr);
    expect(mem.readU32(zp + 0x21c)).to.equal(10_000);
    expect(mem.readU64(zp + 0x070)).to.equal(BigInt(boot.acpi!.rsdp));
    expect(mem.readU8(zp + 0x1e8)).to.equal(e820Map(64 * MiB).length);

    // Firmware tables.
    expect(scanForRsdp(mem)).to.equal(boot.acpi!.rsdp);
    const xsdt = readSdt(mem, readRsdp(mem, boot.acpi!.rsdp).xsdtAddress);
    const madt = readMadt(readSdt(mem, readXsdtEntries(xsdt)[1]!));
    expect(madt.entries.filter((e) => e.type === 0)).to.have.length(4);
    expect(boot.mpTable).to.deep.equal({ floating: 0xf0000, table: 0xf0010, length: boot.mpTable!.length });
    const mp = readMpTable(mem, 0xf0000);
    expect(mp.checksumOk).to.equal(true);
    expect(mp.entries.filter((e) => e.type === 'cpu')).to.have.length(4);
  });

  it('boots a vmlinux with a synthetic setup header', () => {
    const mem = memory(64 * MiB);
    const elf = fakeElf({
      entry: 0x1000000n,
      segments: [{ vaddr: 0xffffffff81000000n, paddr: 0x1000000n, data: Uint8Array.of(0xf4, 0xeb, 0xfd), memsz: 0x1000 }],
    });
    const boot = loadLinux(mem, { kernel: elf, cmdline: 'x', cpus: 1 });
    expect(boot.format).to.equal('vmlinux');
    expect(boot.entry).to.equal(0x1000000);
    expect(Array.from(mem.read(0x1000000, 4))).to.deep.equal([0xf4, 0xeb, 0xfd, 0]);
    expect(mem.readU32(0x7000 + 0x202)).to.equal(0x53726448);
    expect(mem.readU32(0x7000 + 0x228)).to.equal(0x20000);
    expect(mem.readU32(0x7000 + 0x218)).to.equal(0);
  });

  it('skips the MP table above 255 vCPUs and ACPI when asked', () => {
    const many = loadLinux(memory(64 * MiB), { kernel: fakeBzImage(), cpus: 300 });
    expect(many.mpTable).to.equal(null);
    expect(many.acpi).to.not.equal(null);
    const mem = memory(64 * MiB);
    const none = loadLinux(mem, { kernel: fakeBzImage(), cpus: 2, acpi: false });
    expect(none.acpi).to.equal(null);
    expect(mem.readU64(0x7000 + 0x070)).to.equal(0n);
    expect(scanForRsdp(mem)).to.equal(null);
    expect(none.mpTable).to.not.equal(null);
  });

  it('gives both tables the APIC IDs of the topology, and skips the MP table when an ID is 255 or above', () => {
    const mem = memory(64 * MiB);
    const boot = loadLinux(mem, { kernel: fakeBzImage(), cpus: 6, apicIds: [0, 1, 2, 4, 5, 6] });
    const mp = readMpTable(mem, boot.mpTable!.floating);
    expect(mp.entries.filter((e) => e.type === 'cpu').map((e) => (e as { apicId: number }).apicId)).to.deep.equal([0, 1, 2, 4, 5, 6]);
    const madt = readMadt(readSdt(mem, boot.acpi!.tables.find((t) => t.signature === 'APIC')!.address));
    expect(madt.entries.filter((e) => e.type === 0).map((e) => (e as { apicId: number }).apicId)).to.deep.equal([0, 1, 2, 4, 5, 6]);
    const high = loadLinux(memory(64 * MiB), { kernel: fakeBzImage(), cpus: 2, apicIds: [0, 256] });
    expect(high.mpTable).to.equal(null);
  });

  it('describes the same IOAPIC and SCI in both tables', () => {
    const mem = memory(64 * MiB);
    loadLinux(mem, { kernel: fakeBzImage(), cpus: 2, acpi: { ioapicId: 3, sciIrq: 11 } });
    const mp = readMpTable(mem, 0xf0000);
    expect(mp.entries.find((e) => e.type === 'ioapic')).to.include({ id: 3 });
    expect(mp.entries.find((e) => e.type === 'ioint' && e.irq === 11 && e.bus === 1)).to.include({ flags: 0x0d, dstApic: 3 });
    expect(mp.entries.find((e) => e.type === 'ioint' && e.irq === 9 && e.bus === 1)).to.include({ flags: 0 });
  });

  it('reports what it cannot boot', () => {
    const err = (f: () => unknown): NodevisorError => {
      try {
        f();
      } catch (e) {
        return e as NodevisorError;
      }
      throw new Error('expected an error');
    };
    expect(err(() => loadLinux(memory(64 * MiB), { kernel: new Uint8Array(1024), kernelSource: 'k.bin', cpus: 1 })).message).to.match(/^k\.bin is not a Linux bzImage/);
    expect(err(() => loadLinux(memory(32 * MiB), { kernel: fakeBzImage(), cpus: 1 })).code).to.equal('EMEMORY');
    expect(err(() => loadLinux(memory(64 * MiB), { kernel: fakeBzImage({ cmdlineSize: 4 }), cmdline: 'quiet', cpus: 1 })).code).to.equal('EKERNEL');
    expect(err(() => loadLinux(memory(64 * MiB), { kernel: fakeElf({ machine: 3, segments: [] }), cpus: 1 })).code).to.equal('EKERNEL');
  });

  describe('the compressed payload', () => {
    const err = (kernel: Uint8Array): NodevisorError => {
      try {
        loadLinux(memory(64 * MiB), { kernel, kernelSource: 'bzImage', cpus: 1 });
      } catch (e) {
        expect(e).to.be.instanceOf(NodevisorError);
        return e as NodevisorError;
      }
      throw new Error('expected an error');
    };
    const vmlinux = fakeElf({ entry: 0x1000000n, segments: [{ vaddr: 0xffffffff81000000n, paddr: 0x1000000n, data: Uint8Array.of(0xf4, 0xeb, 0xfd), memsz: 0x1000 }] });

    it('unpacks a gzip payload in the VMM and enters the vmlinux in it', () => {
      const mem = memory(64 * MiB);
      const boot = loadLinux(mem, { kernel: fakeBzImage({ payload: gzipSync(vmlinux) }), cpus: 1 });
      expect(boot.format).to.equal('bzimage-unpacked');
      expect(boot.entry).to.equal(0x1000000);
      expect(Array.from(mem.read(0x1000000, 3))).to.deep.equal([0xf4, 0xeb, 0xfd]);
    });

    it('leaves compressions it does not decode to the kernel', () => {
      expect(loadLinux(memory(64 * MiB), { kernel: fakeBzImage(), cpus: 1 }).format).to.equal('bzimage'); // XZ
    });

    it('says why a gzip payload does not unpack instead of leaving the kernel to fail silently', () => {
      const corrupt = gzipSync(vmlinux);
      corrupt.fill(0x55, 10, corrupt.length - 8);
      expect(err(fakeBzImage({ payload: corrupt })).message).to.match(/^bzImage has a corrupt gzip kernel payload: it does not unpack \(.+\)$/);
      expect(err(fakeBzImage({ payload: gzipSync(Buffer.alloc(64, 0x90)) })).message).to.equal('bzImage has a corrupt gzip kernel payload: it unpacks to 64 bytes that are not an ELF vmlinux');
    });

    it('refuses a payload with no compression it could be (all zeroes), even for a kernel it would not unpack', () => {
      for (const xloadflags of [0x0003, 0x0000]) {
        const e = err(fakeBzImage({ payload: new Uint8Array(64), xloadflags }));
        expect(e.code).to.equal('EKERNEL');
        expect(e.message).to.equal('bzImage has no compressed kernel where its header puts it (file offset 0xda0, bytes 00 00 00 00 00 00 00 00): the file is corrupt, or setup_sects (4 sectors of setup code) is wrong');
      }
    });

    it('refuses a kernel whose setup_sects of 0 (read as 4, boot.rst) does not match where its code really starts', () => {
      // A kernel with 8 setup sectors whose setup_sects byte was zeroed: the payload is not where 4 sectors put it.
      const real = fakeBzImage({ setupSects: 8, payload: gzipSync(vmlinux) });
      real[0x1f1] = 0;
      expect(err(real).message).to.match(/^bzImage has no compressed kernel where its header puts it \(file offset 0xda0, .*setup_sects \(4 sectors of setup code\) is wrong$/);
      // setup_sects 0 with the layout it means (4 sectors) is fine.
      expect(loadLinux(memory(64 * MiB), { kernel: fakeBzImage({ setupSects: 0, payload: gzipSync(vmlinux) }), cpus: 1 }).format).to.equal('bzimage-unpacked');
    });
  });
});
