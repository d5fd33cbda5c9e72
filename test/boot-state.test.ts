import { expect } from 'chai';
import { REG_NAMES } from '../src/kvm/structs.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { Cr0, Cr4, Efer } from '../src/kvm/x86-bits.js';
import {
  BOOT_AREA_END,
  BOOT_GDT,
  BOOT_PD,
  BOOT_PDPT,
  BOOT_PML4,
  SEL_CODE32,
  SEL_CODE64,
  SEL_DATA,
  LINUX_GDT64,
  LINUX_GDT32,
  LINUX_BOOT_CS,
  LINUX_BOOT_DS,
  bootRegs,
  bootSregs,
  writeBootTables,
} from '../src/vcpu/boot-state.js';
import { freshSregs, ZERO_SEGMENT } from './helpers/sregs.js';

const MEM_SIZE = 8 * 1024 * 1024;
const FILL = 0xa5;

function bootMemory(): { mem: GuestMemory; bytes: Uint8Array } {
  const buffer = new SharedArrayBuffer(MEM_SIZE);
  const bytes = new Uint8Array(buffer);
  // Junk everywhere, so the test sees every byte the tables depend on being written.
  bytes.fill(FILL);
  const mem = new GuestMemory([{ gpa: 0, buffer }]);
  writeBootTables(mem);
  return { mem, bytes };
}

interface Descriptor {
  base: number;
  limit: number;
  access: number;
  type: number;
  s: number;
  dpl: number;
  present: number;
  avl: number;
  l: number;
  db: number;
  g: number;
}

/** Decodes an 8-byte GDT code/data segment descriptor (Intel SDM vol. 3, 3.4.5). */
function decodeDescriptor(d: bigint): Descriptor {
  const bits = (lo: bigint, n: bigint): number => Number((d >> lo) & ((1n << n) - 1n));
  const access = bits(40n, 8n);
  return {
    base: bits(16n, 24n) | (bits(56n, 8n) << 24),
    limit: bits(0n, 16n) | (bits(48n, 4n) << 16),
    access,
    type: access & 0xf,
    s: (access >> 4) & 1,
    dpl: (access >> 5) & 3,
    present: access >> 7,
    avl: bits(52n, 1n),
    l: bits(53n, 1n),
    db: bits(54n, 1n),
    g: bits(55n, 1n),
  };
}

const PTE_P = 1n;
const PTE_RW = 2n;
const PTE_US = 4n;
const PTE_PS = 0x80n;
const ADDR_MASK = 0x000ffffffffff000n;

interface Translation {
  pa: bigint;
  /** Flags of each level's entry, PML4 first. */
  flags: bigint[];
}

/** A 4-level walk that stops at the first non-present entry; 2 MiB or 1 GiB pages end it early. */
function walk(mem: GuestMemory, cr3: bigint, va: bigint): Translation | undefined {
  let table = cr3 & ADDR_MASK;
  const flags: bigint[] = [];
  const levels: Array<[bigint, bigint]> = [
    [39n, 0n], // PML4: no large pages
    [30n, 1n << 30n], // PDPT: 1 GiB pages if PS
    [21n, 1n << 21n], // PD: 2 MiB pages if PS
    [12n, 1n << 12n], // PT
  ];
  for (const [shift, pageSize] of levels) {
    const index = (va >> shift) & 511n;
    const pte = mem.readU64(Number(table + index * 8n));
    if ((pte & PTE_P) === 0n) return undefined;
    flags.push(pte & 0xfffn);
    if (shift === 12n || (shift !== 39n && (pte & PTE_PS) !== 0n)) {
      const frame = pte & ADDR_MASK & ~(pageSize - 1n);
      return { pa: frame | (va & (pageSize - 1n)), flags };
    }
    table = pte & ADDR_MASK;
  }
  return undefined;
}

describe('boot state', () => {
  describe('writeBootTables', () => {
    it('writes only inside the GDT and the boot page-table area', () => {
      const { bytes } = bootMemory();
      const written = (i: number): boolean =>
        (i >= BOOT_GDT && i < BOOT_GDT + 4 * 8) ||
        (i >= LINUX_GDT64 && i < LINUX_GDT64 + 4 * 8) ||
        (i >= LINUX_GDT32 && i < LINUX_GDT32 + 4 * 8) ||
        (i >= BOOT_PML4 && i < BOOT_AREA_END);
      const strays: number[] = [];
      for (let i = 0; i < 64 * 1024; i++) if (!written(i) && bytes[i] !== FILL) strays.push(i);
      expect(strays).to.deep.equal([]);
      expect(bytes.subarray(64 * 1024).every((b) => b === FILL)).to.equal(true);
    });

    it('lays the tables out where the constants say, inside the boot area', () => {
      expect(BOOT_GDT + 32).to.be.at.most(BOOT_PML4);
      expect([BOOT_PML4, BOOT_PDPT, BOOT_PD].every((a) => a % 4096 === 0)).to.equal(true);
      expect(BOOT_PD + 4 * 0x1000).to.equal(BOOT_AREA_END);
    });

    describe('GDT', () => {
      it('starts with a null descriptor', () => {
        const { mem } = bootMemory();
        expect(mem.readU64(BOOT_GDT)).to.equal(0n);
      });

      const common = { base: 0, limit: 0xfffff, present: 1, dpl: 0, s: 1, avl: 0, g: 1 };

      it('has a flat 64-bit code segment (L=1, D=0) at SEL_CODE64', () => {
        const { mem } = bootMemory();
        expect(SEL_CODE64).to.equal(0x08);
        expect(decodeDescriptor(mem.readU64(BOOT_GDT + SEL_CODE64))).to.deep.equal({ ...common, access: 0x9b, type: 0xb, l: 1, db: 0 });
      });

      it('has a flat read/write data segment (D/B=1) at SEL_DATA', () => {
        const { mem } = bootMemory();
        expect(SEL_DATA).to.equal(0x10);
        expect(decodeDescriptor(mem.readU64(BOOT_GDT + SEL_DATA))).to.deep.equal({ ...common, access: 0x93, type: 0x3, l: 0, db: 1 });
      });

      it('has a flat 32-bit code segment (L=0, D=1) at SEL_CODE32', () => {
        const { mem } = bootMemory();
        expect(SEL_CODE32).to.equal(0x18);
        expect(decodeDescriptor(mem.readU64(BOOT_GDT + SEL_CODE32))).to.deep.equal({ ...common, access: 0x9b, type: 0xb, l: 0, db: 1 });
      });

      it("gives a Linux entry the boot protocol's __BOOT_CS (0x10) and __BOOT_DS (0x18), 64- and 32-bit", () => {
        const { mem } = bootMemory();
        expect([LINUX_BOOT_CS, LINUX_BOOT_DS]).to.deep.equal([0x10, 0x18]);
        for (const [gdt, l, db] of [[LINUX_GDT64, 1, 0], [LINUX_GDT32, 0, 1]] as const) {
          expect(mem.readU64(gdt)).to.equal(0n);
          expect(decodeDescriptor(mem.readU64(gdt + LINUX_BOOT_CS))).to.deep.equal({ ...common, access: 0x9b, type: 0xb, l, db });
          expect(decodeDescriptor(mem.readU64(gdt + LINUX_BOOT_DS))).to.deep.equal({ ...common, access: 0x93, type: 0x3, l: 0, db: 1 });
        }
        const long = bootSregs(freshSregs(), 'long', 0, true);
        expect([long.cs.selector, long.ds.selector, long.ss.selector, Number(long.gdt.base)]).to.deep.equal([0x10, 0x18, 0x18, LINUX_GDT64]);
        const prot = bootSregs(freshSregs(), 'protected', 0, true);
        expect([prot.cs.selector, prot.cs.db, prot.es.selector, Number(prot.gdt.base)]).to.deep.equal([0x10, 1, 0x18, LINUX_GDT32]);
      });

      it('covers 4 GiB with every flat segment (4 KiB granularity, limit 0xfffff)', () => {
        const { mem } = bootMemory();
        for (const sel of [SEL_CODE64, SEL_DATA, SEL_CODE32]) {
          const d = decodeDescriptor(mem.readU64(BOOT_GDT + sel));
          expect((d.limit + 1) * 4096, `selector 0x${sel.toString(16)}`).to.equal(2 ** 32);
        }
      });
    });

    describe('page tables', () => {
      const addresses = [0, 0x1234567, 0x40000000 + 5, 0x7fffffff, 0x80000000, 0xc0000000, 0xfec00000, 0xfee00000, 0xfee000f0, 0xffffffff];
      for (const va of addresses) {
        it(`identity-maps 0x${va.toString(16)}`, () => {
          const { mem } = bootMemory();
          const t = walk(mem, BigInt(BOOT_PML4), BigInt(va));
          expect(t, 'mapped').to.not.equal(undefined);
          expect(t!.pa).to.equal(BigInt(va));
        });
      }

      it('maps every 2 MiB page of the first 4 GiB to itself, present, writable and user-accessible', () => {
        const { mem } = bootMemory();
        for (let page = 0n; page < 2048n; page++) {
          const va = (page << 21n) + 0x1234n;
          const t = walk(mem, BigInt(BOOT_PML4), va);
          if (!t || t.pa !== va) throw new Error(`0x${va.toString(16)} maps to ${t ? `0x${t.pa.toString(16)}` : 'nothing'}`);
          expect(t.flags).to.have.length(3); // PML4 -> PDPT -> PD with a 2 MiB page
          for (const f of t.flags) expect(f & (PTE_P | PTE_RW | PTE_US)).to.equal(PTE_P | PTE_RW | PTE_US);
          expect(t.flags[2]! & PTE_PS).to.equal(PTE_PS);
          // PS is reserved at PML4 and must be clear at the PDPT level here (no 1 GiB page).
          expect(t.flags[0]! & PTE_PS).to.equal(0n);
          expect(t.flags[1]! & PTE_PS).to.equal(0n);
        }
      });

      it('points each level at the next table', () => {
        const { mem } = bootMemory();
        expect(mem.readU64(BOOT_PML4) & ADDR_MASK).to.equal(BigInt(BOOT_PDPT));
        for (let i = 0; i < 4; i++) expect(mem.readU64(BOOT_PDPT + i * 8) & ADDR_MASK).to.equal(BigInt(BOOT_PD + i * 0x1000));
      });

      it('maps nothing at or above 4 GiB, nor in the upper half', () => {
        const { mem } = bootMemory();
        for (const va of [2n ** 32n, 2n ** 32n + 0x1000n, 2n ** 38n, 2n ** 39n, 0xffff800000000000n, 0xffffffff80000000n]) {
          expect(walk(mem, BigInt(BOOT_PML4), va), `0x${va.toString(16)}`).to.equal(undefined);
        }
      });

      it('leaves no stray bits in unused table entries', () => {
        const { mem } = bootMemory();
        for (let i = 1; i < 512; i++) expect(mem.readU64(BOOT_PML4 + i * 8)).to.equal(0n);
        for (let i = 4; i < 512; i++) expect(mem.readU64(BOOT_PDPT + i * 8)).to.equal(0n);
      });
    });
  });

  describe('bootSregs', () => {
    it('sets up real mode with CS base = segment << 4 and protection off', () => {
      const s = bootSregs(freshSregs(), 'real', 0x1234);
      expect(s.cs).to.deep.equal({ ...ZERO_SEGMENT, base: 0x12340n, limit: 0xffff, selector: 0x1234, type: 0xb, present: 1, s: 1 });
      for (const n of ['ds', 'es', 'fs', 'gs', 'ss'] as const) {
        expect(s[n], n).to.deep.equal({ ...ZERO_SEGMENT, base: 0n, limit: 0xffff, selector: 0, type: 0x3, present: 1, s: 1 });
      }
      expect(s.cr0 & Cr0.PE).to.equal(0n);
      expect(s.cr0 & Cr0.PG).to.equal(0n);
      expect(s.cr0).to.equal(0x60000010n);
      expect(s.cr4).to.equal(0n);
      expect(s.efer).to.equal(0n);
    });

    it('puts CS at segment 0 by default and handles the top of the first megabyte', () => {
      expect(bootSregs(freshSregs(), 'real').cs.base).to.equal(0n);
      const top = bootSregs(freshSregs(), 'real', 0xffff).cs;
      expect(top.base).to.equal(0xffff0n);
      expect(top.selector).to.equal(0xffff);
    });

    it('resets GDTR, IDTR and CR3 for real mode even after a long-mode setup, leaving TR and LDT alone', () => {
      const base = bootSregs(freshSregs(), 'long');
      const s = bootSregs(base, 'real', 0x100);
      // The real-mode IVT at 0, as after reset.
      expect(s.idt).to.deep.equal({ base: 0n, limit: 0xffff });
      expect(s.gdt).to.deep.equal({ base: 0n, limit: 0xffff });
      expect(s.cr3).to.equal(0n);
      expect(s.tr).to.deep.equal(base.tr);
      expect(s.ldt).to.deep.equal(base.ldt);
      expect(s.apic_base).to.equal(base.apic_base);
    });

    it('sets up 32-bit protected mode: PE on, paging off, 32-bit flat segments from the boot GDT', () => {
      const s = bootSregs(freshSregs(), 'protected');
      expect(s.cr0 & Cr0.PE).to.equal(Cr0.PE);
      expect(s.cr0 & Cr0.PG).to.equal(0n);
      expect(s.cr0).to.equal(Cr0.PE | Cr0.ET);
      expect(s.cr4).to.equal(0n);
      expect(s.efer).to.equal(0n);
      expect(s.cs).to.deep.equal({ ...ZERO_SEGMENT, base: 0n, limit: 0xffffffff, selector: SEL_CODE32, type: 0xb, present: 1, s: 1, db: 1, l: 0, g: 1 });
      for (const n of ['ds', 'es', 'fs', 'gs', 'ss'] as const) {
        expect(s[n], n).to.deep.equal({ ...ZERO_SEGMENT, base: 0n, limit: 0xffffffff, selector: SEL_DATA, type: 0x3, present: 1, s: 1, db: 1, g: 1 });
      }
      expect(s.gdt).to.deep.equal({ base: BigInt(BOOT_GDT), limit: 31 });
      expect(s.idt).to.deep.equal({ base: 0n, limit: 0 });
    });

    it('sets up long mode: paging with PAE, LME and LMA, CR3 at the boot PML4, a 64-bit CS', () => {
      const s = bootSregs(freshSregs(), 'long');
      expect(s.cr0 & (Cr0.PE | Cr0.PG)).to.equal(Cr0.PE | Cr0.PG);
      expect(s.cr4 & Cr4.PAE).to.equal(Cr4.PAE);
      expect(s.efer & (Efer.LME | Efer.LMA)).to.equal(Efer.LME | Efer.LMA);
      expect(s.cr3).to.equal(BigInt(BOOT_PML4));
      expect(s.cs.selector).to.equal(SEL_CODE64);
      expect(s.cs.l).to.equal(1);
      expect(s.cs.db).to.equal(0); // L=1 requires D=0
      expect(s.cs.type).to.equal(0xb);
      expect(s.cs.present).to.equal(1);
      for (const n of ['ds', 'es', 'fs', 'gs', 'ss'] as const) {
        expect(s[n].selector, n).to.equal(SEL_DATA);
        expect(s[n].l, n).to.equal(0);
        expect(s[n].type, n).to.equal(0x3);
        expect(s[n].present, n).to.equal(1);
      }
      expect(s.gdt).to.deep.equal({ base: BigInt(BOOT_GDT), limit: 31 });
    });

    for (const mode of ['protected', 'long'] as const) {
      it(`gives ${mode} mode a usable busy TSS (type 0xb), keeping a non-zero TR limit`, () => {
        const fresh = bootSregs(freshSregs(), mode);
        expect(fresh.tr).to.include({ type: 0xb, present: 1, s: 0, unusable: 0, limit: 0x67 });
        const base = freshSregs();
        base.tr = { ...base.tr, limit: 0xfff, base: 0x9000n, selector: 0x28 };
        const kept = bootSregs(base, mode);
        expect(kept.tr).to.include({ limit: 0xfff, base: 0x9000n, selector: 0x28, type: 0xb });
      });

      it(`makes ${mode}-mode segment registers agree with the GDT descriptors they select`, () => {
        const { mem } = bootMemory();
        const s = bootSregs(freshSregs(), mode);
        for (const n of ['cs', 'ds', 'es', 'fs', 'gs', 'ss'] as const) {
          const seg = s[n];
          const d = decodeDescriptor(mem.readU64(BOOT_GDT + seg.selector));
          expect({ type: seg.type, present: seg.present, dpl: seg.dpl, s: seg.s, g: seg.g, l: seg.l }, n).to.deep.equal({
            type: d.type,
            present: d.present,
            dpl: d.dpl,
            s: d.s,
            g: d.g,
            l: d.l,
          });
          // The cached limit is the descriptor's, scaled by the granularity.
          expect(seg.limit, n).to.equal(d.g ? d.limit * 4096 + 4095 : d.limit);
          expect(seg.base, n).to.equal(BigInt(d.base));
          expect(seg.db, `${n} D/B`).to.equal(d.db);
        }
      });
    }

    it('does not modify the Sregs it was given', () => {
      for (const mode of ['real', 'protected', 'long'] as const) {
        const base = freshSregs();
        const before = structuredClone(base);
        bootSregs(base, mode, 0x7c0);
        expect(base, mode).to.deep.equal(before);
      }
    });

    it('keeps fields it has no reason to change', () => {
      const base = freshSregs();
      base.cr2 = 0x1234n;
      base.cr8 = 3n;
      base.interrupt_bitmap = [1n, 2n, 3n, 4n];
      for (const mode of ['real', 'protected', 'long'] as const) {
        const s = bootSregs(base, mode);
        expect(s.cr2, mode).to.equal(0x1234n);
        expect(s.cr8, mode).to.equal(3n);
        expect(s.apic_base, mode).to.equal(0xfee00900n);
        expect(s.interrupt_bitmap, mode).to.deep.equal([1n, 2n, 3n, 4n]);
        expect(s.ldt, mode).to.deep.equal(base.ldt);
      }
    });
  });

  describe('bootRegs', () => {
    it('sets every general register, zero but for RIP, RFLAGS, RDI and RSI', () => {
      const r = bootRegs('long', 0x100000, 3, 8);
      expect(Object.keys(r).sort()).to.deep.equal([...REG_NAMES].sort());
      for (const n of REG_NAMES) {
        if (!['rip', 'rflags', 'rdi', 'rsi'].includes(n)) expect(r[n], n).to.equal(0n);
      }
    });

    for (const mode of ['long', 'protected'] as const) {
      it(`starts ${mode} mode at the entry point with reserved RFLAGS bit 1 set`, () => {
        const r = bootRegs(mode, 0x100000, 0, 1);
        expect(r.rip).to.equal(0x100000n);
        expect(r.rflags).to.equal(2n);
      });
    }

    it('passes the vCPU index in RDI and the vCPU count in RSI', () => {
      for (const [vcpu, count] of [[0, 1], [5, 8], [287, 288]] as const) {
        const r = bootRegs('long', 0x100000, vcpu, count);
        expect(r.rdi).to.equal(BigInt(vcpu));
        expect(r.rsi).to.equal(BigInt(count));
      }
    });

    it('starts real mode at IP = entry & 0xf, the rest being in CS', () => {
      expect(bootRegs('real', 0x7c00, 0, 1).rip).to.equal(0n);
      expect(bootRegs('real', 0x7c05, 0, 1).rip).to.equal(5n);
      const entry = 0x1234f;
      const r = bootRegs('real', entry, 1, 2);
      const cs = bootSregs(freshSregs(), 'real', entry >> 4).cs;
      expect(cs.base + r.rip).to.equal(BigInt(entry));
      expect(r.rflags).to.equal(2n);
      expect(r.rdi).to.equal(1n);
      expect(r.rsi).to.equal(2n);
    });
  });
});
