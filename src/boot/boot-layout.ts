/**
 * Decides where a Linux boot puts things in guest RAM:
 *
 *   0x00000-0x004ff  real-mode IVT and BIOS data area (left zero)
 *   0x00500-0x06fff  the VMM's boot GDT and identity page tables (src/vcpu/boot-state.ts)
 *   0x07000-0x07fff  zero page (struct boot_params)
 *   0x20000-...      kernel command line (up to the kernel's cmdline_size + NUL)
 *   0x9fc00-0x9ffff  EBDA (reserved in e820)
 *   0xe0000-0xeffff  ACPI tables (RSDP first), see acpi/tables.ts
 *   0xf0000-0xfffff  MP floating pointer and configuration table, see mptable.ts
 *   pref_address     the protected-mode kernel (16 MiB for default configs), footprint init_size
 *   top of low RAM   the initrd, page-aligned, as high as initrd_addr_max allows
 *
 * Everything stays below 4 GiB and inside the VMM's identity map, which the
 * 64-bit boot protocol requires for the kernel, zero page and command line.
 */
import { NodevisorError } from '../kvm/errors.js';
import { EBDA_START } from '../memory/e820.js';
import { PCI_HOLE_START, formatSize, MiB } from '../memory/layout.js';
import { alignDown, alignUp, hex } from './bytes.js';
import { ENTRY64_OFFSET, type BzImage } from './bzimage.js';
import type { Vmlinux } from './vmlinux.js';

/** The VMM-owned boot area; mirrors BOOT_GDT..BOOT_AREA_END in src/vcpu/boot-state.ts. */
export const VMM_BOOT_AREA_START = 0x500;
export const VMM_BOOT_AREA_END = 0x7000;
/** The zero page: the first page after the VMM's boot area. */
export const ZERO_PAGE_ADDR = 0x7000;
/** The command line; room up to the EBDA (~510 KiB), far more than any cmdline_size. */
export const CMDLINE_ADDR = 0x20000;
export const CMDLINE_AREA_END = EBDA_START;
/** Where kernels without a pref_address (and the usual CONFIG_PHYSICAL_START) go. */
export const DEFAULT_KERNEL_ADDR = 0x1000000;
/** Nothing of the kernel may sit below 1 MiB: that is real-mode memory, EBDA and the BIOS area. */
export const KERNEL_MIN_ADDR = 0x100000;
export const PAGE_SIZE = 4096;
/**
 * A vmlinux has no header to state a limit; 64-bit bzImages report
 * 0x7fffffff, and the kernel proper only needs the initrd in mapped RAM.
 */
export const VMLINUX_INITRD_ADDR_MAX = 0x7fffffff;

/** What the planner needs to know about a kernel, from a bzImage or a vmlinux. */
export interface KernelPlacement {
  /** Where the kernel wants to be loaded. */
  readonly prefAddress: number;
  /** A relocatable kernel may be loaded at any multiple of `alignment`; others only at prefAddress. */
  readonly relocatable: boolean;
  readonly alignment: number;
  /** Bytes copied into RAM at the load address. */
  readonly imageSize: number;
  /** Bytes from the load address the kernel uses while booting; the planner uses max(footprint, imageSize). */
  readonly footprint: number;
  /** The entry point (64-bit, or the 32-bit fallback), relative to the load address. */
  readonly entryOffset: number;
  /** Longest command line (without the NUL). */
  readonly cmdlineSize: number;
  /** Highest address the initrd's last byte may have. */
  readonly initrdAddrMax: number;
}

/**
 * A bzImage's placement. Its decompressor moves the kernel to at least
 * pref_address (LOAD_PHYSICAL_ADDR) whatever the load address, and needs
 * init_size bytes from there (arch/x86/boot/compressed/head_64.S), so loading
 * it anywhere but pref_address saves no memory: the planner always uses it.
 */
export function bzImagePlacement(bz: BzImage): KernelPlacement {
  return {
    prefAddress: bz.prefAddress || DEFAULT_KERNEL_ADDR,
    relocatable: bz.relocatable,
    alignment: bz.relocatable ? bz.kernelAlignment : 1,
    imageSize: bz.kernel.length,
    footprint: Math.max(bz.initSize, bz.kernel.length),
    entryOffset: bz.entry64 ? ENTRY64_OFFSET : 0,
    cmdlineSize: bz.cmdlineSize,
    initrdAddrMax: bz.initrdAddrMax,
  };
}

/** A vmlinux's placement: fixed at its segments' physical addresses, entered at startup_64. */
export function vmlinuxPlacement(vmlinux: Vmlinux, cmdlineSize = 2047): KernelPlacement {
  return {
    prefAddress: vmlinux.start,
    relocatable: false,
    alignment: 1,
    imageSize: vmlinux.end - vmlinux.start,
    footprint: vmlinux.end - vmlinux.start,
    entryOffset: vmlinux.entry - vmlinux.start,
    cmdlineSize,
    initrdAddrMax: VMLINUX_INITRD_ADDR_MAX,
  };
}

export interface BootLayoutRequest {
  /** Guest RAM in bytes, laid out as src/memory/layout.ts says (low RAM up to 3 GiB). */
  readonly ramSize: number;
  readonly kernel: KernelPlacement;
  /** Command line length in bytes, without the NUL. */
  readonly cmdlineLength: number;
  /** Initrd size in bytes; 0 or absent for none. */
  readonly initrdSize?: number;
}

export interface BootLayout {
  readonly zeroPage: number;
  readonly cmdline: number;
  /** Bytes reserved for the command line, NUL included. */
  readonly cmdlineCapacity: number;
  /** Where the kernel image is copied. */
  readonly kernelAddr: number;
  /** One past the last byte the booting kernel uses (kernelAddr + footprint). */
  readonly kernelEnd: number;
  /** Physical address of the 64-bit entry point: RIP at entry. */
  readonly entry: number;
  readonly initrd: { readonly addr: number; readonly size: number } | null;
  /** One past the last byte of RAM below the PCI hole. */
  readonly lowRamEnd: number;
}

function tooSmall(why: string, needed: number): NodevisorError {
  return new NodevisorError('EMEMORY', `${why}: give the VM at least ${formatSize(alignUp(needed, MiB))} of memory (--memory)`);
}

/**
 * Places the zero page, command line, kernel and initrd for a boot. Throws
 * NodevisorError: 'EKERNEL' for a command line longer than the kernel takes
 * or a kernel that wants to live below 1 MiB; 'EMEMORY' when RAM is too
 * small for the kernel's footprint plus the initrd, or the initrd cannot fit
 * below initrd_addr_max.
 */
export function planBootLayout(request: BootLayoutRequest): BootLayout {
  const { kernel, ramSize } = request;
  const lowRamEnd = Math.min(ramSize, PCI_HOLE_START);
  const cmdlineCapacity = Math.min(kernel.cmdlineSize + 1, CMDLINE_AREA_END - CMDLINE_ADDR);
  if (request.cmdlineLength + 1 > cmdlineCapacity) {
    throw new NodevisorError('EKERNEL', `the kernel command line is ${request.cmdlineLength} bytes; this kernel accepts at most ${cmdlineCapacity - 1} (its cmdline_size)`);
  }

  const kernelAddr = kernel.relocatable ? alignUp(kernel.prefAddress, kernel.alignment) : kernel.prefAddress;
  if (kernelAddr < KERNEL_MIN_ADDR) {
    throw new NodevisorError('EKERNEL', `the kernel wants to be loaded at ${hex(kernelAddr)}, below 1 MiB, where the boot structures and BIOS area live; rebuild it with CONFIG_PHYSICAL_START >= 0x1000000`);
  }
  const footprint = Math.max(kernel.footprint, kernel.imageSize);
  const kernelEnd = kernelAddr + footprint;
  const initrdSize = request.initrdSize ?? 0;
  const initrdPages = alignUp(initrdSize, PAGE_SIZE);
  if (kernelEnd > lowRamEnd) {
    throw tooSmall(`the kernel needs RAM up to ${hex(kernelEnd)} (loaded at ${hex(kernelAddr)}, ${formatSize(footprint)} while it boots) but the VM has ${formatSize(ramSize)}`, alignUp(kernelEnd, PAGE_SIZE) + initrdPages);
  }

  let initrd: BootLayout['initrd'] = null;
  if (initrdSize > 0) {
    const ceiling = Math.min(lowRamEnd, kernel.initrdAddrMax + 1);
    const addr = alignDown(ceiling - initrdSize, PAGE_SIZE);
    const floor = alignUp(kernelEnd, PAGE_SIZE);
    if (addr < floor) {
      if (ceiling < lowRamEnd) {
        throw new NodevisorError('EMEMORY', `the initrd (${formatSize(initrdSize)}) does not fit between the kernel's end at ${hex(floor)} and its initrd_addr_max ${hex(kernel.initrdAddrMax)}: use a smaller initrd`);
      }
      throw tooSmall(`the kernel (up to ${hex(floor)}) and the ${formatSize(initrdSize)} initrd do not both fit in ${formatSize(ramSize)} of RAM`, floor + initrdPages);
    }
    initrd = { addr, size: initrdSize };
  }

  return {
    zeroPage: ZERO_PAGE_ADDR,
    cmdline: CMDLINE_ADDR,
    cmdlineCapacity,
    kernelAddr,
    kernelEnd,
    entry: kernelAddr + kernel.entryOffset,
    initrd,
    lowRamEnd,
  };
}
