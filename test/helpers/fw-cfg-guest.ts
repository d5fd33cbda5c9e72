import { FwCfg, FwCfgDma, FwCfgKey, FwCfgReg, FW_CFG_FILE_ENTRY_SIZE, type FwCfgItem } from '../../src/devices/fw-cfg.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { decodeLoader } from '../../src/boot/acpi/table-loader.js';

/** What firmware does with fw_cfg, over the device model itself (port accesses and DMA descriptors in guest RAM). */
export class FwCfgGuest {
  readonly mem: GuestMemory;
  readonly dev: FwCfg;
  /** Where descriptors and bounce buffers go. */
  readonly scratch = 0x1000;
  logs: string[] = [];

  constructor(items: readonly FwCfgItem[], ramBytes = 16 * 1024 * 1024) {
    this.mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(ramBytes) }]);
    this.dev = new FwCfg(FwCfg.allocate(items), this.mem, { log: (_l, m) => this.logs.push(m) });
  }

  select(key: number): void {
    this.dev.write(FwCfgReg.Selector, 2, key);
  }

  /** `n` bytes through the data port. */
  readPort(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.dev.read(FwCfgReg.Data, 1));
  }

  /** Writes a descriptor at `at` and starts it (high half, then low half, big-endian as the spec says); returns the control word written back. */
  dma(control: number, length: number, address: number | bigint, at = this.scratch): number {
    const d = new DataView(new ArrayBuffer(16));
    d.setUint32(0, control >>> 0);
    d.setUint32(4, length >>> 0);
    d.setBigUint64(8, BigInt(address));
    if (this.mem.contains(at, 16)) this.mem.write(at, new Uint8Array(d.buffer));
    const swap = (v: number): number => new DataView(Uint32Array.of(v).buffer).getUint32(0, false);
    const addr = BigInt(at);
    this.dev.write(FwCfgReg.DmaHigh, 4, swap(Number(addr >> 32n)));
    this.dev.write(FwCfgReg.DmaLow, 4, swap(Number(addr & 0xffffffffn)));
    return this.mem.contains(at, 16) ? new DataView(this.mem.read(at, 4).buffer).getUint32(0, false) : -1;
  }

  /** The file directory: name -> { select, size }. */
  files(): Map<string, { select: number; size: number }> {
    this.select(FwCfgKey.FileDir);
    const count = new DataView(this.readPort(4).buffer).getUint32(0, false);
    const out = new Map<string, { select: number; size: number }>();
    for (let i = 0; i < count; i++) {
      const e = this.readPort(FW_CFG_FILE_ENTRY_SIZE);
      const v = new DataView(e.buffer);
      const name = new TextDecoder().decode(e.subarray(8, 8 + e.subarray(8).indexOf(0)));
      out.set(name, { size: v.getUint32(0), select: v.getUint16(4) });
    }
    return out;
  }

  /** A whole file, read by DMA into guest RAM at `at` (as SeaBIOS's qemu_cfg_read_entry does). */
  readFile(name: string, at: number): Uint8Array {
    const f = this.files().get(name);
    if (!f) throw new Error(`no fw_cfg file ${name}`);
    const status = this.dma((f.select << 16) | FwCfgDma.Select | FwCfgDma.Read, f.size, at, this.scratch);
    if (status !== 0) throw new Error(`DMA of ${name} failed (control ${status})`);
    return this.mem.read(at, f.size);
  }

  /**
   * Runs etc/table-loader as SeaBIOS's romfile_loader_execute does: each
   * ALLOCATE reads the file into its zone (the F segment from 0xF0000, high
   * memory downwards from `highTop`), ADD_POINTER adds the source file's
   * address, ADD_CHECKSUM subtracts the range's sum. Returns where each file went.
   */
  runTableLoader(highTop = 0xf00000): Map<string, number> {
    const script = this.readFile('etc/table-loader', 0x200000);
    const placed = new Map<string, { at: number; size: number }>();
    let fseg = 0xf0000;
    let high = highTop;
    for (const e of decodeLoader(script)) {
      if (!e) continue;
      if (e.command === 'allocate') {
        const size = this.files().get(e.file)!.size;
        let at: number;
        if (e.zone === 'fseg') {
          at = Math.ceil(fseg / e.align) * e.align;
          fseg = at + size;
        } else {
          at = Math.floor((high - size) / e.align) * e.align;
          high = at;
        }
        this.readFile(e.file, at);
        placed.set(e.file, { at, size });
      } else if (e.command === 'add-pointer') {
        const dest = placed.get(e.dest)!;
        const src = placed.get(e.src)!;
        if (e.offset + e.size > dest.size) throw new Error(`pointer at ${e.offset} is outside ${e.dest}`);
        let v = 0n;
        for (let i = e.size - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.mem.readU8(dest.at + e.offset + i));
        v += BigInt(src.at);
        for (let i = 0; i < e.size; i++) this.mem.writeU8(dest.at + e.offset + i, Number((v >> BigInt(8 * i)) & 0xffn));
      } else {
        const f = placed.get(e.file)!;
        if (e.start + e.length > f.size || e.offset >= f.size) throw new Error(`checksum range outside ${e.file}`);
        let sum = 0;
        for (let i = 0; i < e.length; i++) sum += this.mem.readU8(f.at + e.start + i);
        this.mem.writeU8(f.at + e.offset, (this.mem.readU8(f.at + e.offset) - sum) & 0xff);
      }
    }
    return new Map([...placed].map(([k, v]) => [k, v.at]));
  }
}
