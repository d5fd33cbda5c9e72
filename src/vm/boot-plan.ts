import { Kvm } from '../kvm/kvm.js';
import { NodevisorError } from '../kvm/errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { formatSize } from '../memory/layout.js';
import type { FlatImage } from '../boot/flat-image.js';
import { readFirmware, type FirmwareImage } from '../boot/firmware.js';
import { loadLinux } from '../boot/linux.js';
import type { PciIntxRoute } from '../boot/irq-routing.js';
import type { PlatformDescription } from '../boot/acpi/tables.js';
import { findMultibootHeader, loadMultiboot, MULTIBOOT_BOOTLOADER_MAGIC, type MultibootModule } from '../boot/multiboot.js';
import { writeBootTables, BOOT_AREA_END } from '../vcpu/boot-state.js';
import { demoImage } from '../guests/demo.js';
import { guestCmdline, defaultCmdline } from './host-quirks.js';
import { readGuestFile } from './guest-file.js';
import type { VmConfig } from './vm-config.js';

/**
 * What a VM boots and how its vCPUs start: a flat image of ours (the demo
 * by default), a Linux or multiboot kernel, firmware, or a snapshot. The
 * files are read (and refused) before anything is created; they are placed
 * in guest RAM once it exists.
 */

/** How the vCPUs start: the entry state and who enters. */
export interface BootPlan {
  mode: FlatImage['mode'];
  entry: number;
  /** RSI at entry (the Linux zero page); default the vCPU count. */
  rsi?: number;
  /** RAX and RBX at entry (multiboot's magic and information structure). */
  rax?: number;
  rbx?: number;
  /** Enter with the Linux boot protocol's GDT and selectors. */
  linux?: boolean;
  startup: 'all' | 'sipi';
  /** Start in the architectural reset state (the BSP at the reset vector). */
  reset?: boolean;
}

/** A restored VM's vCPUs load their saved state instead of entering anything. */
export const RESTORE_PLAN: BootPlan = { mode: 'long', entry: 0, startup: 'all' };
/** Firmware: the BSP at the reset vector, the APs waiting for INIT-SIPI. */
export const FIRMWARE_PLAN: BootPlan = { mode: 'real', entry: 0, startup: 'sipi', reset: true };

interface LoadedImage {
  bytes: Uint8Array;
  mode: FlatImage['mode'];
  load: number;
  entry: number;
  startup: 'all' | 'sipi';
}

interface KernelFiles {
  kernel: Uint8Array;
  initrd: Uint8Array | null;
  source: string;
}

/** The boot source, read and checked; `place` puts it in guest RAM. */
export type BootSource = { kind: 'restore'; firmware?: FirmwareImage } | { kind: 'firmware'; image: FirmwareImage } | { kind: 'kernel'; files: KernelFiles } | { kind: 'image'; image: LoadedImage };

export function readBootSource(c: VmConfig): BootSource {
  const o = c.options;
  // A firmware-booted VM's image comes back from the snapshot: its memory and PAM area are mapped again.
  if (c.restoring) return c.restoring.firmware ? { kind: 'restore', firmware: readFirmware(c.restoring.firmware) } : { kind: 'restore' };
  if (o.bios !== undefined) {
    if (o.kernel !== undefined || o.image !== undefined) throw new NodevisorError('EBIOS', `${o.kernel !== undefined ? 'a kernel' : 'an image'} cannot be combined with firmware: the firmware boots from the disks (build one with "nodevisor image build-disk")`);
    return { kind: 'firmware', image: readFirmware(o.bios) };
  }
  if (o.kernel !== undefined) {
    const kernel = readGuestFile(o.kernel, 'kernel', 'EKERNEL', c.memorySize);
    const initrd = o.initrd !== undefined ? readGuestFile(o.initrd, 'initrd', 'EKERNEL', c.memorySize) : null;
    return { kind: 'kernel', files: { kernel, initrd, source: typeof o.kernel === 'string' ? o.kernel : 'the kernel image' } };
  }
  return { kind: 'image', image: loadImage(o.image ?? demoImage(), c.memorySize) };
}

function loadImage(image: FlatImage, memorySize: number): LoadedImage {
  const bytes = readGuestFile(image.source, 'guest image', 'EIMAGE', memorySize);
  const load = image.loadAddress ?? (image.mode === 'real' ? 0x8000 : 0x100000);
  const entry = image.entry ?? load;
  if (load < BOOT_AREA_END) throw new NodevisorError('EIMAGE', `load address 0x${load.toString(16)} overlaps the VMM's boot area (below 0x${BOOT_AREA_END.toString(16)})`);
  if (image.mode === 'real' && (entry >= 0x100000 || load + bytes.length > 0x9fc00)) {
    throw new NodevisorError('EIMAGE', 'a real-mode image must load and start below 0x9fc00');
  }
  return { bytes, mode: image.mode, load, entry, startup: image.startup ?? 'all' };
}

/** What placing a kernel or image needs beyond the configuration. */
export interface PlaceContext {
  readonly memory: GuestMemory;
  /** PCI INTx lines of the virtio functions, for the firmware tables. */
  readonly pciIntx: readonly PciIntxRoute[];
  /** What the firmware tables say of the platform's devices. */
  readonly platform: PlatformDescription;
}

/** Puts a kernel or flat image in guest RAM, with the firmware tables that describe the VM. */
export function placeBootSource(c: VmConfig, source: Extract<BootSource, { kind: 'kernel' | 'image' }>, p: PlaceContext): BootPlan {
  if (source.kind === 'image') return placeImage(c, source.image, p.memory);
  writeBootTables(p.memory);
  if (findMultibootHeader(source.files.kernel)) return placeMultiboot(c, source.files, p.memory);
  return placeLinux(c, source.files, p);
}

function placeImage(c: VmConfig, image: LoadedImage, mem: GuestMemory): BootPlan {
  if (!mem.contains(image.load, image.bytes.length)) {
    throw new NodevisorError('EIMAGE', `the guest image (${image.bytes.length} bytes at 0x${image.load.toString(16)}) does not fit in ${formatSize(c.memorySize)} of RAM`);
  }
  if (image.mode !== 'real') writeBootTables(mem);
  mem.write(image.load, image.bytes);
  return { mode: image.mode, entry: image.entry, startup: image.startup };
}

/**
 * Linux through the 64-bit boot protocol: the BSP enters in long mode at
 * the kernel's entry with RSI = the zero page; the APs wait for the
 * kernel's INIT-SIPI-SIPI.
 */
function placeLinux(c: VmConfig, k: KernelFiles, p: PlaceContext): BootPlan {
  const linux = loadLinux(p.memory, {
    kernel: k.kernel,
    kernelSource: k.source,
    initrd: k.initrd,
    cmdline: guestCmdline(c.options.cmdline ?? defaultCmdline(c.consoleKind), Kvm.isSoftwareVirtualised()),
    cpus: c.vcpus,
    apicIds: c.cpus.apicIds(),
    acpi: { ...p.platform, pciIntx: p.pciIntx },
    pciIntx: p.pciIntx,
  });
  return { mode: linux.entryMode, entry: linux.entry, rsi: linux.bootParams, startup: 'sipi', linux: true };
}

/**
 * A multiboot kernel: the BSP enters in flat 32-bit protected mode with
 * EAX = the bootloader magic and EBX = the information structure; the
 * APs wait for INIT-SIPI.
 */
function placeMultiboot(c: VmConfig, k: KernelFiles, mem: GuestMemory): BootPlan {
  const o = c.options;
  const modules: MultibootModule[] = [];
  if (k.initrd) modules.push({ data: k.initrd, string: typeof o.initrd === 'string' ? o.initrd : 'initrd' });
  for (const m of o.modules ?? []) {
    modules.push({ data: readGuestFile(m.source, 'multiboot module', 'EKERNEL', c.memorySize), string: m.args ?? (typeof m.source === 'string' ? m.source : `module ${modules.length + 1}`) });
  }
  const mb = loadMultiboot(mem, { kernel: k.kernel, source: k.source, cmdline: o.cmdline ?? '', modules });
  return { mode: 'protected', entry: mb.entry, rax: MULTIBOOT_BOOTLOADER_MAGIC, rbx: mb.info, startup: 'sipi' };
}
