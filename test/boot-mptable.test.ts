import { expect } from 'chai';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { DEFAULT_ISA_OVERRIDES } from '../src/irqchip/irq-router.js';
import { buildMpTable, mpTableFits, MP_FLOATING_ADDR, MP_MAX_CPUS, writeMpTable } from '../src/boot/mptable.js';
import { firmwareIsaOverrides } from '../src/boot/irq-routing.js';
import { readMpTable, sum8, type MpEntry } from './helpers/boot-tables.js';

function memory(): GuestMemory {
  return new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(2 * 1024 * 1024) }]);
}

/** Linux's MP scan (arch/x86/kernel/mpparse.c smp_scan_config): "_MP_" on 16-byte boundaries with a valid checksum. */
function scanForMp(mem: GuestMemory, start: number, length: number): number | null {
  for (let a = start; a < start + length; a += 16) {
    const b = mem.read(a, 16);
    if (String.fromCharCode(...b.subarray(0, 4)) === '_MP_' && b[8] === 1 && sum8(b) === 0) return a;
  }
  return null;
}

describe('boot: MP table (MPS 1.4)', () => {
  const mem = memory();
  const placed = writeMpTable(mem, {
    cpus: 4,
    cpuSignature: 0x000806f8,
    featureFlags: 0x178bfbff,
    pciIntx: [
      { device: 1, pin: 0, gsi: 16 },
      { device: 3, pin: 2, gsi: 23 },
    ],
  });
  const t = readMpTable(mem, placed.floating);
  const of = <T extends MpEntry['type']>(type: T): Extract<MpEntry, { type: T }>[] =>
    t.entries.filter((e): e is Extract<MpEntry, { type: T }> => e.type === type);

  it('places a checksummed floating pointer where Linux scans (0xF0000-0xFFFFF)', () => {
    expect(placed.floating).to.equal(0xf0000);
    expect(scanForMp(mem, 0xf0000, 0x10000)).to.equal(0xf0000);
    expect(t.floating).to.deep.equal({
      signature: '_MP_',
      tableAddr: 0xf0010,
      length: 1,
      specRev: 4,
      checksumOk: true,
      features: [0, 0, 0, 0, 0],
    });
  });

  it('has a header with correct length, count and checksums', () => {
    expect(t.signature).to.equal('PCMP');
    expect(t.specRev).to.equal(4);
    expect(t.checksumOk).to.equal(true);
    expect(t.extLength).to.equal(0);
    expect(t.extChecksumOk).to.equal(true);
    expect(t.entryCount).to.equal(t.entries.length);
    expect(t.baseLength).to.equal(44 + 4 * 20 + (t.entries.length - 4) * 8);
    expect(placed.length).to.equal(16 + t.baseLength);
    expect(t.oemId).to.equal('NODEVISR');
    expect(t.productId).to.equal('NODEVISOR   ');
    expect(t.oemTablePtr).to.equal(0);
    expect(t.oemTableSize).to.equal(0);
    expect(t.lapicAddress).to.equal(0xfee00000);
  });

  it('lists entries sorted by type', () => {
    const order = ['cpu', 'bus', 'ioapic', 'ioint', 'lint'];
    const ranks = t.entries.map((e) => order.indexOf(e.type));
    expect(ranks).to.deep.equal([...ranks].sort((a, b) => a - b));
  });

  it('has one enabled processor per vCPU, APIC ID = index, BSP on 0', () => {
    expect(of('cpu')).to.deep.equal(
      [0, 1, 2, 3].map((i) => ({
        type: 'cpu',
        apicId: i,
        apicVersion: 0x14,
        flags: i === 0 ? 3 : 1,
        signature: 0x000806f8,
        features: 0x178bfbff,
        reserved: [0, 0, 0, 0, 0, 0, 0, 0],
      })),
    );
  });

  it('declares PCI bus 0 and the ISA bus', () => {
    expect(of('bus')).to.deep.equal([
      { type: 'bus', id: 0, name: 'PCI   ' },
      { type: 'bus', id: 1, name: 'ISA   ' },
    ]);
  });

  it('declares the IOAPIC: ID 0, version 0x11, enabled, at 0xFEC00000', () => {
    expect(of('ioapic')).to.deep.equal([{ type: 'ioapic', id: 0, version: 0x11, flags: 1, address: 0xfec00000 }]);
  });

  it('routes the ISA IRQs as the router does: 0 -> pin 2, no IRQ 2, SCI level/high, others identity', () => {
    const isa = of('ioint').filter((e) => e.bus === 1 && e.intType === 0);
    const expected = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15].map((irq) => ({
      type: 'ioint',
      intType: 0,
      flags: irq === 9 ? 0x0d : 0,
      bus: 1,
      irq,
      dstApic: 0,
      dstPin: irq === 0 ? 2 : irq,
    }));
    expect(isa).to.deep.equal(expected);
  });

  it('wires the 8259 as ExtINT to IOAPIC pin 0', () => {
    expect(of('ioint').filter((e) => e.intType === 3)).to.deep.equal([{ type: 'ioint', intType: 3, flags: 0, bus: 1, irq: 0, dstApic: 0, dstPin: 0 }]);
  });

  it('routes PCI INTx to pins 16-23, level-triggered, active high', () => {
    expect(of('ioint').filter((e) => e.bus === 0)).to.deep.equal([
      { type: 'ioint', intType: 0, flags: 0x0d, bus: 0, irq: (1 << 2) | 0, dstApic: 0, dstPin: 16 },
      { type: 'ioint', intType: 0, flags: 0x0d, bus: 0, irq: (3 << 2) | 2, dstApic: 0, dstPin: 23 },
    ]);
  });

  it('connects ExtINT to LINT0 and NMI to LINT1 of every local APIC', () => {
    expect(of('lint')).to.deep.equal([
      { type: 'lint', intType: 3, flags: 0, bus: 1, irq: 0, dstApic: 0xff, dstPin: 0 },
      { type: 'lint', intType: 1, flags: 0, bus: 1, irq: 0, dstApic: 0xff, dstPin: 1 },
    ]);
  });

  it('describes exactly the default router overrides plus the SCI', () => {
    expect(firmwareIsaOverrides()).to.deep.equal([...DEFAULT_ISA_OVERRIDES, { isaIrq: 9, gsi: 9, polarity: 'active-high', trigger: 'level' }]);
  });

  it('handles 255 CPUs and refuses 256 (8-bit APIC IDs)', () => {
    expect(MP_MAX_CPUS).to.equal(255);
    expect(mpTableFits(255)).to.equal(true);
    expect(mpTableFits(256)).to.equal(false);
    expect(mpTableFits(0)).to.equal(false);
    const m = memory();
    writeMpTable(m, { cpus: 255 });
    const big = readMpTable(m, MP_FLOATING_ADDR);
    expect(big.checksumOk).to.equal(true);
    expect(big.entries.filter((e) => e.type === 'cpu').map((e) => (e as { apicId: number }).apicId)).to.deep.equal(Array.from({ length: 255 }, (_, i) => i));
    expect(MP_FLOATING_ADDR + 16 + big.baseLength).to.be.at.most(0x100000);
    expect(() => buildMpTable({ cpus: 256 })).to.throw(RangeError, /use ACPI/);
  });

  it('rejects bad PCI routes and misaligned placement', () => {
    expect(() => buildMpTable({ cpus: 1, pciIntx: [{ device: 1, pin: 0, gsi: 9 }] })).to.throw(RangeError, /16-23/);
    expect(() => buildMpTable({ cpus: 1, pciIntx: [{ device: 32, pin: 0, gsi: 16 }] })).to.throw(RangeError, /device number/);
    expect(() => buildMpTable({ cpus: 1, pciIntx: [{ device: 1, pin: 0, gsi: 16 }, { device: 1, pin: 0, gsi: 17 }] })).to.throw(RangeError, /twice/);
    expect(() => buildMpTable({ cpus: 1 }, 0xf0008)).to.throw(RangeError, /aligned/);
  });

  it('lists the APIC IDs of a topology in vCPU order, the BSP first, gaps included', () => {
    const m = memory();
    writeMpTable(m, { cpus: 6, apicIds: [0, 1, 2, 4, 5, 6] });
    const cpus = readMpTable(m, MP_FLOATING_ADDR).entries.filter((e) => e.type === 'cpu') as Array<{ apicId: number; flags: number }>;
    expect(cpus.map((e) => [e.apicId, e.flags])).to.deep.equal([[0, 3], [1, 1], [2, 1], [4, 1], [5, 1], [6, 1]]);
  });

  it('does not fit APIC IDs of 255 and above, whatever the CPU count', () => {
    expect(mpTableFits(2, [0, 254])).to.equal(true);
    expect(mpTableFits(2, [0, 255])).to.equal(false);
    expect(() => buildMpTable({ cpus: 2, apicIds: [0, 300] })).to.throw(RangeError, /IDs up to 300: skip it and use ACPI/);
  });

  it('uses the caller IOAPIC ID in the IOAPIC and every I/O interrupt entry', () => {
    const m = memory();
    writeMpTable(m, { cpus: 2, ioapicId: 7 });
    const tt = readMpTable(m, MP_FLOATING_ADDR);
    expect(tt.entries.filter((e) => e.type === 'ioapic').map((e) => (e as { id: number }).id)).to.deep.equal([7]);
    expect(tt.entries.filter((e) => e.type === 'ioint').every((e) => (e as { dstApic: number }).dstApic === 7)).to.equal(true);
  });
});
