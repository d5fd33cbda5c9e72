/**
 * Parses a Linux x86 bzImage as the boot protocol describes it
 * (Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header" and
 * "Details of Header Fields"). Only what a 64-bit loader needs is checked;
 * the real-mode setup code is never run.
 *
 * Minimum protocol: 2.12 (Linux 3.8). That is the version that added
 * `xloadflags`, whose XLF_KERNEL_64 bit is the only way a kernel says it has
 * the 64-bit entry point at load address + 0x200 (boot.rst, "64-bit Boot
 * Protocol"). Everything else used here is older: cmdline_size (2.06),
 * payload_offset/length (2.08), pref_address/init_size (2.10).
 */
import { NodevisorError } from '../kvm/errors.js';
import { hex } from './bytes.js';

/**
 * File offsets of the setup header fields (boot.rst, "The Real-Mode Kernel
 * Header"). struct boot_params embeds the header at the same offsets, so these
 * double as zero-page offsets.
 */
export const SetupHeader = {
  setupSects: 0x1f1, // u8
  rootFlags: 0x1f2, // u16
  syssize: 0x1f4, // u32, 16-byte paragraphs
  ramSize: 0x1f8, // u16, obsolete
  vidMode: 0x1fa, // u16
  rootDev: 0x1fc, // u16
  bootFlag: 0x1fe, // u16, 0xAA55
  jump: 0x200, // u16: a short jump whose displacement byte (0x201) gives the header's end
  header: 0x202, // u32, "HdrS"
  version: 0x206, // u16
  realmodeSwtch: 0x208, // u32
  startSysSeg: 0x20c, // u16, obsolete
  kernelVersion: 0x20e, // u16, pointer to a string, minus 0x200
  typeOfLoader: 0x210, // u8
  loadflags: 0x211, // u8
  setupMoveSize: 0x212, // u16
  code32Start: 0x214, // u32
  ramdiskImage: 0x218, // u32
  ramdiskSize: 0x21c, // u32
  bootsectKludge: 0x220, // u32, obsolete
  heapEndPtr: 0x224, // u16
  extLoaderVer: 0x226, // u8
  extLoaderType: 0x227, // u8
  cmdLinePtr: 0x228, // u32
  initrdAddrMax: 0x22c, // u32
  kernelAlignment: 0x230, // u32
  relocatableKernel: 0x234, // u8
  minAlignment: 0x235, // u8, log2
  xloadflags: 0x236, // u16
  cmdlineSize: 0x238, // u32
  hardwareSubarch: 0x23c, // u32
  hardwareSubarchData: 0x240, // u64
  payloadOffset: 0x248, // u32, from the start of the protected-mode code
  payloadLength: 0x24c, // u32
  setupData: 0x250, // u64
  prefAddress: 0x258, // u64
  initSize: 0x260, // u32
  handoverOffset: 0x264, // u32
  kernelInfoOffset: 0x268, // u32 (2.15)
} as const;

/** First byte of the setup header, in the file and in struct boot_params. */
export const SETUP_HEADER_START = SetupHeader.setupSects;
/** End of the header as protocol 2.12 defines it (just past handover_offset). */
export const SETUP_HEADER_END_2_12 = 0x268;
/** End of the header in protocol 2.15 and later (just past kernel_info_offset). */
export const SETUP_HEADER_END_2_15 = 0x26c;

export const BOOT_FLAG = 0xaa55;
/** "HdrS" read as a little-endian u32. */
export const HDRS_MAGIC = 0x53726448;
export const MIN_BOOT_PROTOCOL = 0x020c;
export const SECTOR_SIZE = 512;
/** setup_sects = 0 means 4 (boot.rst, "setup_sects"). */
export const DEFAULT_SETUP_SECTS = 4;
/** The 64-bit entry point, relative to where the protected-mode kernel is loaded (boot.rst, "64-bit Boot Protocol"). */
export const ENTRY64_OFFSET = 0x200;
/** initrd_addr_max of kernels that predate the field (boot.rst, "initrd_addr_max"). */
export const DEFAULT_INITRD_ADDR_MAX = 0x37ffffff;

/** loadflags bits (boot.rst, "loadflags"). */
export const LoadFlags = {
  LOADED_HIGH: 1 << 0,
  KASLR_FLAG: 1 << 1,
  QUIET_FLAG: 1 << 5,
  KEEP_SEGMENTS: 1 << 6,
  CAN_USE_HEAP: 1 << 7,
} as const;

/** xloadflags bits (boot.rst, "xloadflags"). */
export const XLoadFlags = {
  KERNEL_64: 1 << 0,
  CAN_BE_LOADED_ABOVE_4G: 1 << 1,
  EFI_HANDOVER_32: 1 << 2,
  EFI_HANDOVER_64: 1 << 3,
  EFI_KEXEC: 1 << 4,
  FIVE_LEVEL: 1 << 5,
  FIVE_LEVEL_ENABLED: 1 << 6,
  MEM_ENCRYPTION: 1 << 7,
} as const;

/** How the payload (the compressed vmlinux) is packed, from its leading bytes. */
export type KernelCompression = 'gzip' | 'bzip2' | 'lzma' | 'xz' | 'lzo' | 'lz4' | 'zstd' | 'none' | 'unknown';

export interface BzImage {
  /** Boot protocol version, e.g. 0x020f for 2.15. */
  readonly protocol: number;
  /** setup_sects with 0 read as 4. */
  readonly setupSects: number;
  /** Bytes before the protected-mode kernel: (setup_sects + 1) * 512. */
  readonly setupSize: number;
  /** 0x202 + the byte at 0x201: the first byte past the setup header. */
  readonly headerEnd: number;
  /** A copy of the file's bytes [0x1f1, headerEnd): what goes to boot_params.hdr. */
  readonly header: Uint8Array;
  /** The protected-mode kernel (syssize * 16 bytes, or what the file has of them): load it at the kernel address. */
  readonly kernel: Uint8Array;
  readonly loadflags: number;
  readonly xloadflags: number;
  readonly relocatable: boolean;
  /** kernel_alignment: a relocatable kernel is loaded at a multiple of this. */
  readonly kernelAlignment: number;
  /** 1 << min_alignment: the least alignment the kernel tolerates. */
  readonly minAlignment: number;
  /** pref_address: where the kernel wants to be loaded (and runs, if not relocatable). */
  readonly prefAddress: number;
  /** init_size: bytes from the load address the kernel needs before it reads the memory map. */
  readonly initSize: number;
  /** Longest command line the kernel accepts, not counting the terminating NUL. */
  readonly cmdlineSize: number;
  /** Highest address the initrd's last byte may have. */
  readonly initrdAddrMax: number;
  readonly canLoadAbove4G: boolean;
  readonly payloadOffset: number;
  readonly payloadLength: number;
  readonly compression: KernelCompression;
  /** The kernel's version string (e.g. "6.6.8 (builder@host) #1 SMP ..."), if the header points at one. */
  readonly kernelVersion: string | null;
  /**
   * The kernel has the 64-bit entry point (xloadflags.XLF_KERNEL_64) at load
   * address + 0x200; without it the loader falls back to the 32-bit entry at
   * the load address (boot.rst, "32-bit Boot Protocol").
   */
  readonly entry64: boolean;
}

function fail(source: string, why: string): NodevisorError {
  return new NodevisorError('EKERNEL', `${source} ${why}`);
}

function startsWith(data: Uint8Array, magic: readonly number[], at = 0): boolean {
  if (data.length < at + magic.length) return false;
  return magic.every((b, i) => data[at + i] === b);
}

/** Identifies a compressed stream by its magic (the formats Linux's CONFIG_KERNEL_* can produce). */
export function detectCompression(payload: Uint8Array): KernelCompression {
  if (startsWith(payload, [0x1f, 0x8b]) || startsWith(payload, [0x1f, 0x9e])) return 'gzip';
  if (startsWith(payload, [0x42, 0x5a, 0x68])) return 'bzip2'; // "BZh"
  if (startsWith(payload, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (startsWith(payload, [0x5d, 0x00, 0x00])) return 'lzma'; // lzma-alone: properties byte 0x5d, then the dictionary size
  if (startsWith(payload, [0x89, 0x4c, 0x5a, 0x4f])) return 'lzo'; // "\x89LZO"
  if (startsWith(payload, [0x02, 0x21, 0x4c, 0x18])) return 'lz4'; // LZ4 legacy frame, as the kernel uses
  if (startsWith(payload, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  if (startsWith(payload, [0x7f, 0x45, 0x4c, 0x46])) return 'none'; // CONFIG_KERNEL_UNCOMPRESSED: a plain ELF
  return 'unknown';
}

/** What a file that is not a bzImage looks like, for the error message; null if unrecognised. */
export function describeNonBzImage(data: Uint8Array): string | null {
  if (startsWith(data, [0x7f, 0x45, 0x4c, 0x46])) {
    return 'looks like an ELF file (an uncompressed vmlinux?), not a bzImage: pass arch/x86/boot/bzImage, or load it as a vmlinux';
  }
  if (startsWith(data, [0x41, 0x52, 0x4d, 0x64], 0x38)) return 'looks like an arm64 kernel Image, not an x86 bzImage';
  if (startsWith(data, [0x4d, 0x5a])) return 'looks like a PE/EFI executable without a Linux boot header, not a bzImage';
  if (startsWith(data, [0x30, 0x37, 0x30, 0x37, 0x30])) return 'looks like a cpio archive (an initramfs?), not a kernel: pass it as the initrd';
  const compression = detectCompression(data);
  if (compression !== 'unknown' && compression !== 'none') {
    return `looks like ${compression}-compressed data, not a bzImage (decompress it first if it is a kernel)`;
  }
  return null;
}

/**
 * Parses and validates a bzImage. Throws NodevisorError('EKERNEL') with a
 * message naming `source` for anything the loader cannot boot: not a
 * bzImage, protocol older than 2.12, truncated file,
 * inconsistent header.
 */
export function parseBzImage(data: Uint8Array, source = 'the kernel image'): BzImage {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const hasHdrS = data.length >= SetupHeader.header + 4 && view.getUint32(SetupHeader.header, true) === HDRS_MAGIC;
  if (!hasHdrS) {
    const looks = describeNonBzImage(data);
    if (looks) throw fail(source, looks);
    if (data.length < SetupHeader.header + 4) {
      throw fail(source, `is only ${data.length} bytes: too short to be a bzImage (its header alone ends past 0x${SETUP_HEADER_END_2_12.toString(16)})`);
    }
    const found = Array.from(data.subarray(SetupHeader.header, SetupHeader.header + 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw fail(source, `is not a Linux bzImage: no "HdrS" signature at offset 0x202 (found ${found})`);
  }
  const bootFlag = view.getUint16(SetupHeader.bootFlag, true);
  if (bootFlag !== BOOT_FLAG) {
    throw fail(source, `has a "HdrS" signature but boot_flag at 0x1fe is ${hex(bootFlag)}, not 0xaa55: not a valid bzImage`);
  }
  const protocol = view.getUint16(SetupHeader.version, true);
  const versionText = formatProtocol(protocol);
  if (protocol < MIN_BOOT_PROTOCOL) {
    throw fail(source, `uses boot protocol ${versionText}; nodevisor needs 2.12 or newer (Linux 3.8+), which says whether the kernel has a 64-bit entry point`);
  }
  const headerEnd = SetupHeader.header + data[SetupHeader.jump + 1]!;
  if (headerEnd < SETUP_HEADER_END_2_12) {
    throw fail(source, `claims boot protocol ${versionText} but its setup header ends at ${hex(headerEnd)} (0x202 + the byte at 0x201), before the 2.12 fields end at 0x268`);
  }
  const rawSects = data[SetupHeader.setupSects]!;
  const setupSects = rawSects === 0 ? DEFAULT_SETUP_SECTS : rawSects;
  const setupSize = (setupSects + 1) * SECTOR_SIZE;
  if (headerEnd > setupSize) {
    throw fail(source, `has a setup header ending at ${hex(headerEnd)}, past its ${setupSize}-byte setup code: the header is corrupt`);
  }
  if (data.length < setupSize) {
    throw fail(source, `is truncated: ${data.length} bytes, but its setup code alone is ${setupSize} bytes (setup_sects ${setupSects})`);
  }
  const loadflags = data[SetupHeader.loadflags]!;
  if (!(loadflags & LoadFlags.LOADED_HIGH)) {
    throw fail(source, 'is a zImage (loadflags.LOADED_HIGH clear: it wants to load at 0x10000); only bzImages are supported');
  }
  const xloadflags = view.getUint16(SetupHeader.xloadflags, true);

  const syssize = view.getUint32(SetupHeader.syssize, true);
  const available = data.length - setupSize;
  const expected = syssize * 16;
  // build.c rounds the image up to whole 16-byte paragraphs and pads the
  // file to match; tolerate a missing partial paragraph, nothing more.
  if (available + 15 < expected) {
    throw fail(source, `is truncated: the header says the kernel is ${expected} bytes after the ${setupSize}-byte setup, but the file has only ${available}`);
  }
  const kernel = data.subarray(setupSize, setupSize + Math.min(available, expected));
  const payloadOffset = view.getUint32(SetupHeader.payloadOffset, true);
  const payloadLength = view.getUint32(SetupHeader.payloadLength, true);
  if (payloadOffset + payloadLength > kernel.length) {
    throw fail(source, `is truncated or corrupt: its compressed payload (offset ${hex(payloadOffset)}, ${payloadLength} bytes) runs past the ${kernel.length}-byte kernel`);
  }

  const relocatable = data[SetupHeader.relocatableKernel]! !== 0;
  const kernelAlignment = view.getUint32(SetupHeader.kernelAlignment, true);
  const minAlignmentLog2 = data[SetupHeader.minAlignment]!;
  if (relocatable && (kernelAlignment === 0 || (kernelAlignment & (kernelAlignment - 1)) !== 0)) {
    throw fail(source, `has an invalid kernel_alignment ${hex(kernelAlignment)} (must be a power of two)`);
  }
  if (minAlignmentLog2 > 31) throw fail(source, `has an invalid min_alignment ${minAlignmentLog2} (log2 of the alignment, at most 31)`);
  const prefAddressBig = view.getBigUint64(SetupHeader.prefAddress, true);
  if (prefAddressBig > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(source, `has an implausible pref_address ${hex(prefAddressBig)}`);
  const initSize = view.getUint32(SetupHeader.initSize, true);
  if (initSize === 0) throw fail(source, 'has init_size 0: the header is corrupt (every 2.10+ kernel states how much memory it needs to boot)');

  const cmdlineSize = view.getUint32(SetupHeader.cmdlineSize, true);
  const initrdAddrMax = view.getUint32(SetupHeader.initrdAddrMax, true) || DEFAULT_INITRD_ADDR_MAX;
  const payloadStart = setupSize + payloadOffset;
  const compression = payloadLength === 0 ? 'unknown' : detectCompression(data.subarray(payloadStart, payloadStart + payloadLength));

  return {
    protocol,
    setupSects,
    setupSize,
    headerEnd,
    header: data.slice(SETUP_HEADER_START, headerEnd),
    kernel,
    loadflags,
    xloadflags,
    relocatable,
    kernelAlignment,
    minAlignment: 2 ** minAlignmentLog2,
    prefAddress: Number(prefAddressBig),
    initSize,
    cmdlineSize,
    initrdAddrMax,
    canLoadAbove4G: (xloadflags & XLoadFlags.CAN_BE_LOADED_ABOVE_4G) !== 0,
    payloadOffset,
    payloadLength,
    compression,
    kernelVersion: readKernelVersion(data, view, setupSize),
    entry64: (xloadflags & XLoadFlags.KERNEL_64) !== 0,
  };
}

/** kernel_version points (minus 0x200) at a NUL-terminated string inside the setup code. */
function readKernelVersion(data: Uint8Array, view: DataView, setupSize: number): string | null {
  const ptr = view.getUint16(SetupHeader.kernelVersion, true);
  if (ptr === 0) return null;
  const start = ptr + 0x200;
  if (start >= setupSize) return null;
  let end = start;
  while (end < setupSize && data[end] !== 0) end++;
  if (end === setupSize || end === start) return null;
  const bytes = data.subarray(start, end);
  if (bytes.some((b) => b < 0x20 || b > 0x7e)) return null;
  return String.fromCharCode(...bytes);
}

/** "2.15" for 0x020f. */
export function formatProtocol(protocol: number): string {
  return `${protocol >> 8}.${(protocol & 0xff).toString().padStart(2, '0')}`;
}
