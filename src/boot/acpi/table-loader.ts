/**
 * QEMU's ACPI linker/loader script ("etc/table-loader", hw/acpi/
 * bios-linker-loader.c): 128-byte commands that tell the firmware to
 * allocate fw_cfg files in its memory, patch pointers between them once it
 * knows where they went, and recompute checksums over the patched bytes.
 * SeaBIOS (src/fw/romfile_loader.c) and OVMF carry it out, so the OS gets
 * tables wherever the firmware put them instead of where the VMM guessed.
 */
import { FW_CFG_MAX_NAME } from '../../devices/fw-cfg.js';

export const LOADER_ENTRY_SIZE = 128;
/** File-name fields are 56 bytes, NUL-terminated. */
export const LOADER_FILE_NAME_SIZE = FW_CFG_MAX_NAME + 1;
export const LoaderCommand = { Allocate: 1, AddPointer: 2, AddChecksum: 3, WritePointer: 4 } as const;
/** Where ALLOCATE puts a file: anywhere in high memory, or the F segment (0xF0000-0xFFFFF, where an OS scans for the RSDP). */
export const LoaderZone = { High: 1, FSeg: 2 } as const;

export type LoaderEntry =
  | { readonly command: 'allocate'; readonly file: string; readonly align: number; readonly zone: 'high' | 'fseg' }
  /** Adds the address `src` was allocated at to the `size`-byte little-endian value at `offset` in `dest`. */
  | { readonly command: 'add-pointer'; readonly dest: string; readonly src: string; readonly offset: number; readonly size: 1 | 2 | 4 | 8 }
  /** Makes bytes [start, start + length) of `file` sum to 0 by adjusting the byte at `offset`. */
  | { readonly command: 'add-checksum'; readonly file: string; readonly offset: number; readonly start: number; readonly length: number };

export function encodeLoader(entries: readonly LoaderEntry[]): Uint8Array {
  const out = new Uint8Array(entries.length * LOADER_ENTRY_SIZE);
  const v = new DataView(out.buffer);
  const name = (at: number, text: string): void => {
    if (text.length > FW_CFG_MAX_NAME) throw new RangeError(`linker/loader file name "${text}" is longer than ${FW_CFG_MAX_NAME} characters`);
    out.set(new TextEncoder().encode(text), at);
  };
  entries.forEach((e, i) => {
    const at = i * LOADER_ENTRY_SIZE;
    const body = at + 4;
    switch (e.command) {
      case 'allocate':
        if (e.align <= 0 || (e.align & (e.align - 1)) !== 0) throw new RangeError(`allocation alignment ${e.align} is not a power of two`);
        v.setUint32(at, LoaderCommand.Allocate, true);
        name(body, e.file);
        v.setUint32(body + LOADER_FILE_NAME_SIZE, e.align, true);
        v.setUint8(body + LOADER_FILE_NAME_SIZE + 4, e.zone === 'high' ? LoaderZone.High : LoaderZone.FSeg);
        break;
      case 'add-pointer':
        v.setUint32(at, LoaderCommand.AddPointer, true);
        name(body, e.dest);
        name(body + LOADER_FILE_NAME_SIZE, e.src);
        v.setUint32(body + 2 * LOADER_FILE_NAME_SIZE, e.offset, true);
        v.setUint8(body + 2 * LOADER_FILE_NAME_SIZE + 4, e.size);
        break;
      case 'add-checksum':
        v.setUint32(at, LoaderCommand.AddChecksum, true);
        name(body, e.file);
        v.setUint32(body + LOADER_FILE_NAME_SIZE, e.offset, true);
        v.setUint32(body + LOADER_FILE_NAME_SIZE + 4, e.start, true);
        v.setUint32(body + LOADER_FILE_NAME_SIZE + 8, e.length, true);
        break;
    }
  });
  return out;
}

/** Decodes a script (unknown commands come back as null, as firmware skips them). */
export function decodeLoader(script: Uint8Array): Array<LoaderEntry | null> {
  if (script.length % LOADER_ENTRY_SIZE !== 0) throw new RangeError(`a linker/loader script is a whole number of ${LOADER_ENTRY_SIZE}-byte commands (got ${script.length} bytes)`);
  const v = new DataView(script.buffer, script.byteOffset, script.byteLength);
  const name = (at: number): string => {
    const field = script.subarray(at, at + LOADER_FILE_NAME_SIZE);
    const end = field.indexOf(0);
    if (end < 0) throw new RangeError('a linker/loader file name is not NUL-terminated');
    return new TextDecoder().decode(field.subarray(0, end));
  };
  const entries: Array<LoaderEntry | null> = [];
  for (let at = 0; at < script.length; at += LOADER_ENTRY_SIZE) {
    const body = at + 4;
    switch (v.getUint32(at, true)) {
      case LoaderCommand.Allocate: {
        const zone = v.getUint8(body + LOADER_FILE_NAME_SIZE + 4);
        entries.push({ command: 'allocate', file: name(body), align: v.getUint32(body + LOADER_FILE_NAME_SIZE, true), zone: zone === LoaderZone.FSeg ? 'fseg' : 'high' });
        break;
      }
      case LoaderCommand.AddPointer:
        entries.push({
          command: 'add-pointer',
          dest: name(body),
          src: name(body + LOADER_FILE_NAME_SIZE),
          offset: v.getUint32(body + 2 * LOADER_FILE_NAME_SIZE, true),
          size: v.getUint8(body + 2 * LOADER_FILE_NAME_SIZE + 4) as 1 | 2 | 4 | 8,
        });
        break;
      case LoaderCommand.AddChecksum:
        entries.push({
          command: 'add-checksum',
          file: name(body),
          offset: v.getUint32(body + LOADER_FILE_NAME_SIZE, true),
          start: v.getUint32(body + LOADER_FILE_NAME_SIZE + 4, true),
          length: v.getUint32(body + LOADER_FILE_NAME_SIZE + 8, true),
        });
        break;
      default:
        entries.push(null);
    }
  }
  return entries;
}
