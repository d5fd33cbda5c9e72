import { expect } from 'chai';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { buildAcpiTables, iapcBootArch, layoutAcpiTables, type AcpiTables } from '../src/boot/acpi/tables.js';
import {
  amlDevice,
  amlEisaId,
  amlInteger,
  amlName,
  amlNameString,
  amlPackage,
  amlPkgLength,
  amlScope,
  amlString,
  eisaId,
} from '../src/boot/acpi/aml.js';
import { amlPciHostBridge, amlS5, buildDsdt, pciRootResources } from '../src/boot/acpi/dsdt.js';
import { buildSdt } from '../src/boot/acpi/sdt.js';
import {
  decodeAml,
  decodePkgLength,
  readFacs,
  readFadt,
  readMadt,
  readRsdp,
  readSdt,
  readXsdtEntries,
  scanForRsdp,
  sum8,
  type MadtEntry,
} from './helpers/boot-tables.js';

function memory(): GuestMemory {
  return new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(2 * 1024 * 1024) }]);
}

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');

describe('boot: ACPI tables', () => {
  describe('AML encoder', () => {
    it('encodes \\_S5_ exactly as the spec does: Name(\\_S5_, Package(2){5, 5})', () => {
      // 08 NameOp, 5C RootChar, "_S5_", 12 PackageOp, 06 PkgLength, 02 NumElements, 0A 05 BytePrefix 5 (x2)
      expect(hex(amlS5(5))).to.equal('08 5c 5f 53 35 5f 12 06 02 0a 05 0a 05');
      expect(hex(amlS5(0))).to.equal('08 5c 5f 53 35 5f 12 04 02 00 00');
      expect(() => amlS5(8)).to.throw(RangeError);
    });

    it('encodes integers in their shortest form', () => {
      expect(hex(amlInteger(0))).to.equal('00');
      expect(hex(amlInteger(1))).to.equal('01');
      expect(hex(amlInteger(2))).to.equal('0a 02');
      expect(hex(amlInteger(0xff))).to.equal('0a ff');
      expect(hex(amlInteger(0x100))).to.equal('0b 00 01');
      expect(hex(amlInteger(0x12345678))).to.equal('0c 78 56 34 12');
      expect(hex(amlInteger(0x1_0000_0000n))).to.equal('0e 00 00 00 00 01 00 00 00');
      expect(hex(amlInteger(0xffffffffffffffffn))).to.equal('ff');
      expect(() => amlInteger(-1)).to.throw(RangeError);
    });

    it('encodes PkgLength in 1 to 4 bytes, counting itself', () => {
      expect(hex(amlPkgLength(0))).to.equal('01');
      expect(hex(amlPkgLength(62))).to.equal('3f');
      // 63 content bytes + 2 PkgLength bytes = 65 = 0x41: lead 0x41 (1 follow byte, nibble 1), then 0x04.
      expect(hex(amlPkgLength(63))).to.equal('41 04');
      expect(hex(amlPkgLength(0xffd))).to.equal('4f ff');
      expect(hex(amlPkgLength(0xffe))).to.equal('81 00 01'); // 0xffe + 3 = 0x1001
      expect(hex(amlPkgLength(0xffffc))).to.equal('8f ff ff'); // 0xffffc + 3 = 0xfffff
      expect(hex(amlPkgLength(0xffffd))).to.equal('c1 00 00 01'); // 0xffffd + 4 = 0x100001
      for (const n of [0, 1, 62, 63, 64, 300, 4093, 4094, 70000, 0x0ffffff0]) {
        const enc = amlPkgLength(n);
        const dec = decodePkgLength(enc, 0);
        expect(dec.size).to.equal(enc.length);
        expect(dec.length, `content ${n}`).to.equal(n + enc.length);
      }
      expect(() => amlPkgLength(0x10000000)).to.throw(RangeError);
    });

    it('encodes name strings: segments, padding, root, parent, dual and multi', () => {
      expect(hex(amlNameString('_HID'))).to.equal('5f 48 49 44');
      expect(hex(amlNameString('_S5'))).to.equal('5f 53 35 5f');
      expect(hex(amlNameString('\\_SB_'))).to.equal('5c 5f 53 42 5f');
      expect(hex(amlNameString('^FOO'))).to.equal('5e 46 4f 4f 5f');
      expect(hex(amlNameString('\\_SB_.PCI0'))).to.equal('5c 2e 5f 53 42 5f 50 43 49 30');
      expect(hex(amlNameString('\\A.B.C'))).to.equal('5c 2f 03 41 5f 5f 5f 42 5f 5f 5f 43 5f 5f 5f');
      expect(hex(amlNameString('\\'))).to.equal('5c 00');
      expect(() => amlNameString('1ABC')).to.throw(RangeError);
      expect(() => amlNameString('abcd')).to.throw(RangeError);
      expect(() => amlNameString('ABCDE')).to.throw(RangeError);
    });

    it('encodes EISA IDs as ASL EISAID() does', () => {
      expect(eisaId('PNP0A03')).to.equal(0x030ad041);
      expect(eisaId('PNP0501')).to.equal(0x0105d041);
      expect(hex(amlEisaId('PNP0A03'))).to.equal('0c 41 d0 0a 03');
      expect(() => eisaId('pnp0a03')).to.throw(RangeError);
    });

    it('encodes strings, names, packages, scopes and devices', () => {
      expect(hex(amlString('AB'))).to.equal('0d 41 42 00');
      expect(hex(amlName('_UID', amlInteger(0)))).to.equal('08 5f 55 49 44 00');
      expect(hex(amlPackage([]))).to.equal('12 02 00');
      expect(hex(amlScope('\\_SB_', []))).to.equal('10 06 5c 5f 53 42 5f');
      expect(hex(amlDevice('PCI0', []))).to.equal('5b 82 05 50 43 49 30');
      expect(() => amlPackage(Array.from({ length: 256 }, () => amlInteger(0)))).to.throw(RangeError);
      expect(() => amlString('é')).to.throw(RangeError);
    });

    it('encodes the PCI host bridge byte for byte', () => {
      const dev = [
        '08 5f 48 49 44 0c 41 d0 0a 03', // Name(_HID, EisaId("PNP0A03"))
        '08 5f 53 45 47 00', // Name(_SEG, Zero)
        '08 5f 42 42 4e 00', // Name(_BBN, Zero)
        '08 5f 55 49 44 00', // Name(_UID, Zero)
        // Name(_CRS, Buffer(84) {...}): 11, PkgLength 0x58 in two bytes, BufferSize 0x54
        '08 5f 43 52 53 11 48 05 0a 54',
        '88 0d 00 02 0c 00 0000 0000 ff00 0000 0001', // WordBusNumber 0-255, producer, fixed min/max
        '47 01 f8 0c f8 0c 01 08', // IO(Decode16, 0xCF8, 0xCF8, 1, 8)
        '88 0d 00 01 0c 03 0000 0000 f70c 0000 f80c', // WordIO 0-0xCF7
        '88 0d 00 01 0c 03 0000 000d ffff 0000 00f3', // WordIO 0xD00-0xFFFF
        '87 17 00 00 0c 01 00000000 000000c0 ffffbffe 00000000 0000c03e', // DWordMemory 0xC0000000-0xFEBFFFFF, RW, uncached
        '79 00', // end tag
      ]
        .join(' ')
        .replace(/([0-9a-f]{2})(?=[0-9a-f])/g, '$1 ');
      // Device: 5B 82 PkgLength(2 bytes + 4 name + 122 body = 0x80, as 40 08) "PCI0"; Scope: 10 PkgLength(2 + 5 name + 130 device = 0x89, as 49 08) \_SB_
      expect(hex(amlPciHostBridge())).to.equal(`10 49 08 5c 5f 53 42 5f 5b 82 40 08 50 43 49 30 ${dev}`);
      expect(pciRootResources()).to.have.length(84);
    });

    it('produces a long package whose multi-byte PkgLength decodes back', () => {
      const big = amlName('BIG_', amlPackage(Array.from({ length: 100 }, (_, i) => amlInteger(i + 2))));
      expect(decodeAml(big)).to.deep.equal([{ op: 'Name', name: 'BIG_', value: Array.from({ length: 100 }, (_, i) => BigInt(i + 2)) }]);
    });
  });

  describe('the table set', () => {
    let mem: GuestMemory;
    let tables: AcpiTables;
    before(() => {
      mem = memory();
      tables = buildAcpiTables(mem, { cpus: 4 });
    });

    it('puts the RSDP at 0xE0000 where the OS scans for it', () => {
      expect(tables.rsdp).to.equal(0xe0000);
      expect(scanForRsdp(mem)).to.equal(0xe0000);
      expect(tables.tables.map((t) => t.signature)).to.deep.equal(['RSD PTR ', 'XSDT', 'FACP', 'FACS', 'APIC', 'DSDT']);
      for (const t of tables.tables) {
        expect(t.address % (t.signature === 'FACS' ? 64 : 16), `${t.signature} alignment`).to.equal(0);
        expect(t.address + t.length).to.be.at.most(0xf0000);
      }
      for (let i = 1; i < tables.tables.length; i++) {
        const prev = tables.tables[i - 1]!;
        expect(tables.tables[i]!.address).to.be.at.least(prev.address + prev.length);
      }
    });

    it('RSDP: revision 2, XSDT only, both checksums valid', () => {
      const r = readRsdp(mem, tables.rsdp);
      const xsdt = tables.tables.find((t) => t.signature === 'XSDT')!;
      expect(r).to.deep.equal({
        signature: 'RSD PTR ',
        checksumOk: true,
        oemId: 'NODEVI',
        revision: 2,
        rsdtAddress: 0,
        length: 36,
        xsdtAddress: xsdt.address,
        extendedChecksumOk: true,
        reserved: [0, 0, 0],
      });
    });

    it('XSDT -> FADT, MADT; FADT -> DSDT, FACS; every header valid', () => {
      const r = readRsdp(mem, tables.rsdp);
      const xsdt = readSdt(mem, r.xsdtAddress);
      expect(xsdt.header).to.deep.equal({
        signature: 'XSDT',
        length: 36 + 16,
        revision: 1,
        checksumOk: true,
        oemId: 'NODEVI',
        oemTableId: 'NODEVISR',
        oemRevision: 1,
        creatorId: 'NDVR',
        creatorRevision: 1,
      });
      const [fadtAddr, madtAddr] = readXsdtEntries(xsdt);
      const fadt = readSdt(mem, fadtAddr!);
      const madt = readSdt(mem, madtAddr!);
      expect(fadt.header.signature).to.equal('FACP');
      expect(fadt.header.checksumOk).to.equal(true);
      expect(madt.header.signature).to.equal('APIC');
      expect(madt.header.checksumOk).to.equal(true);
      const f = readFadt(fadt);
      const dsdt = readSdt(mem, f.dsdt as number);
      expect(dsdt.header.signature).to.equal('DSDT');
      expect(dsdt.header.checksumOk).to.equal(true);
      expect(readFacs(mem, f.firmwareCtrl as number).signature).to.equal('FACS');
    });

    it('FADT: revision 6.0, 276 bytes, every field', () => {
      const fadtInfo = tables.tables.find((t) => t.signature === 'FACP')!;
      const fadt = readSdt(mem, fadtInfo.address);
      expect(fadt.header.revision).to.equal(6);
      expect(fadt.header.length).to.equal(276);
      const facs = tables.tables.find((t) => t.signature === 'FACS')!.address;
      const dsdt = tables.tables.find((t) => t.signature === 'DSDT')!.address;
      const none = { space: 0, bitWidth: 0, bitOffset: 0, accessSize: 0, address: 0 };
      expect(readFadt(fadt)).to.deep.equal({
        firmwareCtrl: facs,
        dsdt,
        reserved44: 0,
        preferredPmProfile: 0,
        sciInt: 9,
        smiCmd: 0,
        acpiEnable: 0,
        acpiDisable: 0,
        s4biosReq: 0,
        pstateCnt: 0,
        pm1aEvtBlk: 0x600,
        pm1bEvtBlk: 0,
        pm1aCntBlk: 0x604,
        pm1bCntBlk: 0,
        pm2CntBlk: 0,
        pmTmrBlk: 0x608,
        gpe0Blk: 0,
        gpe1Blk: 0,
        pm1EvtLen: 4,
        pm1CntLen: 2,
        pm2CntLen: 0,
        pmTmrLen: 4,
        gpe0BlkLen: 0,
        gpe1BlkLen: 0,
        gpe1Base: 0,
        cstCnt: 0,
        pLvl2Lat: 101,
        pLvl3Lat: 1001,
        flushSize: 0,
        flushStride: 0,
        dutyOffset: 0,
        dutyWidth: 0,
        dayAlrm: 0,
        monAlrm: 0,
        century: 0x32,
        // LEGACY_DEVICES | 8042 | VGA not present; MSI supported, CMOS RTC present
        iapcBootArch: 0x01 | 0x02 | 0x04,
        reserved111: 0,
        // WBINVD | PROC_C1 | SLP_BUTTON | FIX_RTC | RESET_REG_SUP; TMR_VAL_EXT and HW_REDUCED clear
        flags: (1 << 0) | (1 << 2) | (1 << 5) | (1 << 6) | (1 << 10),
        resetReg: { space: 1, bitWidth: 8, bitOffset: 0, accessSize: 1, address: 0xcf9 },
        resetValue: 0x06,
        armBootArch: 0,
        minorVersion: 0,
        xFirmwareCtrl: facs,
        xDsdt: dsdt,
        xPm1aEvtBlk: { space: 1, bitWidth: 32, bitOffset: 0, accessSize: 2, address: 0x600 },
        xPm1bEvtBlk: none,
        xPm1aCntBlk: { space: 1, bitWidth: 16, bitOffset: 0, accessSize: 2, address: 0x604 },
        xPm1bCntBlk: none,
        xPm2CntBlk: none,
        xPmTmrBlk: { space: 1, bitWidth: 32, bitOffset: 0, accessSize: 3, address: 0x608 },
        xGpe0Blk: none,
        xGpe1Blk: none,
        sleepControlReg: none,
        sleepStatusReg: none,
        hypervisorVendorId: 0,
      });
    });

    it('FACS: 64 bytes, version 2, no waking vector, free global lock', () => {
      const facs = tables.tables.find((t) => t.signature === 'FACS')!;
      expect(facs.length).to.equal(64);
      expect(readFacs(mem, facs.address)).to.deep.equal({
        signature: 'FACS',
        length: 64,
        hardwareSignature: 0,
        firmwareWakingVector: 0,
        globalLock: 0,
        flags: 0,
        xFirmwareWakingVector: 0,
        version: 2,
        ospmFlags: 0,
        rest: new Array(27).fill(0),
      });
    });

    it('MADT for 4 vCPUs: local APICs, IOAPIC, overrides, LINT1 NMI, PCAT_COMPAT', () => {
      const info = tables.tables.find((t) => t.signature === 'APIC')!;
      const sdt = readSdt(mem, info.address);
      expect(sdt.header.revision).to.equal(4);
      const m = readMadt(sdt);
      expect(m.lapicAddress).to.equal(0xfee00000);
      expect(m.flags).to.equal(1);
      const expected: MadtEntry[] = [
        { type: 0, uid: 0, apicId: 0, flags: 1 },
        { type: 0, uid: 1, apicId: 1, flags: 1 },
        { type: 0, uid: 2, apicId: 2, flags: 1 },
        { type: 0, uid: 3, apicId: 3, flags: 1 },
        { type: 1, id: 0, reserved: 0, address: 0xfec00000, gsiBase: 0 },
        { type: 2, bus: 0, source: 0, gsi: 2, flags: 0 },
        { type: 2, bus: 0, source: 9, gsi: 9, flags: 0x0d }, // SCI: active high (01), level (11 << 2)
        { type: 4, uid: 0xff, flags: 0, lint: 1 },
      ];
      expect(m.entries).to.deep.equal(expected);
    });

    it('DSDT: revision 2 with \\_S5_, \\_SB_.PCI0 and the pvpanic device \\_SB_.PEVT, decoded back', () => {
      const info = tables.tables.find((t) => t.signature === 'DSDT')!;
      const sdt = readSdt(mem, info.address);
      expect(sdt.header.revision).to.equal(2);
      const aml = sdt.bytes.subarray(36);
      expect(hex(aml.subarray(0, 13))).to.equal('08 5c 5f 53 35 5f 12 06 02 0a 05 0a 05');
      expect(decodeAml(aml)).to.deep.equal([
        { op: 'Name', name: '\\_S5_', value: [5n, 5n] },
        {
          op: 'Scope',
          name: '\\_SB_',
          terms: [
            {
              op: 'Device',
              name: 'PCI0',
              terms: [
                { op: 'Name', name: '_HID', value: 0x030ad041n },
                { op: 'Name', name: '_SEG', value: 0n },
                { op: 'Name', name: '_BBN', value: 0n },
                { op: 'Name', name: '_UID', value: 0n },
                { op: 'Name', name: '_CRS', value: Uint8Array.from(pciRootResources()) },
              ],
            },
          ],
        },
        {
          op: 'Scope',
          name: '\\_SB_',
          terms: [
            {
              op: 'Device',
              name: 'PEVT',
              terms: [
                { op: 'Name', name: '_HID', value: 'QEMU0001' },
                // I/O port descriptor: 16-bit decode, 0x505-0x505, alignment 1, length 1; end tag.
                { op: 'Name', name: '_CRS', value: Uint8Array.from([0x47, 0x01, 0x05, 0x05, 0x05, 0x05, 0x01, 0x01, 0x79, 0x00]) },
                { op: 'Name', name: '_STA', value: 0x0bn },
              ],
            },
          ],
        },
      ]);
    });

    it('writes exactly its image and nothing outside it', () => {
      expect(Array.from(mem.read(tables.base, tables.image.length))).to.deep.equal(Array.from(tables.image));
      expect(mem.readU8(tables.end)).to.equal(0);
      expect(tables.base).to.equal(0xe0000);
    });
  });

  describe('MADT for 300 vCPUs', () => {
    const mem = memory();
    const tables = buildAcpiTables(mem, { cpus: 300 });
    const m = readMadt(readSdt(mem, tables.tables.find((t) => t.signature === 'APIC')!.address));

    it('uses local APIC entries below 255 and x2APIC entries from 255', () => {
      const xapic = m.entries.filter((e) => e.type === 0);
      const x2apic = m.entries.filter((e) => e.type === 9);
      expect(xapic).to.deep.equal(Array.from({ length: 255 }, (_, i) => ({ type: 0, uid: i, apicId: i, flags: 1 })));
      expect(x2apic).to.deep.equal(Array.from({ length: 45 }, (_, i) => ({ type: 9, reserved: 0, x2apicId: 255 + i, flags: 1, uid: 255 + i })));
    });

    it('adds an x2APIC NMI entry for all x2APIC processors', () => {
      expect(m.entries.filter((e) => e.type === 4)).to.deep.equal([{ type: 4, uid: 0xff, flags: 0, lint: 1 }]);
      expect(m.entries.filter((e) => e.type === 10)).to.deep.equal([{ type: 10, flags: 0, uid: 0xffffffff, lint: 1, reserved: [0, 0, 0] }]);
    });

    it('still fits below 0xF0000 with valid checksums', () => {
      expect(tables.end).to.be.at.most(0xf0000);
      for (const t of tables.tables.filter((x) => x.signature !== 'FACS' && x.signature !== 'RSD PTR ')) {
        expect(sum8(mem.read(t.address, t.length)), t.signature).to.equal(0);
      }
    });
  });

  describe('MADT with the APIC IDs of a topology', () => {
    const madtOf = (config: { cpus: number; apicIds?: number[] }): MadtEntry[] => {
      const mem = memory();
      const tables = buildAcpiTables(mem, config);
      return readMadt(readSdt(mem, tables.tables.find((t) => t.signature === 'APIC')!.address)).entries;
    };

    it('gives vCPU i its APIC ID from the topology and processor UID i, the BSP first (gaps: two sockets of three cores)', () => {
      const cpus = madtOf({ cpus: 6, apicIds: [0, 1, 2, 4, 5, 6] }).filter((e) => e.type === 0);
      expect(cpus).to.deep.equal([0, 1, 2, 4, 5, 6].map((apicId, uid) => ({ type: 0, uid, apicId, flags: 1 })));
    });

    it('uses x2APIC entries, and the x2APIC NMI entry, for APIC IDs from 255 even with fewer than 255 vCPUs', () => {
      const ids = Array.from({ length: 200 }, (_, i) => (i < 100 ? i : 128 + i)); // 0-99, then 228-327
      const entries = madtOf({ cpus: 200, apicIds: ids });
      expect(entries.filter((e) => e.type === 0).map((e) => (e as { apicId: number }).apicId)).to.deep.equal(ids.filter((id) => id < 255));
      expect(entries.filter((e) => e.type === 9)).to.deep.equal(ids.flatMap((id, uid) => (id >= 255 ? [{ type: 9, reserved: 0, x2apicId: id, flags: 1, uid }] : [])));
      expect(entries.filter((e) => e.type === 10)).to.have.length(1);
    });

    it('keeps xAPIC IDs 0-254 without an x2APIC NMI entry', () => {
      expect(madtOf({ cpus: 3, apicIds: [0, 8, 254] }).filter((e) => e.type === 10)).to.deep.equal([]);
    });

    it('refuses a list of APIC IDs that does not match the vCPUs', () => {
      expect(() => madtOf({ cpus: 3, apicIds: [0, 1] })).to.throw(RangeError, /2 APIC IDs given for 3 CPUs/);
      expect(() => madtOf({ cpus: 2, apicIds: [0, 0] })).to.throw(RangeError, /duplicate APIC ID 0/);
    });
  });

  describe('configuration', () => {
    it('follows the IAPC_BOOT_ARCH options', () => {
      expect(iapcBootArch({})).to.equal(0x07);
      expect(iapcBootArch({ i8042: false, vga: true, msi: false, cmosRtc: false })).to.equal(0x01 | 0x08 | 0x20);
    });

    it('reports no century byte without an RTC', () => {
      const mem = memory();
      const t = buildAcpiTables(mem, { cpus: 1, cmosRtc: false });
      const f = readFadt(readSdt(mem, t.tables[2]!.address));
      expect(f.century).to.equal(0);
      expect(f.iapcBootArch).to.equal(0x01 | 0x02 | 0x04 | 0x20);
    });

    it('drops RESET_REG_SUP without a reset register', () => {
      const t = layoutAcpiTables({ cpus: 1, reset: null });
      const fadt = t.image.subarray(t.tables[2]!.address - t.base);
      const v = new DataView(fadt.buffer, fadt.byteOffset);
      expect(v.getUint32(112, true) & (1 << 10)).to.equal(0);
      expect(fadt.subarray(116, 129).every((b) => b === 0)).to.equal(true);
    });

    it('omits PCI0 and pvpanic when asked and honours another SCI, PM base and S5 type', () => {
      const mem = memory();
      const t = buildAcpiTables(mem, { cpus: 2, pciHostBridge: false, pvpanicPort: null, sciIrq: 10, pmBase: 0xb000, s5SlpTyp: 7 });
      const f = readFadt(readSdt(mem, t.tables[2]!.address));
      expect(f.sciInt).to.equal(10);
      expect(f.pm1aEvtBlk).to.equal(0xb000);
      expect(f.pm1aCntBlk).to.equal(0xb004);
      expect(f.pmTmrBlk).to.equal(0xb008);
      const dsdt = readSdt(mem, f.dsdt as number);
      expect(decodeAml(dsdt.bytes.subarray(36))).to.deep.equal([{ op: 'Name', name: '\\_S5_', value: [7n, 7n] }]);
      const madt = readMadt(readSdt(mem, t.tables[4]!.address));
      expect(madt.entries.filter((e) => e.type === 2)).to.deep.equal([
        { type: 2, bus: 0, source: 0, gsi: 2, flags: 0 },
        { type: 2, bus: 0, source: 10, gsi: 10, flags: 0x0d },
      ]);
    });

    it('places the tables at another base and refuses a region too small', () => {
      const t = layoutAcpiTables({ cpus: 1, base: 0xe8000 });
      expect(t.rsdp).to.equal(0xe8000);
      expect(() => layoutAcpiTables({ cpus: 8, limit: 0xe0200 })).to.throw(RangeError, /past the region's end/);
      expect(() => layoutAcpiTables({ cpus: 1, base: 0xe0008 })).to.throw(RangeError, /aligned/);
    });

    it('builds any SDT with a valid checksum and length', () => {
      const t = buildSdt('TEST', 3, Uint8Array.of(1, 2, 3));
      expect(t.length).to.equal(39);
      expect(sum8(t)).to.equal(0);
      expect(new DataView(t.buffer).getUint32(4, true)).to.equal(39);
      expect(() => buildSdt('TOOLONG', 1, new Uint8Array(0))).to.throw(RangeError);
      expect(buildDsdt({ s5SlpTyp: 5, pciHostBridge: true }).length).to.equal(36 + 13 + amlPciHostBridge().length);
    });
  });
});
