import { expect } from 'chai';
import { GuestMemory } from '../src/memory/guest-memory.js';
import type { Segment, Sregs } from '../src/kvm/structs.js';
import { Cr0, Cr4, Efer } from '../src/kvm/x86-bits.js';
import { cpuModeOf, linearAddress, PfError, readVirtual, translateVirtual, type WalkFault, type WalkOptions } from '../src/vcpu/quirks/page-walk.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

// Entry bits (SDM Vol. 3 tables 4-4 .. 4-20).
const P = 1n;
const RW = 2n;
const US = 4n;
const A = 0x20n;
const D = 0x40n;
const PS = 0x80n;
const XD = 1n << 63n;

function segment(over: Partial<Segment> = {}): Segment {
  return { base: 0n, limit: 0xffffffff, selector: 0, type: 3, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, ...over };
}

function makeSregs(over: Partial<Sregs> = {}): Sregs {
  return {
    cs: segment({ type: 11 }),
    ds: segment(),
    es: segment(),
    fs: segment(),
    gs: segment(),
    ss: segment(),
    tr: segment({ type: 11, s: 0 }),
    ldt: segment({ type: 2, s: 0 }),
    gdt: { base: 0n, limit: 0 },
    idt: { base: 0n, limit: 0 },
    cr0: 0n,
    cr2: 0n,
    cr3: 0n,
    cr4: 0n,
    cr8: 0n,
    efer: 0n,
    apic_base: 0n,
    interrupt_bitmap: [0n, 0n, 0n, 0n],
    ...over,
  };
}

type Mode = '32-bit' | 'pae' | '4-level' | '5-level';

/** Builds page tables in guest RAM, allocating tables from `next` upwards. */
class PageTables {
  readonly root: number;
  private next: number;

  constructor(
    readonly mem: GuestMemory,
    readonly mode: Mode,
    tablesAt = 1 * MiB,
  ) {
    this.next = tablesAt;
    this.root = this.alloc();
  }

  private alloc(): number {
    const at = this.next;
    this.next += 4096;
    this.mem.fill(at, 4096, 0);
    return at;
  }

  /** Sregs with this paging mode on (and CR0.WP, EFER.NXE unless told otherwise). */
  sregs(over: Partial<Sregs> = {}): Sregs {
    const long = this.mode === '4-level' || this.mode === '5-level';
    return makeSregs({
      cs: segment({ type: 11, l: long ? 1 : 0, db: long ? 0 : 1 }),
      cr0: Cr0.PE | Cr0.PG | Cr0.WP,
      cr3: BigInt(this.root),
      cr4: (this.mode === '32-bit' ? Cr4.PSE : Cr4.PAE) | (this.mode === '5-level' ? Cr4.LA57 : 0n),
      efer: long ? Efer.LME | Efer.LMA | Efer.NXE : this.mode === 'pae' ? Efer.NXE : 0n,
      ...over,
    });
  }

  private levels(): Array<{ shift: number; bits: number; bytes: 4 | 8 }> {
    switch (this.mode) {
      case '32-bit':
        return [{ shift: 22, bits: 10, bytes: 4 }, { shift: 12, bits: 10, bytes: 4 }];
      case 'pae':
        return [{ shift: 30, bits: 2, bytes: 8 }, { shift: 21, bits: 9, bytes: 8 }, { shift: 12, bits: 9, bytes: 8 }];
      default: {
        const n = this.mode === '5-level' ? 5 : 4;
        return Array.from({ length: n }, (_, i) => ({ shift: 12 + 9 * (n - 1 - i), bits: 9, bytes: 8 as const }));
      }
    }
  }

  private write(at: number, bytes: 4 | 8, v: bigint): void {
    if (bytes === 4) this.mem.writeU32(at, Number(v & 0xffffffffn));
    else this.mem.writeU64(at, v);
  }

  private read(at: number, bytes: 4 | 8): bigint {
    return bytes === 4 ? BigInt(this.mem.readU32(at)) : this.mem.readU64(at);
  }

  /** GPA of the entry for `gva` at depth `depth` (0 = top), creating tables on the way. */
  entryAddress(gva: bigint, depth: number, tableFlags = P | RW | US): number {
    const levels = this.levels();
    let table = this.root;
    for (let i = 0; ; i++) {
      const lv = levels[i]!;
      const at = table + Number((gva >> BigInt(lv.shift)) & ((1n << BigInt(lv.bits)) - 1n)) * lv.bytes;
      if (i === depth) return at;
      let e = this.read(at, lv.bytes);
      if ((e & P) === 0n) {
        // PAE PDPTEs have no R/W or U/S bits (they are reserved there).
        const flags = this.mode === 'pae' && i === 0 ? P : tableFlags;
        e = BigInt(this.alloc()) | flags;
        this.write(at, lv.bytes, e);
      }
      table = Number(e & 0x000ffffffffff000n);
    }
  }

  /** Maps the page of `size` at `gva` to `gpa` with leaf `flags`. */
  map(gva: bigint, gpa: number, size: number, flags = P | RW, tableFlags = P | RW | US): void {
    const levels = this.levels();
    const depth = levels.findIndex((l) => 2 ** l.shift === size);
    if (depth < 0) throw new Error(`no ${size}-byte pages in ${this.mode} paging`);
    const at = this.entryAddress(gva, depth, tableFlags);
    const leaf = depth === levels.length - 1 ? 0n : PS;
    let e = BigInt(gpa) | flags | leaf;
    if (this.mode === '32-bit' && leaf) e = (BigInt(gpa) & 0xffc00000n) | (((BigInt(gpa) >> 32n) & 0xffn) << 13n) | flags | leaf;
    this.write(at, levels[depth]!.bytes, e);
  }

  /** Sets or replaces the raw entry for `gva` at `depth`. */
  setEntry(gva: bigint, depth: number, value: bigint): void {
    this.write(this.entryAddress(gva, depth), this.levels()[depth]!.bytes, value);
  }

  entry(gva: bigint, depth: number): bigint {
    return this.read(this.entryAddress(gva, depth), this.levels()[depth]!.bytes);
  }
}

const ram = (size = 4 * MiB): GuestMemory => new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(size) }]);

function ok(r: ReturnType<typeof translateVirtual>): number {
  if ('fault' in r) throw new Error(`unexpected fault ${JSON.stringify(r, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`);
  return r.gpa;
}

function fault(r: ReturnType<typeof translateVirtual> | ReturnType<typeof readVirtual>): WalkFault {
  if (!('fault' in r)) throw new Error(`expected a fault, got ${JSON.stringify(r, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
  return r;
}

describe('page-walk', () => {
  describe('no paging', () => {
    it('maps linear to physical and wraps at 4 GiB', () => {
      const mem = ram();
      const s = makeSregs({ cr0: Cr0.PE });
      expect(ok(translateVirtual(mem, s, 0, 0x12345n, 'read'))).to.equal(0x12345);
      expect(ok(translateVirtual(mem, s, 3, 0x1_0000_1000n, 'write'))).to.equal(0x1000);
    });
  });

  describe('32-bit paging', () => {
    it('translates 4 KiB pages', () => {
      const mem = ram();
      const pt = new PageTables(mem, '32-bit');
      pt.map(0xc0001000n, 0x5000, 4 * KiB);
      expect(ok(translateVirtual(mem, pt.sregs(), 0, 0xc0001abcn, 'read'))).to.equal(0x5abc);
      expect(translateVirtual(mem, pt.sregs(), 0, 0xc0001000n, 'read')).to.deep.include({ pageSize: 4096 });
    });

    it('translates 4 MiB pages with PSE, including PSE-36 high bits', () => {
      const mem = ram();
      const pt = new PageTables(mem, '32-bit');
      pt.map(0x80000000n, 0x00c00000, 4 * MiB);
      expect(translateVirtual(mem, pt.sregs(), 0, 0x80123456n, 'read')).to.deep.equal({ gpa: 0xd23456, pageSize: 4 * MiB });
      pt.map(0x40000000n, 0x3_0040_0000, 4 * MiB); // above 4 GiB through PDE bits 20:13
      expect(ok(translateVirtual(mem, pt.sregs(), 0, 0x40000010n, 'read'))).to.equal(0x3_0040_0010);
    });

    it('treats PS as an ordinary bit when CR4.PSE is clear', () => {
      const mem = ram();
      const pt = new PageTables(mem, '32-bit');
      pt.map(0x00400000n, 0, 4 * MiB);
      // Without PSE the PDE points at a "page table" at 0, which is zero: not present at level 1.
      const f = fault(translateVirtual(mem, pt.sregs({ cr4: 0n }), 0, 0x00400000n, 'read'));
      expect(f).to.include({ fault: 'not-present', level: 1, errorCode: 0 });
    });

    it('reports not-present faults with the access in the error code', () => {
      const mem = ram();
      const pt = new PageTables(mem, '32-bit');
      const s = pt.sregs();
      expect(fault(translateVirtual(mem, s, 0, 0x1000n, 'read'))).to.deep.equal({ fault: 'not-present', level: 2, errorCode: 0, address: 0x1000n });
      expect(fault(translateVirtual(mem, s, 0, 0x1000n, 'write')).errorCode).to.equal(PfError.write);
      expect(fault(translateVirtual(mem, s, 3, 0x1000n, 'read')).errorCode).to.equal(PfError.user);
      expect(fault(translateVirtual(mem, s, 3, 0x1000n, 'write')).errorCode).to.equal(PfError.user | PfError.write);
      // No execute-disable in 32-bit paging and no SMEP: fetches do not set I/D.
      expect(fault(translateVirtual(mem, s, 0, 0x1000n, 'execute')).errorCode).to.equal(0);
      expect(fault(translateVirtual(mem, pt.sregs({ cr4: Cr4.PSE | Cr4.SMEP }), 0, 0x1000n, 'execute')).errorCode).to.equal(PfError.fetch);
    });

    it('reports reserved bit 21 of a 4 MiB PDE', () => {
      const mem = ram();
      const pt = new PageTables(mem, '32-bit');
      pt.setEntry(0x00400000n, 0, 0x00c00000n | P | RW | PS | (1n << 21n));
      const f = fault(translateVirtual(mem, pt.sregs(), 0, 0x00400000n, 'write'));
      expect(f).to.include({ fault: 'reserved', level: 2, errorCode: PfError.present | PfError.write | PfError.reserved });
      // PSE-36 address bits beyond MAXPHYADDR are reserved too.
      pt.setEntry(0x00400000n, 0, 0x00c00000n | P | RW | PS | (0x10n << 13n)); // PA bit 36
      expect(ok(translateVirtual(mem, pt.sregs(), 0, 0x00400000n, 'read'))).to.equal(0x10_00c0_0000);
      expect(fault(translateVirtual(mem, pt.sregs(), 0, 0x00400000n, 'read', { maxPhysAddr: 36 })).fault).to.equal('reserved');
    });

    it('checks user/supervisor and read/write with CR0.WP', () => {
      const mem = ram();
      const pt = new PageTables(mem, '32-bit');
      pt.map(0x1000n, 0x5000, 4 * KiB, P); // supervisor, read-only
      pt.map(0x2000n, 0x6000, 4 * KiB, P | US); // user, read-only
      const wp = pt.sregs();
      const noWp = pt.sregs({ cr0: Cr0.PE | Cr0.PG });
      expect(fault(translateVirtual(mem, wp, 3, 0x1000n, 'read'))).to.include({ fault: 'protection', level: 1, errorCode: PfError.present | PfError.user });
      expect(fault(translateVirtual(mem, wp, 0, 0x1000n, 'write')).errorCode).to.equal(PfError.present | PfError.write);
      expect(ok(translateVirtual(mem, noWp, 0, 0x1000n, 'write'))).to.equal(0x5000); // WP=0: supervisor writes ignore R/W
      expect(fault(translateVirtual(mem, noWp, 3, 0x2000n, 'write')).errorCode).to.equal(PfError.present | PfError.write | PfError.user);
      expect(ok(translateVirtual(mem, wp, 3, 0x2000n, 'read'))).to.equal(0x6000);
    });
  });

  describe('PAE paging', () => {
    it('translates 2 MiB and 4 KiB pages through a 4-entry PDPT', () => {
      const mem = ram();
      const pt = new PageTables(mem, 'pae');
      pt.map(0xc0200000n, 0x200000, 2 * MiB);
      pt.map(0x00401000n, 0x3000, 4 * KiB);
      expect(translateVirtual(mem, pt.sregs(), 0, 0xc0212345n, 'read')).to.deep.equal({ gpa: 0x212345, pageSize: 2 * MiB });
      expect(ok(translateVirtual(mem, pt.sregs(), 0, 0x00401fffn, 'read'))).to.equal(0x3fff);
      // CR3 bits 11:5 matter in PAE paging: a PDPT at a 32-byte boundary.
      const moved = 1 * MiB + 0x20;
      mem.write(moved, mem.read(pt.root, 32));
      mem.fill(pt.root, 32, 0);
      expect(ok(translateVirtual(mem, pt.sregs({ cr3: BigInt(moved) }), 0, 0x00401000n, 'read'))).to.equal(0x3000);
    });

    it('never sets an accessed bit in a PDPTE (bit 5 is reserved there)', () => {
      const mem = ram();
      const pt = new PageTables(mem, 'pae');
      pt.map(0x1000n, 0x5000, 4 * KiB);
      const pdpte = pt.entry(0x1000n, 0);
      ok(translateVirtual(mem, pt.sregs(), 0, 0x1000n, 'write', { setAccessedDirty: true }));
      expect(pt.entry(0x1000n, 0)).to.equal(pdpte);
      expect(pt.entry(0x1000n, 1) & A).to.equal(A);
      expect(pt.entry(0x1000n, 2) & (A | D)).to.equal(A | D);
      ok(translateVirtual(mem, pt.sregs(), 0, 0x1000n, 'read'));
    });

    it('honours execute-disable with EFER.NXE and reserves it without', () => {
      const mem = ram();
      const pt = new PageTables(mem, 'pae');
      pt.map(0x1000n, 0x5000, 4 * KiB, P | RW | XD);
      const f = fault(translateVirtual(mem, pt.sregs(), 0, 0x1000n, 'execute'));
      expect(f).to.include({ fault: 'protection', level: 1, errorCode: PfError.present | PfError.fetch });
      expect(ok(translateVirtual(mem, pt.sregs(), 0, 0x1000n, 'read'))).to.equal(0x5000);
      const noNx = pt.sregs({ efer: 0n });
      expect(fault(translateVirtual(mem, noNx, 0, 0x1000n, 'read'))).to.include({ fault: 'reserved', level: 1, errorCode: PfError.present | PfError.reserved });
    });

    it('reports reserved PDPTE bits and bits 20:13 of a 2 MiB PDE', () => {
      const mem = ram();
      const pt = new PageTables(mem, 'pae');
      pt.map(0x200000n, 0x200000, 2 * MiB);
      expect(ok(translateVirtual(mem, pt.sregs(), 0, 0x200000n, 'read'))).to.equal(0x200000);
      const pde = pt.entry(0x200000n, 1);
      pt.setEntry(0x200000n, 1, pde | (1n << 13n));
      expect(fault(translateVirtual(mem, pt.sregs(), 0, 0x200000n, 'read'))).to.include({ fault: 'reserved', level: 2 });
      pt.setEntry(0x200000n, 1, pde);
      const pdpte = pt.entry(0x200000n, 0);
      pt.setEntry(0x200000n, 0, pdpte | RW); // bit 1 is reserved in a PAE PDPTE
      expect(fault(translateVirtual(mem, pt.sregs(), 0, 0x200000n, 'read'))).to.include({ fault: 'reserved', level: 3 });
    });
  });

  describe('4-level paging', () => {
    const KERNEL = 0xffff_8880_0000_0000n;

    it('translates 4 KiB, 2 MiB and 1 GiB pages', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      pt.map(0x0000_7fff_ffff_f000n, 0x7000, 4 * KiB, P | RW | US);
      pt.map(KERNEL + 0x20_0000n, 0x20_0000, 2 * MiB);
      pt.map(0xffff_ffff_8000_0000n, 0x4000_0000, GiB); // above RAM: translation only
      const s = pt.sregs();
      expect(ok(translateVirtual(mem, s, 3, 0x0000_7fff_ffff_fff8n, 'write'))).to.equal(0x7ff8);
      expect(translateVirtual(mem, s, 0, KERNEL + 0x21_2345n, 'read')).to.deep.equal({ gpa: 0x21_2345, pageSize: 2 * MiB });
      expect(translateVirtual(mem, s, 0, 0xffff_ffff_8123_4567n, 'execute')).to.deep.equal({ gpa: 0x4123_4567, pageSize: GiB });
    });

    it('rejects non-canonical addresses before walking', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      expect(fault(translateVirtual(mem, pt.sregs(), 0, 0x0000_8000_0000_0000n, 'read'))).to.deep.equal({ fault: 'non-canonical', level: 0, errorCode: 0, address: 0x0000_8000_0000_0000n });
      expect(fault(translateVirtual(mem, pt.sregs(), 0, 0xffff_0000_0000_0000n, 'read')).fault).to.equal('non-canonical');
      expect(fault(translateVirtual(mem, pt.sregs(), 0, 0xffff_8000_0000_0000n, 'read')).fault).to.equal('not-present');
    });

    it('reports reserved bits at each level with the level', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      pt.map(0x40_0000n, 0x40_0000, 2 * MiB);
      pt.map(0x1000n, 0x1000, 4 * KiB);
      const s = pt.sregs();
      const pml4e = pt.entry(0x1000n, 0);
      pt.setEntry(0x1000n, 0, pml4e | PS); // PS is reserved in a PML4E
      expect(fault(translateVirtual(mem, s, 0, 0x1000n, 'read'))).to.include({ fault: 'reserved', level: 4, errorCode: PfError.present | PfError.reserved });
      pt.setEntry(0x1000n, 0, pml4e);
      const pde = pt.entry(0x40_0000n, 2);
      pt.setEntry(0x40_0000n, 2, pde | (1n << 20n)); // bits 20:13 of a 2 MiB PDE
      expect(fault(translateVirtual(mem, s, 3, 0x40_0000n, 'read'))).to.include({ fault: 'reserved', level: 2, errorCode: PfError.present | PfError.reserved | PfError.user });
      pt.setEntry(0x40_0000n, 2, pde);
      const pte = pt.entry(0x1000n, 3);
      pt.setEntry(0x1000n, 3, pte | (1n << 45n)); // a physical-address bit beyond MAXPHYADDR=40
      expect(ok(translateVirtual(mem, s, 0, 0x1000n, 'read'))).to.equal(0x2000_0000_1000);
      expect(fault(translateVirtual(mem, s, 0, 0x1000n, 'read', { maxPhysAddr: 40 }))).to.include({ fault: 'reserved', level: 1 });
      pt.setEntry(0x1000n, 3, pte);
      pt.map(0x4000_0000n, 0x4000_0000, GiB);
      pt.setEntry(0x4000_0000n, 1, pt.entry(0x4000_0000n, 1) | (1n << 29n)); // bits 29:13 of a 1 GiB PDPTE
      expect(fault(translateVirtual(mem, s, 0, 0x4000_0000n, 'read'))).to.include({ fault: 'reserved', level: 3 });
    });

    it('combines rights across levels: U/S and R/W must be set everywhere, XD anywhere forbids fetches', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      pt.map(0x1000n, 0x1000, 4 * KiB, P | RW | US, P | RW); // user leaf under supervisor tables
      pt.map(0x80_0000_0000n, 0x2000, 4 * KiB, P | RW | US, P | US); // writable leaf under read-only tables
      const s = pt.sregs();
      expect(fault(translateVirtual(mem, s, 3, 0x1000n, 'read'))).to.include({ fault: 'protection', level: 1, errorCode: PfError.present | PfError.user });
      expect(fault(translateVirtual(mem, s, 3, 0x80_0000_0000n, 'write')).errorCode).to.equal(PfError.present | PfError.user | PfError.write);
      expect(ok(translateVirtual(mem, s, 3, 0x80_0000_0000n, 'read'))).to.equal(0x2000);
      pt.setEntry(0x80_0000_0000n, 1, pt.entry(0x80_0000_0000n, 1) | XD);
      expect(fault(translateVirtual(mem, s, 3, 0x80_0000_0000n, 'execute')).errorCode).to.equal(PfError.present | PfError.user | PfError.fetch);
      expect(fault(translateVirtual(mem, s, 0, 0x80_0000_0000n, 'execute')).errorCode).to.equal(PfError.present | PfError.fetch);
    });

    it('applies SMEP to supervisor fetches and SMAP to supervisor data accesses of user pages', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      pt.map(0x1000n, 0x1000, 4 * KiB, P | RW | US);
      const plain = pt.sregs();
      const both = pt.sregs({ cr4: Cr4.PAE | Cr4.SMEP | Cr4.SMAP });
      expect(ok(translateVirtual(mem, plain, 0, 0x1000n, 'execute'))).to.equal(0x1000);
      expect(fault(translateVirtual(mem, both, 0, 0x1000n, 'execute')).errorCode).to.equal(PfError.present | PfError.fetch);
      expect(fault(translateVirtual(mem, both, 0, 0x1000n, 'read')).errorCode).to.equal(PfError.present);
      expect(fault(translateVirtual(mem, both, 0, 0x1000n, 'write')).errorCode).to.equal(PfError.present | PfError.write);
      const ac: WalkOptions = { ac: true };
      expect(ok(translateVirtual(mem, both, 0, 0x1000n, 'write', ac))).to.equal(0x1000);
      expect(ok(translateVirtual(mem, both, 3, 0x1000n, 'read'))).to.equal(0x1000); // SMAP is about supervisor accesses only
    });

    it('sets accessed and dirty bits only when asked, and dirty only for writes', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      pt.map(0x1000n, 0x1000, 4 * KiB);
      pt.map(0x20_0000n, 0x20_0000, 2 * MiB);
      const s = pt.sregs();
      ok(translateVirtual(mem, s, 0, 0x1000n, 'write'));
      for (let depth = 0; depth < 4; depth++) expect(pt.entry(0x1000n, depth) & (A | D)).to.equal(0n);
      ok(translateVirtual(mem, s, 0, 0x1000n, 'read', { setAccessedDirty: true }));
      for (let depth = 0; depth < 4; depth++) expect(pt.entry(0x1000n, depth) & (A | D), `depth ${depth}`).to.equal(A);
      ok(translateVirtual(mem, s, 0, 0x1000n, 'write', { setAccessedDirty: true }));
      expect(pt.entry(0x1000n, 3) & (A | D)).to.equal(A | D);
      expect(pt.entry(0x1000n, 2) & D).to.equal(0n); // D exists only in the entry that maps the page
      ok(translateVirtual(mem, s, 0, 0x20_0000n, 'write', { setAccessedDirty: true }));
      expect(pt.entry(0x20_0000n, 2) & (A | D)).to.equal(A | D);
      // A faulting walk changes nothing.
      pt.map(0x3000n, 0x3000, 4 * KiB, P);
      const before = pt.entry(0x3000n, 3);
      fault(translateVirtual(mem, s, 0, 0x3000n, 'write', { setAccessedDirty: true }));
      expect(pt.entry(0x3000n, 3)).to.equal(before);
    });

    it('reports tables and pages outside guest RAM instead of reading them', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      const s = pt.sregs();
      expect(fault(translateVirtual(mem, pt.sregs({ cr3: 0x4000_0000n }), 0, 0x1000n, 'read'))).to.deep.equal({ fault: 'outside-ram', level: 4, errorCode: 0, address: 0x1000n, gpa: 0x4000_0000 });
      pt.setEntry(0x1000n, 2, 0xfee0_0000n | P | RW); // PD entry pointing at the APIC page as a page table
      expect(fault(translateVirtual(mem, s, 0, 0x1000n, 'read'))).to.include({ fault: 'outside-ram', level: 1, gpa: 0xfee0_0000 + 8 });
      pt.setEntry(0x1000n, 2, 0x0000_ffff_ffff_f000n | P | RW); // a 52-bit address
      expect(fault(translateVirtual(mem, s, 0, 0x1000n, 'read')).fault).to.equal('outside-ram');
      // The translation itself may end outside RAM (MMIO); reading there is refused.
      pt.map(0x60_0000n, 0xfee0_0000, 4 * KiB);
      expect(ok(translateVirtual(mem, s, 0, 0x60_0000n, 'read'))).to.equal(0xfee0_0000);
      expect(fault(readVirtual(mem, s, 0, 0x60_0000n, 4))).to.deep.include({ fault: 'outside-ram', level: 0, gpa: 0xfee0_0000 });
    });
  });

  describe('5-level paging', () => {
    it('walks five levels and uses 57-bit canonical addresses', () => {
      const mem = ram();
      const pt = new PageTables(mem, '5-level');
      pt.map(0xff11_2233_4455_6000n, 0x9000, 4 * KiB);
      pt.map(0x00ff_0000_0000_0000n, 0xa000, 4 * KiB);
      const s = pt.sregs();
      expect(ok(translateVirtual(mem, s, 0, 0xff11_2233_4455_6123n, 'read'))).to.equal(0x9123);
      expect(ok(translateVirtual(mem, s, 0, 0x00ff_0000_0000_0008n, 'read'))).to.equal(0xa008); // non-canonical with 4 levels
      expect(fault(translateVirtual(mem, s, 0, 0x0100_0000_0000_0000n, 'read')).fault).to.equal('non-canonical'); // bit 56 set, 63:57 clear
      expect(fault(translateVirtual(mem, s, 0, 0x0200_0000_0000_0000n, 'read')).fault).to.equal('non-canonical');
      expect(fault(translateVirtual(mem, s, 0, 0xff11_2233_4455_7000n, 'read'))).to.include({ fault: 'not-present', level: 1 });
      expect(fault(translateVirtual(mem, s, 0, 0xff80_0000_0000_0000n, 'read'))).to.include({ fault: 'not-present', level: 5 });
      pt.setEntry(0xff11_2233_4455_6000n, 0, pt.entry(0xff11_2233_4455_6000n, 0) | PS);
      expect(fault(translateVirtual(mem, s, 0, 0xff11_2233_4455_6000n, 'read'))).to.include({ fault: 'reserved', level: 5 });
    });
  });

  describe('readVirtual', () => {
    it('reads across a page boundary into a physically distant page', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      pt.map(0x10_0000_0000n, 0x3000, 4 * KiB);
      pt.map(0x10_0000_1000n, 0x8000, 4 * KiB);
      mem.write(0x3ffc, Uint8Array.of(1, 2, 3, 4));
      mem.write(0x8000, Uint8Array.of(5, 6, 7, 8));
      const r = readVirtual(mem, pt.sregs(), 0, 0x10_0000_0ffcn, 8);
      expect(r).to.deep.equal({ bytes: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8) });
    });

    it('fails with the address of the first byte it cannot reach', () => {
      const mem = ram();
      const pt = new PageTables(mem, '4-level');
      pt.map(0x10_0000_0000n, 0x3000, 4 * KiB);
      const f = fault(readVirtual(mem, pt.sregs(), 0, 0x10_0000_0ff8n, 16));
      expect(f).to.deep.equal({ fault: 'not-present', level: 1, errorCode: 0, address: 0x10_0000_1000n });
    });

    it('wraps at 4 GiB outside long mode', () => {
      const mem = ram();
      const pt = new PageTables(mem, '32-bit');
      pt.map(0xffff_f000n, 0x3000, 4 * KiB);
      pt.map(0n, 0x8000, 4 * KiB);
      mem.write(0x3fff, Uint8Array.of(0xaa));
      mem.write(0x8000, Uint8Array.of(0xbb));
      expect(readVirtual(mem, pt.sregs(), 0, 0xffff_ffffn, 2)).to.deep.equal({ bytes: Uint8Array.of(0xaa, 0xbb) });
      // Without paging the linear address is the physical one, wrapped the same way.
      mem.write(0, Uint8Array.of(0xcc));
      expect(readVirtual(mem, makeSregs({ cr0: Cr0.PE }), 0, 0x1_0000_0000n, 1)).to.deep.equal({ bytes: Uint8Array.of(0xcc) });
    });

    it('reads RAM regions above a hole and refuses the hole', () => {
      const mem = new GuestMemory([
        { gpa: 0, buffer: new SharedArrayBuffer(1 * MiB) },
        { gpa: 4 * MiB, buffer: new SharedArrayBuffer(1 * MiB) },
      ]);
      mem.write(4 * MiB, Uint8Array.of(9, 8, 7));
      const s = makeSregs({ cr0: Cr0.PE });
      expect(readVirtual(mem, s, 0, BigInt(4 * MiB), 3)).to.deep.equal({ bytes: Uint8Array.of(9, 8, 7) });
      expect(fault(readVirtual(mem, s, 0, BigInt(2 * MiB), 3))).to.include({ fault: 'outside-ram', gpa: 2 * MiB });
    });
  });

  describe('segments', () => {
    it('uses only FS and GS bases in 64-bit mode', () => {
      const s = makeSregs({
        cs: segment({ type: 11, l: 1, db: 0 }),
        efer: Efer.LME | Efer.LMA,
        ds: segment({ base: 0x1000n }),
        fs: segment({ base: 0xffff_8880_0000_0000n }),
        gs: segment({ base: 0x7000n }),
      });
      expect(cpuModeOf(s)).to.equal(64);
      expect(linearAddress(s, 'ds', 0x10n)).to.equal(0x10n);
      expect(linearAddress(s, 'fs', 0x28n)).to.equal(0xffff_8880_0000_0028n);
      expect(linearAddress(s, 'gs', 0xffff_ffff_ffff_fff0n)).to.equal(0x6ff0n); // wraps at 2^64
    });

    it('adds every segment base outside 64-bit mode, wrapping at 4 GiB', () => {
      const s = makeSregs({ ds: segment({ base: 0xffff_f000n }), ss: segment({ base: 0x10000n }) });
      expect(cpuModeOf(s)).to.equal(32);
      expect(linearAddress(s, 'ds', 0x2000n)).to.equal(0x1000n);
      expect(linearAddress(s, 'ss', 0xfffcn)).to.equal(0x1fffcn);
      // Compatibility mode (EFER.LMA with CS.L=0) is 32-bit addressing too.
      const compat = makeSregs({ efer: Efer.LME | Efer.LMA, ds: segment({ base: 0x100n }) });
      expect(cpuModeOf(compat)).to.equal(32);
      expect(linearAddress(compat, 'ds', 0x10n)).to.equal(0x110n);
      expect(cpuModeOf(makeSregs({ cs: segment({ db: 0 }) }))).to.equal(16);
    });
  });
});
