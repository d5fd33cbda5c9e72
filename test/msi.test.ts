import { expect } from 'chai';
import {
  decodeMsi,
  deliveryModeFromBits,
  encodeMsi,
  MSI_ADDRESS_BASE,
  parseMsi,
  type MsiDestFormat,
  type MsiFields,
} from '../src/irqchip/msi.js';
import { DeliveryMode, Shorthand } from '../src/irqchip/types.js';

describe('MSI', () => {
  describe('decodeMsi', () => {
    it('decodes a plain fixed physical edge message', () => {
      expect(decodeMsi(0xfee01000, 0, 0x0031)).to.deep.equal({
        vector: 0x31,
        deliveryMode: DeliveryMode.Fixed,
        logical: false,
        dest: 1,
        levelTriggered: false,
        assert: true,
        shorthand: Shorthand.None,
        source: -1,
        x2apic: false,
      });
    });

    it('decodes destination mode, trigger, level and delivery mode', () => {
      const msg = decodeMsi(0xfeeff004, 0, 0xc4fe)!;
      expect(msg).to.include({
        vector: 0xfe,
        deliveryMode: DeliveryMode.NMI,
        logical: true,
        dest: 0xff,
        levelTriggered: true,
        assert: true,
      });
      expect(decodeMsi(0xfee00000, 0, 0x8020)).to.include({ levelTriggered: true, assert: false });
      // Bit 14 is meaningless for edge messages: they always assert.
      expect(decodeMsi(0xfee00000, 0, 0x0020)).to.include({ levelTriggered: false, assert: true });
      for (const mode of [0, 1, 2, 4, 5, 7]) {
        expect(decodeMsi(0xfee00000, 0, mode << 8)!.deliveryMode).to.equal(mode);
      }
    });

    it('turns a redirection hint on a fixed message into lowest priority', () => {
      expect(decodeMsi(0xfee0300c, 0, 0x0041)).to.include({
        deliveryMode: DeliveryMode.LowestPriority,
        logical: true,
        dest: 3,
      });
      expect(decodeMsi(0xfee03008, 0, 0x0441)!.deliveryMode).to.equal(DeliveryMode.NMI);
    });

    it('decodes the 15-bit extended destination ID (address bits 11:5)', () => {
      const lo = (MSI_ADDRESS_BASE | (0x34 << 12) | (0x12 << 5)) >>> 0;
      expect(decodeMsi(lo, 0, 0x0045)).to.include({ dest: 0x1234, x2apic: true });
      expect(decodeMsi((MSI_ADDRESS_BASE | (0x7f << 5) | (0xff << 12)) >>> 0, 0, 0)!.dest).to.equal(0x7fff);
    });

    it('decodes x2APIC destinations from address_hi bits 31:8, which win over bits 11:5', () => {
      expect(decodeMsi(0xfee78000, 0x12345600, 0x0045)).to.include({ dest: 0x12345678, x2apic: true });
      expect(decodeMsi(0xfeeff000, 0xffffff00, 0)!.dest).to.equal(0xffffffff);
      expect(decodeMsi((0xfee78000 | (0x7f << 5)) >>> 0, 0x00000100, 0)!.dest).to.equal(0x178);
    });

    it('returns null for what it cannot decode', () => {
      expect(decodeMsi(0xfed00000, 0, 0x31), 'outside the APIC window').to.equal(null);
      expect(decodeMsi(0x00000000, 0, 0x31)).to.equal(null);
      expect(decodeMsi(0xfee00010, 0, 0x31), 'remappable format').to.equal(null);
      expect(decodeMsi(0xfee00000, 0x00000001, 0x31), 'above 4 GiB').to.equal(null);
      expect(decodeMsi(0xfee00000, 0, 0x0331), 'reserved mode 3').to.equal(null);
      expect(decodeMsi(0xfee00000, 0, 0x0631), 'reserved mode 6').to.equal(null);
    });

    it('accepts signed 32-bit inputs', () => {
      expect(decodeMsi(0xfee01000 | 0, 0x12345600 | 0, 0x31)!.dest).to.equal(0x12345601);
    });
  });

  describe('encodeMsi and parseMsi', () => {
    it('encode with defaults: physical, fixed, edge, narrowest format', () => {
      expect(encodeMsi({ vector: 0x31, dest: 1 })).to.deep.equal({ addressLo: 0xfee01000, addressHi: 0, data: 0x31 });
      expect(encodeMsi({ vector: 0x31, dest: 0x1234 })).to.deep.equal({
        addressLo: (0xfee34000 | (0x12 << 5)) >>> 0,
        addressHi: 0,
        data: 0x31,
      });
      expect(encodeMsi({ vector: 0x31, dest: 0x12345 })).to.deep.equal({
        addressLo: 0xfee45000,
        addressHi: 0x00012300,
        data: 0x31,
      });
      expect(encodeMsi({ vector: 0x31, dest: 0x1234, destFormat: 'x2apic' })).to.deep.equal({
        addressLo: 0xfee34000,
        addressHi: 0x00001200,
        data: 0x31,
      });
      expect(encodeMsi({ vector: 0x40, dest: 0, levelTriggered: true }).data).to.equal(0xc040);
    });

    it('round-trips every field through encode -> parse -> encode', () => {
      const formats: ReadonlyArray<[MsiDestFormat, number[]]> = [
        ['standard', [0, 1, 0x7f, 0xff]],
        ['extended', [0x100, 0x1234, 0x7fff, 0x5a5]],
        ['x2apic', [0x100, 0x12345678, 0xffffffff, 0xabcdef01]],
      ];
      let n = 0;
      for (const [destFormat, dests] of formats) {
        for (const dest of dests) {
          for (let bits = 0; bits < 16; bits++) {
            for (const deliveryMode of [0, 1, 2, 3, 4, 5, 6, 7]) {
              const fields: MsiFields = {
                dest,
                logical: (bits & 1) !== 0,
                redirectionHint: (bits & 2) !== 0,
                levelTriggered: (bits & 4) !== 0,
                assert: (bits & 8) !== 0,
                vector: (dest * 7 + bits * 13 + deliveryMode) & 0xff,
                deliveryMode,
                destFormat,
              };
              const wire = encodeMsi(fields);
              const parsed = parseMsi(wire.addressLo, wire.addressHi, wire.data);
              expect(parsed, JSON.stringify(fields)).to.deep.equal(fields);
              expect(encodeMsi(parsed!)).to.deep.equal(wire);
              n++;
            }
          }
        }
      }
      expect(n).to.equal(12 * 16 * 8);
    });

    it('decodes what it encodes', () => {
      const wire = encodeMsi({
        vector: 0x99,
        dest: 0x2345,
        logical: true,
        deliveryMode: DeliveryMode.LowestPriority,
        levelTriggered: true,
      });
      expect(decodeMsi(wire.addressLo, wire.addressHi, wire.data)).to.deep.equal({
        vector: 0x99,
        deliveryMode: DeliveryMode.LowestPriority,
        logical: true,
        dest: 0x2345,
        levelTriggered: true,
        assert: true,
        shorthand: Shorthand.None,
        source: -1,
        x2apic: true,
      });
    });

    it('rejects fields that do not fit', () => {
      expect(() => encodeMsi({ vector: 0x100, dest: 0 })).to.throw(RangeError, /vector/);
      expect(() => encodeMsi({ vector: 0, dest: -1 })).to.throw(RangeError, /dest/);
      expect(() => encodeMsi({ vector: 0, dest: 0x100, destFormat: 'standard' })).to.throw(RangeError);
      expect(() => encodeMsi({ vector: 0, dest: 0x8000, destFormat: 'extended' })).to.throw(RangeError);
      expect(() => encodeMsi({ vector: 0, dest: 0, deliveryMode: 8 })).to.throw(RangeError);
    });
  });

  it('maps the 3-bit delivery mode field, reserved values to null', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map(deliveryModeFromBits)).to.deep.equal([0, 1, 2, null, 4, 5, null, 7]);
  });
});
