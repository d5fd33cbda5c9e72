import { expect } from 'chai';
import { decodeLoader, encodeLoader, LOADER_ENTRY_SIZE, type LoaderEntry } from '../src/boot/acpi/table-loader.js';
import { buildLoaderTables } from '../src/boot/acpi/loader-tables.js';
import { firmwareItems } from '../src/boot/firmware-config.js';
import { FwCfgGuest } from './helpers/fw-cfg-guest.js';
import { readFadt, readFacs, readMadt, readRsdp, readSdt, readXsdtEntries, scanForRsdp, sum8 } from './helpers/boot-tables.js';

const MiB = 1024 * 1024;

describe('ACPI tables through the linker/loader (etc/table-loader)', () => {
  describe('the script', () => {
    const entries: LoaderEntry[] = [
      { command: 'allocate', file: 'etc/acpi/tables', align: 64, zone: 'high' },
      { command: 'allocate', file: 'etc/acpi/rsdp', align: 16, zone: 'fseg' },
      { command: 'add-pointer', dest: 'etc/acpi/rsdp', src: 'etc/acpi/tables', offset: 24, size: 8 },
      { command: 'add-checksum', file: 'etc/acpi/rsdp', offset: 8, start: 0, length: 20 },
    ];
    it('encodes 128-byte little-endian commands that decode to the same entries', () => {
      const script = encodeLoader(entries);
      expect(script.length).to.equal(4 * LOADER_ENTRY_SIZE);
      expect(new DataView(script.buffer).getUint32(2 * LOADER_ENTRY_SIZE, true)).to.equal(2);
      expect(decodeLoader(script)).to.deep.equal(entries);
    });
    it('decodes commands it does not know as null (firmware skips them)', () => {
      const script = encodeLoader(entries.slice(0, 1));
      const unknown = new Uint8Array(2 * LOADER_ENTRY_SIZE);
      unknown.set(script);
      unknown[LOADER_ENTRY_SIZE] = 9;
      expect(decodeLoader(unknown)[1]).to.equal(null);
    });
    it('refuses names longer than 55 characters and alignments that are not powers of two', () => {
      expect(() => encodeLoader([{ command: 'allocate', file: 'x'.repeat(56), align: 16, zone: 'high' }])).to.throw(/longer than 55/);
      expect(() => encodeLoader([{ command: 'allocate', file: 'x', align: 24, zone: 'high' }])).to.throw(/power of two/);
      expect(() => decodeLoader(new Uint8Array(100))).to.throw(/whole number/);
    });
  });

  describe('applied the way SeaBIOS applies it', () => {
    const g = new FwCfgGuest(firmwareItems({ ramSize: 256 * MiB, cpus: 2, acpi: { cpus: 2 }, bootOrder: [], serialConsole: 0x3f8, bootFailWaitMs: 0 }));
    const at = g.runTableLoader(0xf00000);
    const rsdpAt = at.get('etc/acpi/rsdp')!;
    const tablesAt = at.get('etc/acpi/tables')!;
    const rsdp = readRsdp(g.mem, rsdpAt);
    it('puts the RSDP in the F segment, where an OS scans for it, with both checksums valid', () => {
      expect(rsdpAt).to.be.within(0xf0000, 0xfffff);
      expect(scanForRsdp(g.mem)).to.equal(rsdpAt);
      expect(rsdp.checksumOk && rsdp.extendedChecksumOk).to.equal(true);
      expect(rsdp.revision).to.equal(2);
    });
    it('points the RSDP at the XSDT inside the relocated tables', () => {
      const { offsets } = buildLoaderTables({ cpus: 2 });
      expect(rsdp.xsdtAddress).to.equal(tablesAt + offsets.XSDT);
      expect(tablesAt % 64).to.equal(0);
    });
    const xsdt = readSdt(g.mem, rsdp.xsdtAddress);
    const tables = readXsdtEntries(xsdt).map((a) => readSdt(g.mem, a));
    it('gives every table a valid checksum after its pointers were patched', () => {
      expect(xsdt.header.checksumOk).to.equal(true);
      expect(tables.map((t) => [t.header.signature, t.header.checksumOk])).to.deep.equal([
        ['FACP', true],
        ['APIC', true],
      ]);
    });
    it('points the FADT at the relocated DSDT and FACS (32- and 64-bit fields alike)', () => {
      const fadt = readFadt(tables[0]!);
      const dsdt = readSdt(g.mem, fadt.dsdt as number);
      expect(dsdt.header.signature).to.equal('DSDT');
      expect(dsdt.header.checksumOk).to.equal(true);
      expect(fadt.xDsdt).to.equal(fadt.dsdt);
      expect(fadt.xFirmwareCtrl).to.equal(fadt.firmwareCtrl);
      expect((fadt.firmwareCtrl as number) % 64).to.equal(0);
      expect(readFacs(g.mem, fadt.firmwareCtrl as number).signature).to.equal('FACS');
    });
    it('lists both CPUs in the MADT', () => {
      const cpus = readMadt(tables[1]!).entries.filter((e) => e.type === 0);
      expect(cpus.map((c) => c.type === 0 && [c.apicId, c.flags & 1])).to.deep.equal([
        [0, 1],
        [1, 1],
      ]);
    });
    it("lists the topology's APIC IDs in the MADT", () => {
      const h = new FwCfgGuest(firmwareItems({ ramSize: 256 * MiB, cpus: 2, acpi: { cpus: 2, apicIds: [0, 4] }, bootOrder: [], serialConsole: null, bootFailWaitMs: 0 }));
      const r = readRsdp(h.mem, h.runTableLoader().get('etc/acpi/rsdp')!);
      const madt = readXsdtEntries(readSdt(h.mem, r.xsdtAddress)).map((a) => readSdt(h.mem, a)).find((t) => t.header.signature === 'APIC')!;
      expect(readMadt(madt).entries.flatMap((e) => (e.type === 0 ? [e.apicId] : []))).to.deep.equal([0, 4]);
    });
    it('hands over tables that are correct wherever the firmware puts them', () => {
      const h = new FwCfgGuest(firmwareItems({ ramSize: 256 * MiB, cpus: 2, acpi: { cpus: 2 }, bootOrder: [], serialConsole: null, bootFailWaitMs: 0 }));
      const moved = h.runTableLoader(0x7ff000);
      const r = readRsdp(h.mem, moved.get('etc/acpi/rsdp')!);
      expect(moved.get('etc/acpi/tables')).to.not.equal(tablesAt);
      expect(readSdt(h.mem, r.xsdtAddress).header.checksumOk).to.equal(true);
      expect(sum8(h.mem.read(r.xsdtAddress, readSdt(h.mem, r.xsdtAddress).header.length))).to.equal(0);
    });
  });
});
