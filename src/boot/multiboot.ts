/**
 * Multiboot (version 0.6.96, "Multiboot Specification"): kernels that carry
 * a header in their first 8 KiB and are entered in flat 32-bit protected
 * mode with EAX = 0x2BADB002 and EBX = the physical address of an
 * information structure (memory sizes and map, command line, modules).
 *
 * The kernel is loaded from its ELF program headers (PT_LOAD at p_paddr,
 * the bytes past p_filesz zeroed), or, when the header's flag 16 is set,
 * from the header's address fields (the "a.out kludge"). Modules are
 * placed page-aligned after the kernel; the information structure, the
 * memory map and the strings go in low memory at MULTIBOOT_INFO_AREA.
 */
import { NodevisorError } from '../kvm/errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { E820_RAM, e820Map, EBDA_START } from '../memory/e820.js';
import { PCI_HOLE_START } from '../memory/layout.js';
import { alignUp, hex } from './bytes.js';

export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/** The header must lie, 4-byte aligned, within the image's first 8 KiB. */
export const MULTIBOOT_SEARCH = 8192;
/** Header flags (bits 0-15 must be honoured, bits 16-31 are optional). */
export const MultibootFlag = { PageAlignModules: 1 << 0, MemoryInfo: 1 << 1, VideoMode: 1 << 2, AddressFields: 1 << 16 } as const;
/** Information-structure flags. */
export const MultibootInfoFlag = { Memory: 1 << 0, Cmdline: 1 << 2, Modules: 1 << 3, MemoryMap: 1 << 6, BootLoaderName: 1 << 9 } as const;
/** Where the information structure and what it points to go: above the VMM's boot GDT and page tables, below the EBDA. */
export const MULTIBOOT_INFO_AREA = 0x8000;
export const MULTIBOOT_INFO_AREA_END = EBDA_START;
export const MULTIBOOT_INFO_SIZE = 120;
export const MULTIBOOT_MODULE_SIZE = 16;
/** A memory-map entry: u32 size (of the rest), u64 base, u64 length, u32 type. */
export const MULTIBOOT_MMAP_ENTRY_SIZE = 24;
export const MULTIBOOT_LOADER_NAME = 'nodevisor';

export interface MultibootHeader {
  /** Offset of the header in the file. */
  readonly offset: number;
  readonly flags: number;
  readonly address?: { header: number; load: number; loadEnd: number; bssEnd: number; entry: number };
}

export interface MultibootModule {
  readonly data: Uint8Array;
  /** The module's string (its command line). */
  readonly string: string;
}

export interface MultibootBoot {
  readonly entry: number;
  /** EBX at entry. */
  readonly info: number;
  readonly kernelStart: number;
  readonly kernelEnd: number;
  readonly modules: ReadonlyArray<{ start: number; end: number }>;
}

interface Segment {
  paddr: number;
  data: Uint8Array;
  memsz: number;
}

/** The multiboot header, if the image has one. */
export function findMultibootHeader(image: Uint8Array): MultibootHeader | null {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const end = Math.min(MULTIBOOT_SEARCH, image.length) - 12;
  for (let at = 0; at <= end; at += 4) {
    if (v.getUint32(at, true) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = v.getUint32(at + 4, true);
    if (((MULTIBOOT_HEADER_MAGIC + flags + v.getUint32(at + 8, true)) >>> 0) !== 0) continue;
    if (!(flags & MultibootFlag.AddressFields)) return { offset: at, flags };
    if (at + 32 > image.length) continue;
    const f = (i: number): number => v.getUint32(at + 12 + 4 * i, true);
    return { offset: at, flags, address: { header: f(0), load: f(1), loadEnd: f(2), bssEnd: f(3), entry: f(4) } };
  }
  return null;
}

function fail(source: string, why: string): NodevisorError {
  return new NodevisorError('EKERNEL', `${source}: ${why}`);
}

/** Flags in the mandatory half (bits 0-15) that nodevisor can honour. */
const SUPPORTED_REQUIRED = MultibootFlag.PageAlignModules | MultibootFlag.MemoryInfo;

function segmentsOf(image: Uint8Array, header: MultibootHeader, source: string): { segments: Segment[]; entry: number } {
  const a = header.address;
  if (a) {
    // a.out kludge: the file from the header's place backwards to load_addr.
    const fileStart = header.offset - (a.header - a.load);
    const loadEnd = a.loadEnd === 0 ? a.load + (image.length - fileStart) : a.loadEnd;
    if (fileStart < 0 || a.load > a.header || loadEnd < a.load || fileStart + (loadEnd - a.load) > image.length) {
      throw fail(source, 'its multiboot address fields do not match the file (header_addr, load_addr, load_end_addr)');
    }
    const bssEnd = Math.max(a.bssEnd, loadEnd);
    return { segments: [{ paddr: a.load, data: image.subarray(fileStart, fileStart + (loadEnd - a.load)), memsz: bssEnd - a.load }], entry: a.entry };
  }
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  const isElf32 = image.length >= 52 && v.getUint32(0, false) === 0x7f454c46 && image[4] === 1 && image[5] === 1;
  if (!isElf32) throw fail(source, 'has a multiboot header without address fields (flag 16) but is not a 32-bit little-endian ELF file');
  const phoff = v.getUint32(28, true);
  const phentsize = v.getUint16(42, true);
  const phnum = v.getUint16(44, true);
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 32 > image.length) throw fail(source, 'its ELF program headers run past the end of the file');
    if (v.getUint32(at, true) !== 1) continue; // PT_LOAD
    const offset = v.getUint32(at + 4, true);
    const paddr = v.getUint32(at + 12, true);
    const filesz = v.getUint32(at + 16, true);
    const memsz = v.getUint32(at + 20, true);
    if (offset + filesz > image.length || filesz > memsz) throw fail(source, `ELF segment ${i} (${filesz} bytes at file offset ${offset}) is not in the file`);
    segments.push({ paddr, data: image.subarray(offset, offset + filesz), memsz });
  }
  if (!segments.length) throw fail(source, 'has no loadable ELF segments');
  return { segments, entry: v.getUint32(24, true) };
}

/**
 * Loads a multiboot kernel and its modules into `mem` and writes the
 * information structure. Throws NodevisorError('EKERNEL') for what cannot
 * be booted: required header flags nodevisor does not provide, segments
 * outside RAM or over the information area.
 */
export function loadMultiboot(mem: GuestMemory, o: { kernel: Uint8Array; source: string; cmdline: string; modules: readonly MultibootModule[] }): MultibootBoot {
  const header = findMultibootHeader(o.kernel);
  if (!header) throw fail(o.source, 'has no multiboot header');
  const unsupported = header.flags & 0xffff & ~SUPPORTED_REQUIRED;
  if (unsupported) {
    const names = unsupported & MultibootFlag.VideoMode ? ' (bit 2: a video mode; nodevisor has no display)' : '';
    throw fail(o.source, `its multiboot header requires flags ${hex(unsupported)}${names}, which nodevisor does not support (supported: page-aligned modules, memory information)`);
  }
  const { segments, entry } = segmentsOf(o.kernel, header, o.source);
  const kernelStart = Math.min(...segments.map((s) => s.paddr));
  const kernelEnd = Math.max(...segments.map((s) => s.paddr + s.memsz));
  for (const s of segments) {
    if (s.paddr < MULTIBOOT_INFO_AREA_END && s.paddr + s.memsz > 0x500) throw fail(o.source, `a segment at ${hex(s.paddr)}-${hex(s.paddr + s.memsz)} overlaps low memory the boot information uses (load kernels at 1 MiB or above)`);
    if (!mem.contains(s.paddr, s.memsz)) throw new NodevisorError('EMEMORY', `${o.source}: a segment at ${hex(s.paddr)}-${hex(s.paddr + s.memsz)} is not all guest RAM: give the VM more memory (--memory)`);
    mem.write(s.paddr, s.data);
    mem.fill(s.paddr + s.data.length, s.memsz - s.data.length);
  }
  if (entry < kernelStart || entry >= kernelEnd) throw fail(o.source, `its entry point ${hex(entry)} is outside the loaded image ${hex(kernelStart)}-${hex(kernelEnd)}`);

  const modules: Array<{ start: number; end: number }> = [];
  let next = alignUp(kernelEnd, 4096);
  for (const [i, m] of o.modules.entries()) {
    if (!mem.contains(next, Math.max(1, m.data.length)) || next + m.data.length > PCI_HOLE_START) {
      throw new NodevisorError('EMEMORY', `multiboot module ${i + 1} (${m.data.length} bytes) does not fit in RAM after the kernel: give the VM more memory (--memory)`);
    }
    mem.write(next, m.data);
    modules.push({ start: next, end: next + m.data.length });
    next = alignUp(next + m.data.length, 4096);
  }

  // The information area: structure, module list, memory map, strings.
  let at = MULTIBOOT_INFO_AREA;
  const take = (n: number, align = 4): number => {
    const p = alignUp(at, align);
    at = p + n;
    if (at > MULTIBOOT_INFO_AREA_END) throw fail(o.source, 'the command line and module strings do not fit in the multiboot information area (about 600 KiB)');
    return p;
  };
  const string = (s: string): number => {
    const bytes = new TextEncoder().encode(`${s}\0`);
    const p = take(bytes.length, 1);
    mem.write(p, bytes);
    return p;
  };
  const info = take(MULTIBOOT_INFO_SIZE);
  mem.fill(info, MULTIBOOT_INFO_SIZE);
  const mods = take(MULTIBOOT_MODULE_SIZE * Math.max(1, modules.length));
  modules.forEach((m, i) => {
    const e = mods + i * MULTIBOOT_MODULE_SIZE;
    mem.writeU32(e, m.start);
    mem.writeU32(e + 4, m.end);
    mem.writeU32(e + 8, string(o.modules[i]!.string));
    mem.writeU32(e + 12, 0);
  });
  const map = e820Map(mem.size);
  const mmap = take(map.length * MULTIBOOT_MMAP_ENTRY_SIZE);
  map.forEach((e, i) => {
    const p = mmap + i * MULTIBOOT_MMAP_ENTRY_SIZE;
    mem.writeU32(p, MULTIBOOT_MMAP_ENTRY_SIZE - 4);
    mem.writeU64(p + 4, BigInt(e.addr));
    mem.writeU64(p + 12, BigInt(e.size));
    mem.writeU32(p + 20, e.type);
  });
  const upper = map.find((e) => e.type === E820_RAM && e.addr === 0x100000);
  mem.writeU32(info, MultibootInfoFlag.Memory | MultibootInfoFlag.Cmdline | MultibootInfoFlag.Modules | MultibootInfoFlag.MemoryMap | MultibootInfoFlag.BootLoaderName);
  mem.writeU32(info + 4, EBDA_START / 1024);
  mem.writeU32(info + 8, upper ? upper.size / 1024 : 0);
  mem.writeU32(info + 16, string(o.cmdline));
  mem.writeU32(info + 20, modules.length);
  mem.writeU32(info + 24, mods);
  mem.writeU32(info + 44, map.length * MULTIBOOT_MMAP_ENTRY_SIZE);
  mem.writeU32(info + 48, mmap);
  mem.writeU32(info + 64, string(MULTIBOOT_LOADER_NAME));
  return { entry, info, kernelStart, kernelEnd, modules };
}
