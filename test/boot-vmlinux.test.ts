import { expect } from 'chai';
import { NodevisorError } from '../src/kvm/errors.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { isElf, loadVmlinux, parseVmlinux } from '../src/boot/vmlinux.js';
import { fakeElf, type FakeSegment } from './helpers/boot-image.js';

const KERNEL_MAP = 0xffffffff80000000n;

function segs(): FakeSegment[] {
  return [
    { vaddr: KERNEL_MAP + 0x1000000n, paddr: 0x1000000n, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), memsz: 8 },
    { vaddr: KERNEL_MAP + 0x1200000n, paddr: 0x1200000n, data: Uint8Array.from([9, 9, 9]), memsz: 0x1000 },
  ];
}

function error(data: Uint8Array): NodevisorError {
  try {
    parseVmlinux(data, 'vmlinux-under-test');
  } catch (e) {
    expect(e).to.be.instanceOf(NodevisorError);
    expect((e as NodevisorError).code).to.equal('EKERNEL');
    return e as NodevisorError;
  }
  throw new Error('expected parseVmlinux to throw');
}

describe('boot: vmlinux (ELF64) loading', () => {
  it('reads PT_LOAD segments by physical address and a physical entry (phys_startup_64)', () => {
    const v = parseVmlinux(fakeElf({ entry: 0x1000000n, segments: segs() }));
    expect(v.entry).to.equal(0x1000000);
    expect(v.start).to.equal(0x1000000);
    expect(v.end).to.equal(0x1201000);
    expect(v.segments.map((s) => [s.paddr, s.data.length, s.memsz])).to.deep.equal([
      [0x1000000, 8, 8],
      [0x1200000, 3, 0x1000],
    ]);
  });

  it('translates a virtual entry point through its segment', () => {
    const v = parseVmlinux(fakeElf({ entry: KERNEL_MAP + 0x1000004n, segments: segs() }));
    expect(v.entry).to.equal(0x1000004);
  });

  it('skips non-PT_LOAD and empty segments', () => {
    const s = [...segs(), { vaddr: 0n, paddr: 0n, data: Uint8Array.of(1), memsz: 1, type: 4 }, { vaddr: 0n, paddr: 0x5000000n, data: new Uint8Array(0), memsz: 0 }];
    expect(parseVmlinux(fakeElf({ segments: s })).segments).to.have.length(2);
  });

  it('loads segments into RAM and zeroes the bss part', () => {
    const mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(32 * 1024 * 1024) }]);
    mem.fill(0x1200000, 0x2000, 0xaa);
    loadVmlinux(mem, parseVmlinux(fakeElf({ segments: segs() })));
    expect(Array.from(mem.read(0x1000000, 8))).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(Array.from(mem.read(0x1200000, 4))).to.deep.equal([9, 9, 9, 0]);
    expect(mem.read(0x1200003, 0x1000 - 3).every((b) => b === 0)).to.equal(true);
    expect(mem.readU8(0x1201000)).to.equal(0xaa); // past p_memsz: untouched
  });

  it('refuses to load a segment outside RAM', () => {
    const mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(16 * 1024 * 1024) }]);
    expect(() => loadVmlinux(mem, parseVmlinux(fakeElf({ segments: segs() })))).to.throw(NodevisorError, /not in guest RAM/);
  });

  it('recognises ELF files', () => {
    expect(isElf(fakeElf())).to.equal(true);
    expect(isElf(Uint8Array.of(0x7f, 0x45))).to.equal(false);
  });

  describe('errors', () => {
    it('not ELF', () => expect(error(new Uint8Array(64)).message).to.contain('not an ELF file'));
    it('truncated header', () => expect(error(fakeElf().slice(0, 40)).message).to.contain('truncated'));
    it('32-bit ELF', () => expect(error(fakeElf({ cls: 1 })).message).to.contain('ELFCLASS32'));
    it('big-endian', () => expect(error(fakeElf({ data: 2 })).message).to.contain('big-endian'));
    it('i386', () => expect(error(fakeElf({ machine: 3, segments: segs() })).message).to.contain('32-bit x86 (i386) ELF file, not x86-64'));
    it('arm64', () => expect(error(fakeElf({ machine: 183, segments: segs() })).message).to.contain('arm64'));
    it('relocatable object', () => expect(error(fakeElf({ type: 1, segments: segs() })).message).to.contain('not an executable'));
    it('no program headers', () => expect(error(fakeElf()).message).to.contain('no program headers'));
    it('no PT_LOAD', () => {
      expect(error(fakeElf({ segments: [{ vaddr: 0n, paddr: 0n, data: Uint8Array.of(1), memsz: 1, type: 4 }] })).message).to.contain('no PT_LOAD');
    });
    it('entry outside every segment', () => {
      expect(error(fakeElf({ entry: 0x4000000n, segments: segs() })).message).to.contain('entry point 0x4000000');
    });
    it('segment data past the end of the file', () => {
      const f = fakeElf({ segments: segs() });
      expect(error(f.slice(0, f.length - 2)).message).to.contain('runs past the end');
    });
    it('overlapping segments', () => {
      const s = segs();
      s[1] = { ...s[1]!, paddr: 0x1000004n };
      expect(error(fakeElf({ segments: s })).message).to.contain('overlapping');
    });
    it('filesz > memsz', () => {
      const s = segs();
      s[0] = { ...s[0]!, memsz: 4 };
      expect(error(fakeElf({ segments: s })).message).to.contain('exceeds p_memsz');
    });
  });
});
