/**
 * The contents of the fw_cfg device (src/devices/fw-cfg.ts): numbered
 * items, and named files at keys from 0x20 listed in the file directory
 * (key 0x19), as QEMU's docs/specs/fw_cfg.rst describes them. The
 * directory is sorted by name, as QEMU keeps it.
 */
import { FwCfgFeature, FwCfgKey, FW_CFG_FILE_ENTRY_SIZE, FW_CFG_MAX_NAME, type FwCfgItem } from '../devices/fw-cfg.js';

export class FwCfgBuilder {
  private readonly numbered = new Map<number, Uint8Array>();
  private readonly files = new Map<string, Uint8Array>();

  constructor(options: { dma?: boolean } = {}) {
    this.key(FwCfgKey.Signature, new TextEncoder().encode('QEMU'));
    this.key(FwCfgKey.Id, u32le(FwCfgFeature.Traditional | (options.dma === false ? 0 : FwCfgFeature.Dma)));
  }

  /** A numbered item below 0x20 (or an architecture item from 0x8000). */
  key(key: number, data: Uint8Array): this {
    if (key === FwCfgKey.FileDir || (key >= FwCfgKey.FileFirst && key < 0x8000)) throw new RangeError(`fw_cfg key 0x${key.toString(16)} belongs to the file directory`);
    this.numbered.set(key, data);
    return this;
  }

  /** A named file; names are at most 55 bytes of ASCII. */
  file(name: string, data: Uint8Array): this {
    if (!/^[\x21-\x7e]+$/.test(name) || name.length > FW_CFG_MAX_NAME) throw new RangeError(`fw_cfg file name "${name}" must be 1-${FW_CFG_MAX_NAME} printable ASCII characters`);
    if (this.files.has(name)) throw new RangeError(`fw_cfg file "${name}" is added twice`);
    this.files.set(name, data);
    return this;
  }

  /** The items, the file directory included; each file's key is its place in name order from 0x20. */
  build(): FwCfgItem[] {
    const names = [...this.files.keys()].sort();
    const dir = new Uint8Array(4 + names.length * FW_CFG_FILE_ENTRY_SIZE);
    const v = new DataView(dir.buffer);
    v.setUint32(0, names.length);
    const items: FwCfgItem[] = [...this.numbered].map(([key, data]) => ({ key, data }));
    names.forEach((name, i) => {
      const key = FwCfgKey.FileFirst + i;
      const data = this.files.get(name)!;
      const at = 4 + i * FW_CFG_FILE_ENTRY_SIZE;
      v.setUint32(at, data.length);
      v.setUint16(at + 4, key);
      dir.set(new TextEncoder().encode(name), at + 8);
      items.push({ key, data });
    });
    items.push({ key: FwCfgKey.FileDir, data: dir });
    return items;
  }
}

export function u16le(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, v, true);
  return b;
}

export function u32le(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

export function u64le(v: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
}
