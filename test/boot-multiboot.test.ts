import { expect } from 'chai';
import { findMultibootHeader, loadMultiboot, MultibootInfoFlag, MULTIBOOT_HEADER_MAGIC } from '../src/boot/multiboot.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { NodevisorError } from '../src/kvm/errors.js';

const MiB = 1024 * 1024;

function header(flags: number, address?: number[]): Uint8Array {
  const words = [MULTIBOOT_HEADER_MAGIC, flags, (-(MULTIBOOT_HEADER_MAGIC + flags)) >>> 0, ...(address ?? [])];
  return new Uint8Array(Uint32Array.from(words).buffer);
}

/** An ELF32 executable with one PT_LOAD segment of `code` at `paddr` (memsz `memsz`), entered at `entry`. */
function elf32(code: Uint8Array, paddr: number, memsz: number, entry: number): Uint8Array {
  const out = new Uint8Array(0x1000 + code.length);
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]);
  v.setUint16(16, 2, true);
  v.setUint16(18, 3, true);
  v.setUint32(20, 1, true);
  v.setUint32(24, entry, true);
  v.setUint32(28, 52, true);
  v.setUint16(40, 52, true);
  v.setUint16(42, 32, true);
  v.setUint16(44, 1, true);
  v.setUint32(52, 1, true);
  v.setUint32(56, 0x1000, true);
  v.setUint32(60, paddr, true);
  v.setUint32(64, paddr, true);
  v.setUint32(68, code.length, true);
  v.setUint32(72, memsz, true);
  out.set(code, 0x1000);
  return out;
}

function memory(size = 64 * MiB): GuestMemory {
  return new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(size) }]);
}

const cstring = (mem: GuestMemory, at: number): string => {
  let s = '';
  for (let b = mem.readU8(at); b !== 0; b = mem.readU8(++at)) s += String.fromCharCode(b);
  return s;
};

describe('boot: multiboot kernels', () => {
  const code = new Uint8Array(64);
  code.set(header(3), 8);
  code[1] = 0xf4;
  const kernel = elf32(code, 0x200000, 0x3000, 0x200001);

  it('finds the header on a 4-byte boundary in the first 8 KiB, by magic and checksum', () => {
    expect(findMultibootHeader(kernel)?.offset).to.equal(0x1008);
    const bad = kernel.slice();
    bad[0x1008 + 8] ^= 1;
    expect(findMultibootHeader(bad)).to.equal(null);
    const late = new Uint8Array(9000);
    late.set(header(0), 8192);
    expect(findMultibootHeader(late)).to.equal(null);
  });

  describe('loading an ELF kernel with two modules', () => {
    const mem = memory();
    mem.fill(0x200000, 0x3000, 0xcc);
    const mb = loadMultiboot(mem, {
      kernel,
      source: 'k',
      cmdline: 'hello world',
      modules: [
        { data: new TextEncoder().encode('module zero'), string: 'mod0 a b' },
        { data: new Uint8Array(5000).fill(7), string: 'mod1' },
      ],
    });
    const info = mb.info;
    it('loads the segment at its physical address and zeroes its BSS', () => {
      expect(mem.readU8(0x200001)).to.equal(0xf4);
      expect(mem.readU8(0x200000 + 64)).to.equal(0);
      expect(mem.readU8(0x202fff)).to.equal(0);
      expect(mb.entry).to.equal(0x200001);
    });
    it('sets the information flags for memory, command line, modules, memory map and loader name', () => {
      const f = MultibootInfoFlag;
      expect(mem.readU32(info)).to.equal(f.Memory | f.Cmdline | f.Modules | f.MemoryMap | f.BootLoaderName);
      expect(cstring(mem, mem.readU32(info + 64))).to.equal('nodevisor');
    });
    it('reports memory below 640 KiB and above 1 MiB in KiB, as the map says', () => {
      expect(mem.readU32(info + 4)).to.equal(0x9fc00 / 1024);
      expect(mem.readU32(info + 8)).to.equal((64 * MiB - MiB) / 1024);
      const entries: number[][] = [];
      const end = mem.readU32(info + 48) + mem.readU32(info + 44);
      for (let p = mem.readU32(info + 48); p < end; p += mem.readU32(p) + 4) entries.push([Number(mem.readU64(p + 4)), Number(mem.readU64(p + 12)), mem.readU32(p + 20)]);
      expect(entries).to.deep.include([0, 0x9fc00, 1]);
      expect(entries).to.deep.include([MiB, 63 * MiB, 1]);
    });
    it('passes the command line', () => expect(cstring(mem, mem.readU32(info + 16))).to.equal('hello world'));
    it('places the modules page-aligned after the kernel, with their strings', () => {
      expect(mem.readU32(info + 20)).to.equal(2);
      const list = mem.readU32(info + 24);
      const [s0, e0, s1, e1] = [mem.readU32(list), mem.readU32(list + 4), mem.readU32(list + 16), mem.readU32(list + 20)];
      expect(s0).to.equal(0x203000);
      expect(new TextDecoder().decode(mem.read(s0, e0 - s0))).to.equal('module zero');
      expect([s1 % 4096, e1 - s1, mem.readU8(s1 + 4999)]).to.deep.equal([0, 5000, 7]);
      expect(cstring(mem, mem.readU32(list + 8))).to.equal('mod0 a b');
      expect(cstring(mem, mem.readU32(list + 24))).to.equal('mod1');
    });
  });

  it('loads an image by the header address fields when flag 16 is set (the a.out kludge)', () => {
    const img = new Uint8Array(0x100);
    img.set(header(0x10000, [0x300000, 0x300000, 0x300080, 0x301000, 0x300040]), 0);
    img[0x40] = 0x90;
    const mem = memory();
    mem.fill(0x300000, 0x1000, 0xee);
    const mb = loadMultiboot(mem, { kernel: img, source: 'flat', cmdline: '', modules: [] });
    expect([mb.entry, mb.kernelEnd, mem.readU8(0x300040), mem.readU8(0x300080), mem.readU32(mem.readU32(mb.info + 20))]).to.deep.equal([0x300040, 0x301000, 0x90, 0, 0]);
  });

  it('refuses required flags it cannot honour, saying which', () => {
    const video = elf32(header(4), 0x200000, 0x100, 0x200000);
    expect(() => loadMultiboot(memory(), { kernel: video, source: 'vk', cmdline: '', modules: [] })).to.throw(NodevisorError, /vk: its multiboot header requires flags 0x4 \(bit 2: a video mode/);
  });
  it('refuses a kernel whose segments do not fit in RAM, or that overlap the boot information', () => {
    expect(() => loadMultiboot(memory(4 * MiB), { kernel: elf32(header(0), 0x800000, 0x100, 0x800000), source: 'big', cmdline: '', modules: [] })).to.throw(/not all guest RAM/);
    expect(() => loadMultiboot(memory(), { kernel: elf32(header(0), 0x9000, 0x100, 0x9000), source: 'low', cmdline: '', modules: [] })).to.throw(/overlaps low memory/);
  });
  it('refuses a header without address fields in a file that is not ELF32', () => {
    const raw = new Uint8Array(64);
    raw.set(header(0), 0);
    expect(() => loadMultiboot(memory(), { kernel: raw, source: 'raw', cmdline: '', modules: [] })).to.throw(/not a 32-bit little-endian ELF/);
  });
});
