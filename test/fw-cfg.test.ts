import { expect } from 'chai';
import { FwCfg, FwCfgDma, FwCfgKey, FwCfgReg, FW_CFG_DMA_SIGNATURE } from '../src/devices/fw-cfg.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { FwCfgBuilder } from '../src/boot/fw-cfg-items.js';
import { e820File, firmwareItems, virtioBlkBootPath, type FirmwareConfig } from '../src/boot/firmware-config.js';
import { FwCfgGuest } from './helpers/fw-cfg-guest.js';

const MiB = 1024 * 1024;
const config: FirmwareConfig = {
  ramSize: 256 * MiB,
  cpus: 2,
  acpi: { cpus: 2 },
  bootOrder: [virtioBlkBootPath(2), virtioBlkBootPath(1)],
  serialConsole: 0x3f8,
  bootFailWaitMs: 0,
};
const le = (b: Uint8Array): number => b.reduceRight((v, x) => v * 256 + x, 0);
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('fw_cfg (QEMU firmware configuration device)', () => {
  describe('numbered items through the selector and data ports', () => {
    const g = new FwCfgGuest(firmwareItems(config));
    const item = (key: number, n: number): Uint8Array => {
      g.select(key);
      return g.readPort(n);
    };
    it('answers the signature "QEMU" at key 0', () => expect(text(item(FwCfgKey.Signature, 4))).to.equal('QEMU'));
    it('reports the traditional and DMA interfaces in FW_CFG_ID', () => expect(le(item(FwCfgKey.Id, 4))).to.equal(3));
    it('reports the CPU count and maximum as 16-bit values', () => {
      expect(le(item(FwCfgKey.NbCpus, 2))).to.equal(2);
      expect(le(item(FwCfgKey.MaxCpus, 2))).to.equal(2);
    });
    it('reports the RAM size as a 64-bit value', () => expect(le(item(FwCfgKey.RamSize, 8))).to.equal(256 * MiB));
    it('says there is no graphics, no boot menu and that IRQ 0 is overridden', () => {
      expect(le(item(FwCfgKey.NoGraphic, 2))).to.equal(1);
      expect(le(item(FwCfgKey.BootMenu, 2))).to.equal(0);
      expect(le(item(FwCfgKey.Irq0Override, 1))).to.equal(1);
    });
    it('gives a zero UUID and a NUMA item with no nodes and a node word per CPU', () => {
      expect([...item(FwCfgKey.Uuid, 16)].every((b) => b === 0)).to.equal(true);
      g.select(FwCfgKey.Numa);
      expect(g.readPort(8 * 3 + 4).slice(0, 24).every((b) => b === 0)).to.equal(true);
    });
    it('reads 0 past the end of an item (a partial read returns what there is, then zeros)', () => {
      g.select(FwCfgKey.Signature);
      expect(text(g.readPort(2))).to.equal('QE');
      expect([...g.readPort(4)]).to.deep.equal([0x4d, 0x55, 0, 0]);
    });
    it('starts again from offset 0 when an item is selected again', () => {
      g.select(FwCfgKey.Signature);
      g.readPort(3);
      g.select(FwCfgKey.Signature);
      expect(text(g.readPort(4))).to.equal('QEMU');
    });
    it('reads 0 from a key nobody defined', () => expect([...item(0x1234, 4)]).to.deep.equal([0, 0, 0, 0]));
    it('selects the same item with the write-channel bit (14) set, but not with the architecture bit (15)', () => {
      expect(le(item(0x4000 | FwCfgKey.NbCpus, 2))).to.equal(2);
      expect(le(item(0x8000 | FwCfgKey.NbCpus, 2))).to.equal(0);
      expect(le(item(0x4000 | FwCfgKey.Irq0Override, 1))).to.equal(1);
    });
    it('ignores writes to the data port', () => {
      g.select(FwCfgKey.Signature);
      g.dev.write(FwCfgReg.Data, 1, 0x41);
      g.select(FwCfgKey.Signature);
      expect(text(g.readPort(4))).to.equal('QEMU');
    });
    it('returns "QEMU CFG" from the DMA address register', () => {
      let sig = 0n;
      for (let i = 0; i < 8; i++) sig = (sig << 8n) | BigInt(g.dev.read(FwCfgReg.DmaHigh + i, 1));
      expect(sig).to.equal(FW_CFG_DMA_SIGNATURE);
      // A 32-bit IN returns the same bytes in port order.
      expect(g.dev.read(FwCfgReg.DmaHigh, 4)).to.equal(0x554d4551);
    });
  });

  describe('the file directory', () => {
    const g = new FwCfgGuest(firmwareItems(config));
    const files = g.files();
    it('lists every file the firmware needs, sorted by name, from key 0x20', () => {
      expect([...files.keys()]).to.deep.equal([...files.keys()].sort());
      expect([...files.keys()]).to.include.members(['bootorder', 'etc/acpi/rsdp', 'etc/acpi/tables', 'etc/boot-fail-wait', 'etc/e820', 'etc/sercon-port', 'etc/table-loader']);
      expect([...files.values()].map((f) => f.select)).to.deep.equal([...files.keys()].map((_, i) => 0x20 + i));
    });
    it('gives each file its size and bytes', () => {
      const read = (name: string): Uint8Array => {
        g.select(files.get(name)!.select);
        return g.readPort(files.get(name)!.size);
      };
      expect(le(read('etc/sercon-port'))).to.equal(0x3f8);
      expect(le(read('etc/boot-fail-wait'))).to.equal(0);
      expect(text(read('bootorder'))).to.equal('/pci@i0cf8/scsi@2/disk@0,0\n/pci@i0cf8/scsi@1/disk@0,0\n\0');
      expect([...read('etc/e820')]).to.deep.equal([...e820File(256 * MiB)]);
    });
    it('lays out etc/e820 as RAM ranges: below the PCI hole, and above 4 GiB for the rest', () => {
      const v = new DataView(e820File(4096 * MiB).buffer);
      expect(v.byteLength).to.equal(40);
      expect([Number(v.getBigUint64(0, true)), Number(v.getBigUint64(8, true)), v.getUint32(16, true)]).to.deep.equal([0, 3072 * MiB, 1]);
      expect([Number(v.getBigUint64(20, true)), Number(v.getBigUint64(28, true)), v.getUint32(36, true)]).to.deep.equal([4096 * MiB, 1024 * MiB, 1]);
    });
    it('leaves out bootorder and the serial console when there are none', () => {
      const bare = new FwCfgGuest(firmwareItems({ ...config, bootOrder: [], serialConsole: null })).files();
      expect(bare.has('bootorder')).to.equal(false);
      expect(bare.has('etc/sercon-port')).to.equal(false);
    });
    it('refuses file names that do not fit the directory, and duplicates', () => {
      expect(() => new FwCfgBuilder().file('x'.repeat(56), new Uint8Array(1))).to.throw(/1-55 printable/);
      expect(() => new FwCfgBuilder().file('a', new Uint8Array(1)).file('a', new Uint8Array(1))).to.throw(/twice/);
      expect(() => new FwCfgBuilder().key(0x20, new Uint8Array(1))).to.throw(/file directory/);
    });
  });

  describe('DMA', () => {
    const items = new FwCfgBuilder().key(0x10, Uint8Array.from({ length: 100 }, (_, i) => i)).build();
    it('selects and reads an item into guest RAM, and writes back control 0', () => {
      const g = new FwCfgGuest(items);
      expect(g.dma((0x10 << 16) | FwCfgDma.Select | FwCfgDma.Read, 10, 0x5000)).to.equal(0);
      expect([...g.mem.read(0x5000, 10)]).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });
    it('continues from the current offset, after port reads and skips', () => {
      const g = new FwCfgGuest(items);
      g.select(0x10);
      g.readPort(5);
      expect(g.dma(FwCfgDma.Skip, 10, 0)).to.equal(0);
      expect(g.dma(FwCfgDma.Read, 3, 0x5000)).to.equal(0);
      expect([...g.mem.read(0x5000, 3)]).to.deep.equal([15, 16, 17]);
    });
    it('fills with zeros past the end of the item', () => {
      const g = new FwCfgGuest(items);
      g.mem.fill(0x5000, 8, 0xaa);
      expect(g.dma((0x10 << 16) | FwCfgDma.Select | FwCfgDma.Skip, 96, 0)).to.equal(0);
      expect(g.dma(FwCfgDma.Read, 8, 0x5000)).to.equal(0);
      expect([...g.mem.read(0x5000, 8)]).to.deep.equal([96, 97, 98, 99, 0, 0, 0, 0]);
    });
    it('sets the error bit and writes nothing when the buffer is not guest RAM', () => {
      const g = new FwCfgGuest(items);
      expect(g.dma((0x10 << 16) | FwCfgDma.Select | FwCfgDma.Read, 16, 16 * MiB - 8)).to.equal(FwCfgDma.Error);
      expect(g.dma((0x10 << 16) | FwCfgDma.Select | FwCfgDma.Read, 16, 0xfee00000)).to.equal(FwCfgDma.Error);
      expect(g.dma((0x10 << 16) | FwCfgDma.Select | FwCfgDma.Read, 16, 1n << 40n)).to.equal(FwCfgDma.Error);
      expect([...g.mem.read(16 * MiB - 8, 8)].every((b) => b === 0)).to.equal(true);
    });
    it('rejects writes (every item is read-only) with the error bit', () => {
      const g = new FwCfgGuest(items);
      expect(g.dma((0x10 << 16) | FwCfgDma.Select | FwCfgDma.Write, 4, 0x5000)).to.equal(FwCfgDma.Error);
      g.select(0x10);
      expect([...g.readPort(2)]).to.deep.equal([0, 1]);
    });
    it('ignores a descriptor that is not in guest RAM, and says so', () => {
      const g = new FwCfgGuest(items);
      expect(g.dma(FwCfgDma.Read, 4, 0x5000, 0xfec00000)).to.equal(-1);
      expect(g.logs.join('\n')).to.match(/descriptor at 0xfec00000 is not guest RAM/);
    });
    it('copies across the boundary between two pieces of guest RAM', () => {
      const mem = new GuestMemory([
        { gpa: 0x7fff0000, buffer: new SharedArrayBuffer(0x10000) },
        { gpa: 0x80000000, buffer: new SharedArrayBuffer(0x10000) },
      ]);
      const dev = new FwCfg(FwCfg.allocate(items), mem);
      const desc = new DataView(new ArrayBuffer(16));
      desc.setUint32(0, (0x10 << 16) | FwCfgDma.Select | FwCfgDma.Read);
      desc.setUint32(4, 32);
      desc.setBigUint64(8, 0x7ffffff0n);
      mem.write(0x7fff0000, new Uint8Array(desc.buffer));
      dev.write(FwCfgReg.DmaLow, 4, 0x0000ff7f); // 0x7fff0000, big-endian
      expect(mem.readU32(0x7fff0000)).to.equal(0);
      expect([mem.readU8(0x7fffffff), mem.readU8(0x80000000), mem.readU8(0x8000000f)]).to.deep.equal([15, 16, 31]);
    });
    it('reads a huge length in pieces without allocating it', () => {
      const g = new FwCfgGuest(items);
      expect(g.dma((0x10 << 16) | FwCfgDma.Select | FwCfgDma.Read, 4 * MiB, 0x100000)).to.equal(0);
      expect(g.mem.readU8(0x100000 + 99)).to.equal(99);
      expect(g.mem.readU8(0x100000 + 100)).to.equal(0);
    });
  });
});

describe('fw_cfg in a snapshot', () => {
  it('keeps the selected item and the read offset: a restored device goes on where the firmware left off', () => {
    const items = firmwareItems(config);
    const mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(MiB) }]);
    const reference = new FwCfg(FwCfg.allocate(items), mem);
    reference.write(FwCfgReg.Selector, 2, FwCfgKey.FileDir);
    const whole = Uint8Array.from({ length: 4 + 64 }, () => reference.read(FwCfgReg.Data, 1));
    const state = FwCfg.allocate(items);
    const before = new FwCfg(state, mem);
    before.write(FwCfgReg.Selector, 2, FwCfgKey.FileDir);
    const head = Uint8Array.from({ length: 10 }, () => before.read(FwCfgReg.Data, 1));
    const restored = FwCfg.allocate(firmwareItems(config));
    FwCfg.load(restored, FwCfg.save(state));
    const after = new FwCfg(restored, mem);
    const rest = Uint8Array.from({ length: whole.length - 10 }, () => after.read(FwCfgReg.Data, 1));
    expect([...head, ...rest]).to.deep.equal([...whole]);
  });
});
