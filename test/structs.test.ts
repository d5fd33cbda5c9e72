import { expect } from 'chai';
import { layoutOf } from '../src/kvm/addon.js';
import {
  REGS_SIZE,
  REG_NAMES,
  SEGMENT_NAMES,
  SREGS_SIZE,
  cpuidBuffer,
  decodeCpuid,
  decodeMsrs,
  decodeRegs,
  decodeSregs,
  encodeCpuid,
  encodeMsrs,
  encodeRegs,
  encodeSregs,
  eventsOff,
  type CpuidEntry,
  type Regs,
  type Segment,
  type Sregs,
} from '../src/kvm/structs.js';

function sampleRegs(): Regs {
  const r = {} as Regs;
  REG_NAMES.forEach((n, i) => (r[n] = 0x0101010101010101n * BigInt(i + 1) + BigInt(i)));
  r.rax = 0xffffffffffffffffn;
  r.rbx = 0n;
  r.rcx = 0x8000000000000000n;
  return r;
}

/** A segment whose every field differs from every other segment's. */
function sampleSegment(k: number): Segment {
  return {
    base: 0xfedcba9876543210n ^ BigInt(k),
    limit: (0xfffff000 + k) >>> 0,
    selector: 0x1000 + k * 8,
    type: k & 0xf,
    present: k & 1,
    dpl: k & 3,
    db: (k >> 1) & 1,
    s: (k >> 2) & 1,
    l: (k + 1) & 1,
    g: 1 - (k & 1),
    avl: (k >> 1) & 1,
    unusable: (k + 1) & 1,
  };
}

function sampleSregs(): Sregs {
  const s = {} as Sregs;
  SEGMENT_NAMES.forEach((n, k) => (s[n] = sampleSegment(k + 3)));
  s.gdt = { base: 0xffffffff80001000n, limit: 0x7f };
  s.idt = { base: 0x123456789abcdef0n, limit: 0xffff };
  s.cr0 = 0x80050033n;
  s.cr2 = 0xdeadbeefcafef00dn;
  s.cr3 = 0x1000n;
  s.cr4 = 0x3406f0n;
  s.cr8 = 0xfn;
  s.efer = 0xd01n;
  s.apic_base = 0xfee00d00n;
  s.interrupt_bitmap = [1n, 0x8000000000000000n, 0xffffffffffffffffn, 0x0123456789abcdefn];
  return s;
}

describe('KVM structs', () => {
  describe('Regs', () => {
    it('has the kernel size and order (18 u64s, rip and rflags last)', () => {
      const L = layoutOf('kvm_regs');
      expect(REGS_SIZE).to.equal(L.size);
      expect(REGS_SIZE).to.equal(REG_NAMES.length * 8);
      expect(L.rax).to.equal(REG_NAMES.indexOf('rax') * 8);
      expect(L.rip).to.equal(REG_NAMES.indexOf('rip') * 8);
      expect(L.rflags).to.equal(REG_NAMES.indexOf('rflags') * 8);
    });

    it('round-trips every register', () => {
      const view = new DataView(new ArrayBuffer(REGS_SIZE));
      const regs = sampleRegs();
      encodeRegs(view, regs);
      expect(decodeRegs(view)).to.deep.equal(regs);
    });

    it('writes each register little-endian at its own offset', () => {
      const view = new DataView(new ArrayBuffer(REGS_SIZE));
      const regs = Object.fromEntries(REG_NAMES.map((n) => [n, 0n])) as Regs;
      regs.rip = 0x1122334455667788n;
      encodeRegs(view, regs);
      const bytes = new Uint8Array(view.buffer);
      const at = layoutOf('kvm_regs').rip!;
      expect(Array.from(bytes.subarray(at, at + 8))).to.deep.equal([0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
      expect(bytes.filter((b) => b !== 0)).to.have.length(8);
    });

    it('encodes at a base offset and leaves the bytes around it alone', () => {
      const buf = new Uint8Array(REGS_SIZE + 64).fill(0xcc);
      const view = new DataView(buf.buffer);
      const regs = sampleRegs();
      encodeRegs(view, regs, 32);
      expect(decodeRegs(view, 32)).to.deep.equal(regs);
      expect(buf.subarray(0, 32).every((b) => b === 0xcc)).to.equal(true);
      expect(buf.subarray(32 + REGS_SIZE).every((b) => b === 0xcc)).to.equal(true);
    });

    it('stores negative values as their two\'s complement and decodes them unsigned', () => {
      const view = new DataView(new ArrayBuffer(REGS_SIZE));
      const regs = sampleRegs();
      regs.rsp = -8n;
      encodeRegs(view, regs);
      expect(decodeRegs(view).rsp).to.equal(0xfffffffffffffff8n);
    });
  });

  describe('Sregs', () => {
    it('has the kernel size', () => {
      expect(SREGS_SIZE).to.equal(layoutOf('kvm_sregs').size);
    });

    it('round-trips every segment field, both descriptor tables, the control registers and the interrupt bitmap', () => {
      const view = new DataView(new ArrayBuffer(SREGS_SIZE));
      const s = sampleSregs();
      encodeSregs(view, s);
      expect(decodeSregs(view)).to.deep.equal(s);
    });

    it('round-trips each segment field independently (no field bleeds into another)', () => {
      const view = new DataView(new ArrayBuffer(SREGS_SIZE));
      const zero: Segment = { base: 0n, limit: 0, selector: 0, type: 0, present: 0, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 0 };
      const maxima: Segment = { base: 0xffffffffffffffffn, limit: 0xffffffff, selector: 0xffff, type: 0xff, present: 0xff, dpl: 0xff, db: 0xff, s: 0xff, l: 0xff, g: 0xff, avl: 0xff, unusable: 0xff };
      for (const field of Object.keys(zero) as Array<keyof Segment>) {
        for (const name of SEGMENT_NAMES) {
          const s = sampleSregs();
          for (const n of SEGMENT_NAMES) s[n] = { ...zero };
          s[name] = { ...zero, [field]: maxima[field] };
          encodeSregs(view, s);
          expect(decodeSregs(view), `${name}.${field}`).to.deep.equal(s);
        }
      }
    });

    it('puts fields at the kernel offsets', () => {
      const L = layoutOf('kvm_sregs');
      const SEG = layoutOf('kvm_segment');
      const DT = layoutOf('kvm_dtable');
      const view = new DataView(new ArrayBuffer(SREGS_SIZE));
      const s = sampleSregs();
      encodeSregs(view, s);
      expect(view.getBigUint64(L.cr3!, true)).to.equal(s.cr3);
      expect(view.getBigUint64(L.efer!, true)).to.equal(s.efer);
      expect(view.getBigUint64(L.apic_base!, true)).to.equal(s.apic_base);
      expect(view.getBigUint64(L.cs! + SEG.base!, true)).to.equal(s.cs.base);
      expect(view.getUint16(L.ss! + SEG.selector!, true)).to.equal(s.ss.selector);
      expect(view.getUint32(L.tr! + SEG.limit!, true)).to.equal(s.tr.limit);
      expect(view.getUint8(L.ldt! + SEG.type!)).to.equal(s.ldt.type);
      expect(view.getUint16(L.idt! + DT.limit!, true)).to.equal(s.idt.limit);
      expect(view.getBigUint64(L.gdt! + DT.base!, true)).to.equal(s.gdt.base);
      expect(view.getBigUint64(L.interrupt_bitmap! + 24, true)).to.equal(s.interrupt_bitmap[3]);
    });

    it('encodes at a base offset and leaves the bytes around it alone', () => {
      const buf = new Uint8Array(SREGS_SIZE + 48).fill(0x5a);
      const view = new DataView(buf.buffer);
      const s = sampleSregs();
      encodeSregs(view, s, 24);
      expect(decodeSregs(view, 24)).to.deep.equal(s);
      expect(buf.subarray(0, 24).every((b) => b === 0x5a)).to.equal(true);
      expect(buf.subarray(24 + SREGS_SIZE).every((b) => b === 0x5a)).to.equal(true);
    });

    it('decodes what the kernel would write: each interrupt-bitmap bit in its own place', () => {
      const L = layoutOf('kvm_sregs');
      const view = new DataView(new ArrayBuffer(SREGS_SIZE));
      // Vector 0x31 pending: word 0, bit 49. Vector 0xef: word 3, bit 47.
      view.setBigUint64(L.interrupt_bitmap!, 1n << 49n, true);
      view.setBigUint64(L.interrupt_bitmap! + 24, 1n << 47n, true);
      expect(decodeSregs(view).interrupt_bitmap).to.deep.equal([1n << 49n, 0n, 0n, 1n << 47n]);
    });
  });

  describe('CPUID lists', () => {
    const entries: CpuidEntry[] = [
      { function: 0, index: 0, flags: 0, eax: 0x1f, ebx: 0x756e6547, ecx: 0x6c65746e, edx: 0x49656e69 },
      { function: 1, index: 0, flags: 0, eax: 0x906ea, ebx: 0xff000800, ecx: 0xfffa3203, edx: 0xffffffff },
      { function: 4, index: 3, flags: 1, eax: 0xfc07c163, ebx: 1, ecx: 2, edx: 3 },
      { function: 0x40000001, index: 0, flags: 0, eax: 0x01007afb, ebx: 0, ecx: 0, edx: 0 },
      { function: 0x80000008, index: 0, flags: 7, eax: 0x3027, ebx: 0, ecx: 0, edx: 0 },
    ];

    it('round-trips a list of entries', () => {
      expect(decodeCpuid(encodeCpuid(entries))).to.deep.equal(entries);
    });

    it('round-trips an empty list', () => {
      expect(decodeCpuid(encodeCpuid([]))).to.deep.equal([]);
    });

    it('sizes the buffer for the header plus every entry and counts them in nent', () => {
      const H = layoutOf('kvm_cpuid2');
      const E = layoutOf('kvm_cpuid_entry2');
      const b = encodeCpuid(entries);
      expect(b.length).to.equal(H.size + entries.length * E.size);
      expect(new DataView(b.buffer).getUint32(H.nent!, true)).to.equal(entries.length);
      const at = H.entries! + 2 * E.size;
      expect(new DataView(b.buffer).getUint32(at + E.eax!, true)).to.equal(0xfc07c163);
    });

    it('encodes signed 32-bit register values (as bitwise operators leave them) as unsigned', () => {
      const signed: CpuidEntry = { function: 1, index: 0, flags: 0, eax: -1, ebx: 0x80000000 | 0, ecx: ~0x2000, edx: 0 };
      expect(decodeCpuid(encodeCpuid([signed]))).to.deep.equal([{ function: 1, index: 0, flags: 0, eax: 0xffffffff, ebx: 0x80000000, ecx: (~0x2000) >>> 0, edx: 0 }]);
    });

    it('makes an empty buffer with room for `capacity` entries, which decodes as that many zero entries', () => {
      const H = layoutOf('kvm_cpuid2');
      const E = layoutOf('kvm_cpuid_entry2');
      const b = cpuidBuffer(3);
      expect(b.length).to.equal(H.size + 3 * E.size);
      const zero: CpuidEntry = { function: 0, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0 };
      expect(decodeCpuid(b)).to.deep.equal([zero, zero, zero]);
    });

    it('decodes only the nent entries the kernel filled in', () => {
      const H = layoutOf('kvm_cpuid2');
      const b = cpuidBuffer(entries.length);
      b.set(encodeCpuid(entries.slice(0, 2)));
      new DataView(b.buffer).setUint32(H.nent!, 2, true);
      expect(decodeCpuid(b)).to.deep.equal(entries.slice(0, 2));
    });

    it('decodes from a view that does not start at the beginning of its buffer', () => {
      const encoded = encodeCpuid(entries);
      const big = new Uint8Array(encoded.length + 40).fill(0xee);
      big.set(encoded, 24);
      expect(decodeCpuid(big.subarray(24, 24 + encoded.length))).to.deep.equal(entries);
    });
  });

  describe('MSR lists', () => {
    const msrs: Array<[number, bigint]> = [
      [0x10, 0x0123456789abcdefn], // TSC
      [0x1b, 0xfee00900n], // APIC base
      [0xc0000080, 0xd01n], // EFER
      [0xc0000100, 0xffffffffffffffffn], // FS base
      [0x6e0, 0n], // TSC deadline
    ];

    it('round-trips index/value pairs', () => {
      expect(decodeMsrs(encodeMsrs(msrs), msrs.length)).to.deep.equal(msrs);
    });

    it('counts the entries in nmsrs and sizes the buffer for them', () => {
      const H = layoutOf('kvm_msrs');
      const E = layoutOf('kvm_msr_entry');
      const b = encodeMsrs(msrs);
      expect(b.length).to.equal(H.size + msrs.length * E.size);
      expect(new DataView(b.buffer).getUint32(H.nmsrs!, true)).to.equal(msrs.length);
      const at = H.entries! + 2 * E.size;
      expect(new DataView(b.buffer).getUint32(at + E.index!, true)).to.equal(0xc0000080);
      expect(new DataView(b.buffer).getBigUint64(at + E.data!, true)).to.equal(0xd01n);
    });

    it('decodes only as many entries as asked (the count KVM_GET_MSRS returned)', () => {
      expect(decodeMsrs(encodeMsrs(msrs), 3)).to.deep.equal(msrs.slice(0, 3));
      expect(decodeMsrs(encodeMsrs(msrs), 0)).to.deep.equal([]);
    });

    it('stores a negative value as its two\'s complement', () => {
      expect(decodeMsrs(encodeMsrs([[0x10, -1n]]), 1)).to.deep.equal([[0x10, 0xffffffffffffffffn]]);
    });

    it('encodes an empty list as just the header', () => {
      const b = encodeMsrs([]);
      expect(b.length).to.equal(layoutOf('kvm_msrs').size);
      expect(decodeMsrs(b, 0)).to.deep.equal([]);
    });

    it('decodes from a view that does not start at the beginning of its buffer', () => {
      const encoded = encodeMsrs(msrs);
      const big = new Uint8Array(encoded.length + 16);
      big.set(encoded, 8);
      expect(decodeMsrs(big.subarray(8), msrs.length)).to.deep.equal(msrs);
    });
  });

  describe('kvm_vcpu_events offsets', () => {
    it('reads field offsets from the addon', () => {
      expect(eventsOff('sipi_vector')).to.equal(layoutOf('kvm_vcpu_events').sipi_vector);
      expect(() => eventsOff('no_such_field')).to.throw(/kvm_vcpu_events\.no_such_field missing/);
    });
  });
});
