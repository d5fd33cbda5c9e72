import { expect } from 'chai';
import { alignDown, alignUp, asciiField, ByteWriter, setChecksum8, sum8 } from '../src/boot/bytes.js';
import { checkPciIntx, firmwareIsaOverrides } from '../src/boot/irq-routing.js';

describe('boot: byte helpers and firmware IRQ routing', () => {
  it('ByteWriter writes little-endian fields and grows past its initial capacity', () => {
    const w = new ByteWriter(16);
    for (let i = 0; i < 100; i++) w.u8(i).u16(0x1234).u32(0xdeadbeef).u64(0x0102030405060708n);
    const b = w.toBytes();
    expect(b.length).to.equal(1500);
    const v = new DataView(b.buffer);
    for (let i = 0; i < 100; i++) {
      const at = i * 15;
      expect(b[at]).to.equal(i);
      expect(v.getUint16(at + 1, true)).to.equal(0x1234);
      expect(v.getUint32(at + 3, true)).to.equal(0xdeadbeef);
      expect(v.getBigUint64(at + 7, true)).to.equal(0x0102030405060708n);
    }
  });

  it('ByteWriter pads, aligns, patches and range-checks', () => {
    const w = new ByteWriter(4);
    w.ascii('AB', 4).zeros(3).align(8).bytes(Uint8Array.of(9));
    expect(Array.from(w.toBytes())).to.deep.equal([0x41, 0x42, 0x20, 0x20, 0, 0, 0, 0, 9]);
    w.patchU16(4, 0xbeef);
    w.patchU32(0, 0x01020304);
    w.patchU8(8, 7);
    expect(Array.from(w.toBytes())).to.deep.equal([4, 3, 2, 1, 0xef, 0xbe, 0, 0, 7]);
    expect(() => w.patchU32(6, 0)).to.throw(RangeError);
    expect(() => w.u8(256)).to.throw(RangeError);
    expect(() => w.u16(-1)).to.throw(RangeError);
    expect(() => w.u32(2 ** 32)).to.throw(RangeError);
    expect(() => w.u64(-1n)).to.throw(RangeError);
    expect(() => asciiField('é', 2)).to.throw(RangeError);
    expect(Array.from(asciiField('ABCDEF', 4))).to.deep.equal([0x41, 0x42, 0x43, 0x44]);
  });

  it('computes 8-bit checksums over a range', () => {
    const b = Uint8Array.of(1, 2, 0xff, 0, 5);
    setChecksum8(b, 3, 0, 4);
    expect(sum8(b, 0, 4)).to.equal(0);
    expect(b[3]).to.equal(0xfe);
    expect(() => setChecksum8(b, 4, 0, 4)).to.throw(RangeError);
  });

  it('aligns', () => {
    expect(alignUp(0x1001, 0x1000)).to.equal(0x2000);
    expect(alignUp(0x1000, 0x1000)).to.equal(0x1000);
    expect(alignDown(0x1fff, 0x1000)).to.equal(0x1000);
  });

  it('derives the firmware overrides from the router table and rejects impossible SCIs', () => {
    expect(firmwareIsaOverrides(10)).to.deep.equal([
      { isaIrq: 0, gsi: 2, polarity: 'conforming', trigger: 'conforming' },
      { isaIrq: 10, gsi: 10, polarity: 'active-high', trigger: 'level' },
    ]);
    expect(() => firmwareIsaOverrides(2)).to.throw(RangeError, /SCI IRQ 2/);
    expect(() => firmwareIsaOverrides(16)).to.throw(RangeError);
  });

  it('validates PCI INTx routes', () => {
    checkPciIntx([{ device: 31, pin: 3, gsi: 23 }]);
    expect(() => checkPciIntx([{ device: 0, pin: 4 as 0, gsi: 16 }])).to.throw(RangeError, /pin/);
    expect(() => checkPciIntx([{ device: 0, pin: 0, gsi: 24 }])).to.throw(RangeError, /16-23/);
  });
});
