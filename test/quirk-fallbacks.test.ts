import { expect } from 'chai';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { REG_NAMES, type Regs, type Segment, type Sregs } from '../src/kvm/structs.js';
import { Cr0, Cr4, Efer } from '../src/kvm/x86-bits.js';
import { fetchInstructionBytes, handleEmulationFailure, Vector, type Emulated, type InjectException, type QuirkAction, type Unhandled } from '../src/vcpu/quirks/fallbacks.js';

const MiB = 1024 * 1024;
const bytes = (hex: string): Uint8Array => Uint8Array.from(hex.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16)));

// RFLAGS bits.
const CF = 1n;
const PF = 4n;
const AF = 16n;
const ZF = 64n;
const SF = 128n;
const IF = 512n;
const OF = 2048n;
const RF = 1n << 16n;
const AC = 1n << 18n;
const FIXED = 2n; // bit 1 always reads 1
const ARITH = CF | PF | AF | ZF | SF | OF;

const P = 1n;
const RW = 2n;
const US = 4n;
const D = 0x40n;

// Guest layout: 4 MiB of RAM identity-mapped with 4 KiB supervisor pages,
// except the special pages below.
const PML4 = 0x1000;
const PDPT = 0x2000;
const PD = 0x3000;
const PT0 = 0x4000; // maps 0-2 MiB
const PT1 = 0x5000; // maps 2-4 MiB
const IDT = 0x6000;
const UNMAPPED = 0x30_0000;
const READ_ONLY = 0x31_0000;
const USER = 0x32_0000;
const MMIO = 0x33_0000; // mapped to the APIC page, outside RAM
const DATA = 0x20_0000;

function segment(over: Partial<Segment> = {}): Segment {
  return { base: 0n, limit: 0xffffffff, selector: 0, type: 3, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, ...over };
}

function guest(): GuestMemory {
  const mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(4 * MiB) }]);
  mem.writeU64(PML4, BigInt(PDPT) | P | RW | US);
  mem.writeU64(PDPT, BigInt(PD) | P | RW | US);
  mem.writeU64(PD, BigInt(PT0) | P | RW | US);
  mem.writeU64(PD + 8, BigInt(PT1) | P | RW | US);
  for (let page = 0; page < 1024; page++) {
    const gpa = page * 4096;
    let pte = BigInt(gpa) | P | RW;
    if (gpa === UNMAPPED) pte = 0n;
    else if (gpa === READ_ONLY) pte = BigInt(gpa) | P;
    else if (gpa === USER) pte |= US;
    else if (gpa === MMIO) pte = 0xfee0_0000n | P | RW;
    mem.writeU64((page < 512 ? PT0 : PT1) + (page % 512) * 8, pte);
  }
  return mem;
}

function regs(over: Partial<Regs> = {}): Regs {
  const r = {} as Regs;
  for (const n of REG_NAMES) r[n] = 0n;
  r.rip = 0x10_0000n;
  r.rflags = FIXED;
  return Object.assign(r, over);
}

function sregs64(over: Partial<Sregs> = {}): Sregs {
  return {
    cs: segment({ type: 11, l: 1, db: 0 }),
    ds: segment(),
    es: segment(),
    fs: segment(),
    gs: segment(),
    ss: segment(),
    tr: segment({ type: 11, s: 0 }),
    ldt: segment({ type: 2, s: 0 }),
    gdt: { base: 0n, limit: 0 },
    idt: { base: BigInt(IDT), limit: 256 * 16 - 1 },
    cr0: Cr0.PE | Cr0.PG | Cr0.WP,
    cr2: 0n,
    cr3: BigInt(PML4),
    cr4: Cr4.PAE,
    cr8: 0n,
    efer: Efer.LME | Efer.LMA | Efer.NXE,
    apic_base: 0n,
    interrupt_bitmap: [0n, 0n, 0n, 0n],
    ...over,
  };
}

/** Protected mode without paging, 32-bit code (db=1) or 16-bit code (db=0). */
function sregsLegacy(bits: 16 | 32, over: Partial<Sregs> = {}): Sregs {
  return sregs64({ cs: segment({ type: 11, db: bits === 32 ? 1 : 0 }), cr0: Cr0.PE, cr4: 0n, efer: 0n, idt: { base: BigInt(IDT), limit: 256 * 8 - 1 }, ...over });
}

function run(hex: string, r: Regs, s: Sregs = sregs64(), mem = guest(), cpl = 0): QuirkAction {
  // KVM hands over 15 bytes whatever the instruction's length.
  const b = new Uint8Array(15).fill(0xcc);
  b.set(bytes(hex));
  return handleEmulationFailure(b, r, s, mem, cpl);
}

function emulated(a: QuirkAction): Emulated {
  if (a.kind !== 'emulated') throw new Error(`expected emulated, got ${JSON.stringify(a, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
  return a;
}

function injected(a: QuirkAction): InjectException {
  if (a.kind !== 'inject-exception') throw new Error(`expected inject-exception, got ${JSON.stringify(a, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
  return a;
}

function unhandled(a: QuirkAction): Unhandled {
  if (a.kind !== 'unhandled') throw new Error(`expected unhandled, got ${JSON.stringify(a, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
  return a;
}

/** 64-bit IDT gate for `vector` with privilege `dpl`. */
function gate(mem: GuestMemory, vector: number, dpl: number, size: 8 | 16 = 16): void {
  const at = IDT + vector * size;
  mem.fill(at, size, 0);
  mem.writeU16(at + 2, 0x10); // selector
  mem.writeU8(at + 5, 0x80 | (dpl << 5) | 0xe); // present, DPL, interrupt gate
}

describe('quirk fallbacks', () => {
  describe('popcnt', () => {
    it('counts a 32-bit register, zero-extends the result, clears CF/OF/SF/AF/PF and RF, advances RIP', () => {
      const r = regs({ rax: 0xdead_beef_0000_0000n, rcx: 0xffff_ffff_0000_00f0n, rflags: FIXED | IF | ARITH | RF });
      const a = emulated(run('f3 0f b8 c1', r)); // popcnt eax, ecx
      expect(a.regs).to.deep.equal({ rax: 4n, rip: 0x10_0004n, rflags: FIXED | IF });
      expect(a.instructionLength).to.equal(4);
      expect(a.description).to.equal('popcnt eax, ecx');
    });

    it('keeps bits 63:16 for a 16-bit destination', () => {
      const r = regs({ rax: 0x1111_2222_3333_4444n, rcx: 0x1_8001n });
      expect(emulated(run('66 f3 0f b8 c1', r)).regs).to.deep.equal({ rax: 0x1111_2222_3333_0002n, rip: 0x10_0005n, rflags: FIXED });
      expect(emulated(run('f3 66 0f b8 c1', r)).regs.rax).to.equal(0x1111_2222_3333_0002n); // prefix order does not matter
    });

    it('counts 64-bit registers, including REX-extended ones', () => {
      expect(emulated(run('f3 48 0f b8 c1', regs({ rcx: (1n << 64n) - 1n }))).regs).to.deep.include({ rax: 64n });
      expect(emulated(run('f3 4d 0f b8 c1', regs({ r8: 5n, r9: 0x8000_0000_0000_0001n }))).regs).to.deep.equal({ r8: 2n, rip: 0x10_0005n, rflags: FIXED });
    });

    it('sets ZF (only) for a zero source', () => {
      const a = emulated(run('f3 48 0f b8 c1', regs({ rax: 99n, rcx: 0n, rflags: FIXED | CF | SF })));
      expect(a.regs).to.deep.equal({ rax: 0n, rip: 0x10_0005n, rflags: FIXED | ZF });
    });

    it('reads memory operands through the page tables', () => {
      const mem = guest();
      mem.writeU64(DATA + 8, 0x0f0f_0000_0000_00ffn);
      const a = emulated(run('f3 48 0f b8 07', regs({ rdi: BigInt(DATA + 8) }), sregs64(), mem)); // popcnt rax, [rdi]
      expect(a.regs).to.deep.equal({ rax: 16n, rip: 0x10_0005n, rflags: FIXED });
      mem.writeU16(DATA + 2, 0xffff);
      expect(emulated(run('66 f3 0f b8 46 02', regs({ rsi: BigInt(DATA) }), sregs64(), mem)).regs.rax).to.equal(16n); // popcnt ax, [rsi+2]
    });

    it('resolves RIP-relative operands from the next instruction, across a page boundary', () => {
      const mem = guest();
      // popcnt rax, [rip+0xff0] at 0x100000 (9 bytes): operand at 0x100ff9, straddling 0x101000.
      mem.writeU64(0x10_0ff9, 0x8000_0000_0000_0007n);
      const a = emulated(run('f3 48 0f b8 05 f0 0f 00 00', regs(), sregs64(), mem));
      expect(a.regs).to.deep.equal({ rax: 4n, rip: 0x10_0009n, rflags: FIXED });
      // Negative displacement.
      mem.writeU32(0x10_0009 - 0x10, 0x7);
      expect(emulated(run('f3 0f b8 05 f0 ff ff ff', regs(), sregs64(), mem)).regs.rax).to.equal(3n); // popcnt eax, [rip-0x10], 8 bytes
    });

    it('resolves SIB operands and FS/GS segment bases', () => {
      const mem = guest();
      mem.writeU64(DATA + 0x100 + 3 * 4 + 0x10, 0x3n);
      const sib = emulated(run('f3 48 0f b8 44 8b 10', regs({ rbx: BigInt(DATA + 0x100), rcx: 3n }), sregs64(), mem)); // [rbx+rcx*4+0x10]
      expect(sib.regs.rax).to.equal(2n);
      mem.writeU64(DATA + 0x1028, 0xffn);
      const s = sregs64({ fs: segment({ base: BigInt(DATA + 0x1000) }), ds: segment({ base: 0x5555n }) });
      expect(emulated(run('64 f3 48 0f b8 04 25 28 00 00 00', regs(), s, mem)).regs.rax).to.equal(8n); // fs:[0x28]
      // DS's base does not apply in 64-bit mode.
      mem.writeU64(0x28, 0x1n);
      expect(emulated(run('f3 48 0f b8 04 25 28 00 00 00', regs(), s, mem)).regs.rax).to.equal(1n);
    });

    it('works in 32-bit and 16-bit code with segment bases and 16-bit addressing', () => {
      const mem = guest();
      mem.writeU32(0x9000 + 0x40, 0xffff);
      const s32 = sregsLegacy(32, { ds: segment({ base: 0x9000n }) });
      const a = emulated(run('67 f3 0f b8 07', regs({ rip: 0x7000n, rbx: 0x1_0040n }), s32, mem)); // popcnt eax, [bx]: BX = 0x40
      expect(a.regs).to.deep.equal({ rax: 16n, rip: 0x7005n, rflags: FIXED });
      mem.writeU16(0x2_0000 + 0x102, 0x0707);
      const s16 = sregsLegacy(16, { ss: segment({ base: 0x2_0000n, db: 0 }) });
      const b = emulated(run('f3 0f b8 46 02', regs({ rip: 0xfffbn, rbp: 0x100n, rax: 0xabcd_0000n }), s16, mem)); // popcnt ax, [bp+2]
      expect(b.regs).to.deep.equal({ rax: 0xabcd_0006n, rip: 0n, rflags: FIXED }); // IP wraps at 64 KiB
    });

    it('turns page-walk failures into #PF with CR2 and the right error code', () => {
      const miss = injected(run('f3 48 0f b8 07', regs({ rdi: BigInt(UNMAPPED + 8) })));
      expect(miss).to.deep.include({ vector: Vector.PF, errorCode: 0, cr2: BigInt(UNMAPPED + 8), soft: false, rip: 0x10_0000n, instructionLength: 5 });
      // CPL 3 touching a supervisor page: protection violation from user mode.
      expect(injected(run('f3 48 0f b8 07', regs({ rdi: BigInt(DATA) }), sregs64(), guest(), 3))).to.deep.include({ errorCode: 5, cr2: BigInt(DATA) });
      // A read straddling into the unmapped page faults at that page's first byte.
      expect(injected(run('f3 48 0f b8 07', regs({ rdi: BigInt(UNMAPPED - 4) }))).cr2).to.equal(BigInt(UNMAPPED));
    });

    it('raises #GP for non-canonical addresses, #SS when the stack segment is used', () => {
      expect(injected(run('f3 48 0f b8 07', regs({ rdi: 0x8000_0000_0000n })))).to.deep.include({ vector: Vector.GP, errorCode: 0 });
      expect(injected(run('f3 48 0f b8 04 24', regs({ rsp: 0x8000_0000_0000n })))).to.deep.include({ vector: Vector.SS, errorCode: 0 });
    });

    it('raises #AC for a misaligned user access with CR0.AM and RFLAGS.AC', () => {
      const s = sregs64({ cr0: Cr0.PE | Cr0.PG | Cr0.WP | Cr0.AM });
      const r = regs({ rdi: BigInt(USER + 1), rflags: FIXED | AC });
      expect(injected(run('f3 48 0f b8 07', r, s, guest(), 3))).to.deep.include({ vector: Vector.AC, errorCode: 0 });
      expect(emulated(run('f3 48 0f b8 07', regs({ rdi: BigInt(USER + 1) }), s, guest(), 3)).regs.rax).to.equal(0n);
    });

    it('raises #UD with a LOCK prefix', () => {
      expect(injected(run('f0 f3 0f b8 c1', regs()))).to.deep.include({ vector: Vector.UD, soft: false, rip: 0x10_0000n });
    });

    it('refuses operands outside guest RAM', () => {
      const u = unhandled(run('f3 48 0f b8 07', regs({ rdi: BigInt(MMIO) })));
      expect(u.reason).to.match(/0xfee00000.*outside guest RAM/);
      expect(u.disassembly).to.equal('f3 48 0f b8 07: popcnt rax, qword ptr [rdi]');
      const s = sregs64({ cr3: 0x8000_0000n });
      expect(unhandled(run('f3 48 0f b8 07', regs({ rdi: BigInt(DATA) }), s)).reason).to.match(/level-4 page-table entry.*0x80000000, outside guest RAM/);
    });
  });

  describe('cmpxchg16b', () => {
    const A = 0x1111_1111_1111_1111n;
    const B = 0x2222_2222_2222_2222n;
    const C = 0x3333_3333_3333_3333n;
    const Dv = 0x4444_4444_4444_4444n;

    it('swaps when RDX:RAX matches, sets ZF and leaves RAX/RDX alone', () => {
      const mem = guest();
      mem.writeU64(DATA + 0x10, A);
      mem.writeU64(DATA + 0x18, B);
      const a = emulated(run('f0 48 0f c7 0f', regs({ rdi: BigInt(DATA + 0x10), rax: A, rdx: B, rbx: C, rcx: Dv }), sregs64(), mem)); // lock cmpxchg16b [rdi]
      expect(a.regs).to.deep.equal({ rip: 0x10_0005n, rflags: FIXED | ZF });
      expect([mem.readU64(DATA + 0x10), mem.readU64(DATA + 0x18)]).to.deep.equal([C, Dv]);
      // The walk marked the page dirty, as the CPU's write would.
      expect(mem.readU64(PT1 + ((DATA - 2 * MiB) / 4096) * 8) & D).to.equal(D);
    });

    it('loads RDX:RAX and clears ZF when the comparison fails, leaving memory alone', () => {
      const mem = guest();
      mem.writeU64(DATA + 0x20, C);
      mem.writeU64(DATA + 0x28, Dv);
      const a = emulated(run('48 0f c7 4c 24 10', regs({ rsp: BigInt(DATA + 0x10), rax: A, rdx: B, rbx: 1n, rcx: 2n, rflags: FIXED | ZF | CF }), sregs64(), mem)); // cmpxchg16b [rsp+0x10]
      expect(a.regs).to.deep.equal({ rax: C, rdx: Dv, rip: 0x10_0006n, rflags: FIXED | CF });
      expect([mem.readU64(DATA + 0x20), mem.readU64(DATA + 0x28)]).to.deep.equal([C, Dv]);
    });

    it('raises #GP(0) for a misaligned operand', () => {
      const a = injected(run('f0 48 0f c7 0f', regs({ rdi: BigInt(DATA + 8) })));
      expect(a).to.deep.equal({ kind: 'inject-exception', vector: Vector.GP, errorCode: 0, instructionLength: 5, soft: false, rip: 0x10_0000n, description: '#GP on lock cmpxchg16b xmmword ptr [rdi]' });
    });

    it('raises #PF as a write access, with CR2', () => {
      expect(injected(run('f0 48 0f c7 0f', regs({ rdi: BigInt(UNMAPPED + 0x40) })))).to.deep.include({ vector: Vector.PF, errorCode: 2, cr2: BigInt(UNMAPPED + 0x40) });
      // A read-only page faults even if the comparison would fail: the instruction always writes.
      expect(injected(run('f0 48 0f c7 0f', regs({ rdi: BigInt(READ_ONLY) })))).to.deep.include({ vector: Vector.PF, errorCode: 3, cr2: BigInt(READ_ONLY) });
      expect(injected(run('f0 48 0f c7 0f', regs({ rdi: BigInt(DATA) }), sregs64(), guest(), 3))).to.deep.include({ errorCode: 7 });
    });

    it('raises #UD for a register operand and leaves cmpxchg8b alone', () => {
      expect(injected(run('48 0f c7 c9', regs())).vector).to.equal(Vector.UD);
      expect(unhandled(run('0f c7 0f', regs())).disassembly).to.equal('0f c7 0f: cmpxchg8b qword ptr [rdi]');
    });

    it('refuses device memory', () => {
      expect(unhandled(run('f0 48 0f c7 0f', regs({ rdi: BigInt(MMIO) }))).reason).to.match(/not guest RAM/);
    });

    it('refuses a guest-aligned operand that the host mapping leaves misaligned', () => {
      // A RAM region whose first byte is at GPA ...08: GPA ...10 is 8 bytes into the host buffer.
      const odd = 0x4000_0008;
      const mem = new GuestMemory([...guest().descriptors(), { gpa: odd, buffer: new SharedArrayBuffer(64 * 1024) }]);
      mem.writeU64(PT1 + ((UNMAPPED - 2 * MiB) / 4096) * 8, 0x4000_0000n | P | RW);
      const u = unhandled(run('f0 48 0f c7 0f', regs({ rdi: BigInt(UNMAPPED + 0x10) }), sregs64(), mem));
      expect(u.reason).to.match(/0x40000010 is not 16-byte aligned in the host mapping/);
    });
  });

  describe('software interrupts and #UD', () => {
    it('delivers int3 as a soft #BP whose return address is the next instruction', () => {
      expect(injected(run('cc', regs()))).to.deep.equal({ kind: 'inject-exception', vector: Vector.BP, instructionLength: 1, soft: true, rip: 0x10_0001n, description: 'int3' });
    });

    it('delivers int n with its vector and 2-byte length', () => {
      expect(injected(run('cd 80', regs()))).to.deep.include({ vector: 0x80, instructionLength: 2, soft: true, rip: 0x10_0002n });
      expect(injected(run('cd 10', regs({ rip: 0xfffen }), sregsLegacy(16)))).to.deep.include({ vector: 0x10, rip: 0n }); // IP wraps
    });

    it('checks the gate DPL when the caller is not in ring 0', () => {
      const mem = guest();
      gate(mem, 3, 0);
      gate(mem, 0x80, 3);
      expect(injected(run('cc', regs(), sregs64(), mem, 3))).to.deep.include({ vector: Vector.GP, errorCode: 3 * 8 + 2, soft: false, rip: 0x10_0000n });
      expect(injected(run('cd 80', regs(), sregs64(), mem, 3))).to.deep.include({ vector: 0x80, soft: true, rip: 0x10_0002n });
      const short = sregs64({ idt: { base: BigInt(IDT), limit: 0x80 * 16 - 1 } });
      expect(injected(run('cd 80', regs(), short, mem, 3))).to.deep.include({ vector: Vector.GP, errorCode: 0x80 * 8 + 2 });
      // Ring 0 may use any gate.
      expect(injected(run('cc', regs(), sregs64(), mem, 0))).to.deep.include({ vector: Vector.BP, soft: true });
      // 32-bit IDTs have 8-byte gates.
      gate(mem, 0x80, 0, 8);
      expect(injected(run('cd 80', regs(), sregsLegacy(32), mem, 3))).to.deep.include({ vector: Vector.GP, errorCode: 0x80 * 8 + 2 });
    });

    it('raises #GP(0) for int n in virtual-8086 mode with IOPL < 3', () => {
      const vm = regs({ rflags: FIXED | (1n << 17n) });
      expect(injected(run('cd 21', vm, sregsLegacy(16), guest(), 3))).to.deep.include({ vector: Vector.GP, errorCode: 0 });
    });

    it('delivers into as #OF only when OF is set', () => {
      const s = sregsLegacy(32);
      expect(injected(run('ce', regs({ rip: 0x7000n, rflags: FIXED | OF }), s))).to.deep.include({ vector: Vector.OF, soft: true, rip: 0x7001n, instructionLength: 1 });
      expect(emulated(run('ce', regs({ rip: 0x7000n }), s)).regs).to.deep.equal({ rip: 0x7001n, rflags: FIXED });
      expect(unhandled(run('ce', regs())).reason).to.match(/64-bit mode/); // does not exist in 64-bit mode
    });

    it('raises #UD at the instruction for ud2, ud1 and ud0', () => {
      expect(injected(run('0f 0b', regs()))).to.deep.equal({ kind: 'inject-exception', vector: Vector.UD, instructionLength: 2, soft: false, rip: 0x10_0000n, description: '#UD on ud2' });
      expect(injected(run('0f b9 40 08', regs()))).to.deep.include({ vector: Vector.UD, instructionLength: 4, rip: 0x10_0000n });
      expect(injected(run('0f ff c0', regs()))).to.deep.include({ vector: Vector.UD, instructionLength: 3 });
    });

    it('raises #UD for LOCK int3', () => {
      expect(injected(run('f0 cc', regs()))).to.deep.include({ vector: Vector.UD, soft: false });
    });
  });

  describe('fwait', () => {
    it('is skipped', () => {
      expect(emulated(run('9b', regs({ rflags: FIXED | RF | CF })))).to.deep.equal({ kind: 'emulated', regs: { rip: 0x10_0001n, rflags: FIXED | CF }, instructionLength: 1, description: 'fwait' });
    });

    it('raises #NM when CR0.MP and CR0.TS are set', () => {
      const s = sregs64({ cr0: Cr0.PE | Cr0.PG | Cr0.MP | Cr0.TS });
      expect(injected(run('9b', regs(), s))).to.deep.include({ vector: Vector.NM, soft: false, rip: 0x10_0000n });
      expect(emulated(run('9b', regs(), sregs64({ cr0: Cr0.PE | Cr0.PG | Cr0.TS }))).regs.rip).to.equal(0x10_0001n);
    });
  });

  describe('unhandled instructions', () => {
    it('reports SSE instructions readably', () => {
      const u = unhandled(run('0f 58 c1', regs()));
      expect(u).to.deep.equal({ kind: 'unhandled', reason: 'no fallback for addps', disassembly: '0f 58 c1: addps' });
    });

    it('leaves rdtscp, xsave family and ldmxcsr to the report', () => {
      expect(unhandled(run('0f 01 f9', regs())).disassembly).to.equal('0f 01 f9: rdtscp');
      expect(unhandled(run('48 0f c7 2f', regs())).disassembly).to.equal('48 0f c7 2f: xsaves64 [rdi]');
      expect(unhandled(run('0f ae 54 24 04', regs())).disassembly).to.equal('0f ae 54 24 04: ldmxcsr [rsp+0x4]');
    });

    it('reports undecodable bytes', () => {
      const u = unhandled(handleEmulationFailure(bytes('0f 04 90'), regs(), sregs64(), guest(), 0));
      expect(u.reason).to.match(/undefined opcode 0f 04/);
      expect(u.disassembly).to.equal('0f 04 90: (undecodable)');
      expect(unhandled(handleEmulationFailure(bytes('f3 48 0f'), regs(), sregs64(), guest(), 0)).reason).to.match(/needs more than the 3 bytes/);
    });
  });

  describe('fetchInstructionBytes', () => {
    it('reads 15 bytes at CS:RIP, stopping at a page it cannot fetch from', () => {
      const mem = guest();
      mem.write(0x10_0000, bytes('f3 48 0f b8 07 90 90 90 90 90 90 90 90 90 90 90'));
      expect(fetchInstructionBytes(mem, sregs64(), 0x10_0000n, 0)).to.deep.equal(bytes('f3 48 0f b8 07 90 90 90 90 90 90 90 90 90 90'));
      mem.write(UNMAPPED - 3, bytes('0f 0b cc'));
      expect(fetchInstructionBytes(mem, sregs64(), BigInt(UNMAPPED - 3), 0)).to.deep.equal(bytes('0f 0b cc'));
      expect(fetchInstructionBytes(mem, sregs64(), BigInt(UNMAPPED), 0)).to.deep.equal(new Uint8Array());
      // Outside 64-bit mode the CS base applies.
      mem.write(0x8_0010, bytes('cd 10'));
      const real = sregsLegacy(16, { cs: segment({ base: 0x8_0000n, db: 0 }), cr0: 0n });
      expect(fetchInstructionBytes(mem, real, 0x10n, 0).subarray(0, 2)).to.deep.equal(bytes('cd 10'));
    });
  });
});
