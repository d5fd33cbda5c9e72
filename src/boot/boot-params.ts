/**
 * struct boot_params, the 4 KiB "zero page" a 64-bit boot loader hands the
 * kernel in RSI (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol";
 * field offsets from Documentation/arch/x86/zero-page.rst and
 * arch/x86/include/uapi/asm/bootparam.h).
 *
 * The page starts zeroed; the setup header is copied from the bzImage at its
 * own offset (0x1f1) and the loader-owned fields are then written over it.
 * The `sentinel` byte (0x1ef) stays 0: the kernel takes a non-zero sentinel
 * as a sign of a loader that copied more than the header and clears fields
 * it cannot trust (arch/x86/include/asm/bootparam_utils.h).
 */
import { NodevisorError } from '../kvm/errors.js';
import type { E820Entry } from '../memory/e820.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { hex } from './bytes.js';
import {
  BOOT_FLAG,
  HDRS_MAGIC,
  LoadFlags,
  SETUP_HEADER_END_2_12,
  SETUP_HEADER_END_2_15,
  SETUP_HEADER_START,
  SetupHeader,
  XLoadFlags,
} from './bzimage.js';

export const ZERO_PAGE_SIZE = 4096;

/** Offsets in struct boot_params of the fields outside the setup header that we write. */
export const BootParamsOffset = {
  acpiRsdpAddr: 0x070, // u64
  extRamdiskImage: 0x0c0, // u32: ramdisk_image >> 32
  extRamdiskSize: 0x0c4, // u32: ramdisk_size >> 32
  extCmdLinePtr: 0x0c8, // u32: cmd_line_ptr >> 32
  e820Entries: 0x1e8, // u8
  sentinel: 0x1ef, // u8, must stay 0
  hdr: SETUP_HEADER_START, // struct setup_header
  eddMbrSigBuffer: 0x290, // first field after the header's room
  e820Table: 0x2d0, // struct boot_e820_entry[E820_MAX_ENTRIES_ZEROPAGE]
} as const;

/** struct boot_e820_entry: u64 addr, u64 size, u32 type, packed. */
export const E820_ENTRY_SIZE = 20;
export const E820_MAX_ENTRIES_ZEROPAGE = 128;
/** type_of_loader 0xff: "undefined" loader (boot.rst, "type_of_loader"); there is no ID for us. */
export const LOADER_TYPE_UNDEFINED = 0xff;
/**
 * heap_end_ptr for CAN_USE_HEAP: boot.rst's example value (heap end 0xe000
 * minus 0x200). Only the real-mode setup code uses the heap, and the 64-bit
 * entry skips it; the value is what any loader that follows the example
 * would report.
 */
export const HEAP_END_PTR = 0xe000 - 0x200;

export interface BootParamsConfig {
  /** The setup header bytes from 0x1f1 on: `BzImage.header`, or `syntheticSetupHeader()` for a vmlinux. */
  readonly header: Uint8Array;
  /** Guest-physical address of the NUL-terminated command line. */
  readonly cmdlineAddr: number;
  /** Where the initrd was loaded; absent or null for none. */
  readonly initrd?: { readonly addr: number; readonly size: number } | null;
  /** The memory map: `e820Map(ramSize)`. At most 128 entries fit in the zero page. */
  readonly e820: readonly E820Entry[];
  /** Guest-physical address of the ACPI RSDP, when ACPI tables were placed (protocol 2.14's acpi_rsdp_addr). */
  readonly acpiRsdpAddr?: number | null;
}

function low32(v: number): number {
  return v % 2 ** 32;
}

function high32(v: number): number {
  return Math.floor(v / 2 ** 32);
}

function checkAddress(v: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} ${v} is not a valid guest-physical address`);
}

/** The zero page for `config`, as 4096 bytes ready to copy into guest RAM. */
export function buildBootParams(config: BootParamsConfig): Uint8Array {
  const page = new Uint8Array(ZERO_PAGE_SIZE);
  const view = new DataView(page.buffer);
  const hdrEnd = SETUP_HEADER_START + config.header.length;
  if (hdrEnd > BootParamsOffset.eddMbrSigBuffer || hdrEnd < SETUP_HEADER_END_2_12) {
    throw new RangeError(`a setup header of ${config.header.length} bytes does not fit struct boot_params: it must span 0x1f1..0x268 at least and end by 0x290`);
  }
  page.set(config.header, SETUP_HEADER_START);

  page[SetupHeader.typeOfLoader] = LOADER_TYPE_UNDEFINED;
  // LOADED_HIGH comes from the kernel; CAN_USE_HEAP with heap_end_ptr; no
  // KEEP_SEGMENTS (the 64-bit entry ignores segments); QUIET and KASLR are
  // the kernel's business.
  page[SetupHeader.loadflags] = (page[SetupHeader.loadflags]! & ~LoadFlags.KEEP_SEGMENTS) | LoadFlags.CAN_USE_HEAP;
  view.setUint16(SetupHeader.heapEndPtr, HEAP_END_PTR, true);

  checkAddress(config.cmdlineAddr, 'command line address');
  view.setUint32(SetupHeader.cmdLinePtr, low32(config.cmdlineAddr), true);
  view.setUint32(BootParamsOffset.extCmdLinePtr, high32(config.cmdlineAddr), true);

  const initrd = config.initrd ?? { addr: 0, size: 0 };
  checkAddress(initrd.addr, 'initrd address');
  checkAddress(initrd.size, 'initrd size');
  view.setUint32(SetupHeader.ramdiskImage, low32(initrd.addr), true);
  view.setUint32(BootParamsOffset.extRamdiskImage, high32(initrd.addr), true);
  view.setUint32(SetupHeader.ramdiskSize, low32(initrd.size), true);
  view.setUint32(BootParamsOffset.extRamdiskSize, high32(initrd.size), true);

  if (config.e820.length > E820_MAX_ENTRIES_ZEROPAGE) {
    throw new RangeError(`${config.e820.length} e820 entries do not fit the zero page (at most ${E820_MAX_ENTRIES_ZEROPAGE})`);
  }
  page[BootParamsOffset.e820Entries] = config.e820.length;
  config.e820.forEach((e, i) => {
    checkAddress(e.addr, 'e820 address');
    checkAddress(e.size, 'e820 size');
    const at = BootParamsOffset.e820Table + i * E820_ENTRY_SIZE;
    view.setBigUint64(at, BigInt(e.addr), true);
    view.setBigUint64(at + 8, BigInt(e.size), true);
    view.setUint32(at + 16, e.type, true);
  });

  if (config.acpiRsdpAddr != null) {
    checkAddress(config.acpiRsdpAddr, 'RSDP address');
    view.setBigUint64(BootParamsOffset.acpiRsdpAddr, BigInt(config.acpiRsdpAddr), true);
  }
  return page;
}

/** Builds the zero page and writes it at `addr` (4 KiB of guest RAM). */
export function writeBootParams(mem: GuestMemory, addr: number, config: BootParamsConfig): void {
  mem.write(addr, buildBootParams(config));
}

export interface SyntheticHeaderOptions {
  /** cmdline_size to report; the kernel proper reads COMMAND_LINE_SIZE - 1 bytes at most anyway. */
  readonly cmdlineSize?: number;
  /** kernel_alignment to report; informational, since a vmlinux runs where its segments were loaded. */
  readonly kernelAlignment?: number;
}

/**
 * A setup header for kernels that have none: a vmlinux entered directly at
 * startup_64 reads boot_params.hdr (cmd_line_ptr, ramdisk_*, loadflags,
 * version), so the loader supplies a plausible protocol-2.15 header, the
 * way Firecracker and Cloud Hypervisor do for ELF kernels.
 */
export function syntheticSetupHeader(options: SyntheticHeaderOptions = {}): Uint8Array {
  const bytes = new Uint8Array(SETUP_HEADER_END_2_15 - SETUP_HEADER_START);
  const view = new DataView(bytes.buffer);
  const at = (offset: number): number => offset - SETUP_HEADER_START;
  view.setUint16(at(SetupHeader.bootFlag), BOOT_FLAG, true);
  bytes[at(SetupHeader.jump)] = 0xeb; // jmp short, displacement = header length past 0x202
  bytes[at(SetupHeader.jump) + 1] = SETUP_HEADER_END_2_15 - SetupHeader.header;
  view.setUint32(at(SetupHeader.header), HDRS_MAGIC, true);
  view.setUint16(at(SetupHeader.version), 0x020f, true);
  view.setUint16(at(SetupHeader.vidMode), 0xffff, true); // "normal" text mode
  bytes[at(SetupHeader.loadflags)] = LoadFlags.LOADED_HIGH;
  view.setUint32(at(SetupHeader.kernelAlignment), options.kernelAlignment ?? 0x200000, true);
  view.setUint16(at(SetupHeader.xloadflags), XLoadFlags.KERNEL_64, true);
  view.setUint32(at(SetupHeader.cmdlineSize), options.cmdlineSize ?? 2047, true);
  view.setUint32(at(SetupHeader.initrdAddrMax), 0x7fffffff, true);
  return bytes;
}

/**
 * The command line as the kernel reads it: ASCII/UTF-8 bytes and a NUL.
 * Throws NodevisorError('EKERNEL') if it holds a NUL or is longer than the
 * kernel's cmdline_size.
 */
export function encodeCmdline(cmdline: string, cmdlineSize: number): Uint8Array {
  if (cmdline.includes('\0')) throw new NodevisorError('EKERNEL', 'the kernel command line must not contain NUL characters');
  const text = new TextEncoder().encode(cmdline);
  if (text.length > cmdlineSize) {
    throw new NodevisorError('EKERNEL', `the kernel command line is ${text.length} bytes; this kernel accepts at most ${cmdlineSize} (its cmdline_size, ${hex(cmdlineSize)})`);
  }
  const out = new Uint8Array(text.length + 1);
  out.set(text);
  return out;
}
