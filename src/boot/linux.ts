/**
 * Everything guest memory needs for a Linux boot through the 64-bit boot
 * protocol (Documentation/arch/x86/boot.rst, "64-bit Boot Protocol"), in one
 * call: parse the kernel (bzImage, or an ELF vmlinux), plan the layout,
 * copy the kernel, initrd and command line, write the ACPI tables and (for
 * up to 255 vCPUs) the MP table, and fill the zero page.
 *
 * What stays with the caller (see `LinuxBoot`): the CPU state. The BSP
 * enters at `entry` in 64-bit mode with RSI = `bootParams`; the APs wait for
 * INIT/SIPI.
 */
import { NodevisorError } from '../kvm/errors.js';
import { e820Map } from '../memory/e820.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { hex } from './bytes.js';
import { buildAcpiTables, type AcpiConfig, type AcpiTables } from './acpi/tables.js';
import { encodeCmdline, syntheticSetupHeader, writeBootParams } from './boot-params.js';
import { bzImagePlacement, planBootLayout, vmlinuxPlacement, type BootLayout, type KernelPlacement } from './boot-layout.js';
import { checkPayload, unpackBzImage } from './payload.js';
import { parseBzImage, type BzImage } from './bzimage.js';
import { firmwareIsaOverrides, type PciIntxRoute } from './irq-routing.js';
import { mpTableFits, writeMpTable, type MpTablePlacement } from './mptable.js';
import { isElf, loadVmlinux, parseVmlinux, type Vmlinux } from './vmlinux.js';

export interface LinuxBootOptions {
  /** The kernel file: a bzImage, or an uncompressed x86-64 ELF vmlinux. */
  readonly kernel: Uint8Array;
  /** How to name the kernel in errors (e.g. its path). */
  readonly kernelSource?: string;
  readonly initrd?: Uint8Array | null;
  readonly cmdline?: string;
  readonly cpus: number;
  /** vCPU i's APIC ID, from the VM's topology (default i). */
  readonly apicIds?: readonly number[];
  /**
   * ACPI table options (`cpus` and `apicIds` come from above); false for no ACPI tables,
   * which leaves Linux with the MP table (or a single CPU) and no power-off.
   */
  readonly acpi?: Omit<AcpiConfig, 'cpus' | 'apicIds'> | false;
  /** Write an MP table: default true when `cpus` <= 255 and every APIC ID is below 255 (MP tables cannot describe more). */
  readonly mpTable?: boolean;
  /** CPUID.1 EAX/EDX for the MP table's processor entries. */
  readonly cpuSignature?: number;
  readonly featureFlags?: number;
  /** PCI INTx wiring for the MP table. */
  readonly pciIntx?: readonly PciIntxRoute[];
  /**
   * Unpack a bzImage's compressed kernel in the VMM and enter the vmlinux
   * at startup_64, skipping the in-guest decompressor (default true; falls
   * back to the bzImage's own entry for compressions we do not decode, and
   * fails with the reason for a payload that is corrupt).
   */
  readonly unpack?: boolean;
}

export interface LinuxBoot {
  /** 'bzimage-unpacked': a bzImage whose payload the VMM unpacked and loaded as a vmlinux. */
  readonly format: 'bzimage' | 'bzimage-unpacked' | 'vmlinux';
  /** RIP for the BSP: the 64-bit entry point (load address + 0x200, or startup_64), or the 32-bit one. */
  readonly entry: number;
  /**
   * How the BSP enters: 'long' (64-bit boot protocol), or 'protected' for a
   * kernel without a 64-bit entry (32-bit boot protocol: flat segments,
   * paging off, ESI = the zero page).
   */
  readonly entryMode: 'long' | 'protected';
  /** RSI for the BSP: the zero page. */
  readonly bootParams: number;
  readonly layout: BootLayout;
  readonly acpi: AcpiTables | null;
  readonly mpTable: MpTablePlacement | null;
  readonly bzImage: BzImage | null;
  readonly vmlinux: Vmlinux | null;
}

/**
 * Loads a Linux kernel into `mem` (total RAM `mem.size`, laid out as
 * src/memory/layout.ts says). Throws NodevisorError: 'EKERNEL' for a kernel
 * or command line it cannot boot, 'EMEMORY' when RAM is too small.
 */
export function loadLinux(mem: GuestMemory, options: LinuxBootOptions): LinuxBoot {
  const source = options.kernelSource ?? 'the kernel image';
  const cmdline = options.cmdline ?? '';
  const initrd = options.initrd ?? null;
  const ramSize = mem.size;
  const elf = isElf(options.kernel);
  const parsed = elf ? null : parseBzImage(options.kernel, source);
  if (parsed) checkPayload(parsed, source);
  // Only a 64-bit kernel's payload is a vmlinux we can enter at startup_64.
  const unpacked = parsed && parsed.entry64 && options.unpack !== false ? unpackBzImage(parsed, source) : null;
  // From here on `bzImage` is set only when the guest runs the bzImage itself.
  const bzImage = unpacked ? null : parsed;
  const vmlinux = elf ? parseVmlinux(options.kernel, source) : unpacked ? parseVmlinux(unpacked, `${source} (unpacked payload)`) : null;
  const placement = bzImage
    ? bzImagePlacement(bzImage)
    : withInitSize(vmlinuxPlacement(vmlinux!, parsed?.cmdlineSize), parsed?.initSize ?? 0);
  const cmdlineBytes = encodeCmdline(cmdline, placement.cmdlineSize);
  const layout = planBootLayout({ ramSize, kernel: placement, cmdlineLength: cmdlineBytes.length - 1, initrdSize: initrd?.length ?? 0 });

  if (bzImage) {
    if (!mem.contains(layout.kernelAddr, layout.kernelEnd - layout.kernelAddr)) {
      throw new NodevisorError('EMEMORY', `the kernel's memory ${hex(layout.kernelAddr)}-${hex(layout.kernelEnd)} is not all guest RAM: give the VM more memory (--memory)`);
    }
    mem.write(layout.kernelAddr, bzImage.kernel);
  } else {
    loadVmlinux(mem, vmlinux!);
  }
  if (layout.initrd && initrd) mem.write(layout.initrd.addr, initrd);
  mem.write(layout.cmdline, cmdlineBytes);

  // The MP table describes the same IOAPIC and routing as the MADT.
  const shared = options.acpi === false ? {} : (options.acpi ?? {});
  const acpi = options.acpi === false ? null : buildAcpiTables(mem, { ...shared, cpus: options.cpus, apicIds: options.apicIds });
  const mpTable = (options.mpTable ?? mpTableFits(options.cpus, options.apicIds))
    ? writeMpTable(mem, {
        cpus: options.cpus,
        apicIds: options.apicIds,
        cpuSignature: options.cpuSignature,
        featureFlags: options.featureFlags,
        pciIntx: options.pciIntx,
        ioapicId: shared.ioapicId,
        ioapicAddress: shared.ioapicAddress,
        lapicAddress: shared.lapicAddress,
        overrides: firmwareIsaOverrides(shared.sciIrq, shared.isaOverrides),
      })
    : null;

  writeBootParams(mem, layout.zeroPage, {
    header: parsed ? parsed.header : syntheticSetupHeader({ cmdlineSize: placement.cmdlineSize }),
    cmdlineAddr: layout.cmdline,
    initrd: layout.initrd,
    e820: e820Map(ramSize),
    acpiRsdpAddr: acpi?.rsdp ?? null,
  });

  return {
    format: bzImage ? 'bzimage' : unpacked ? 'bzimage-unpacked' : 'vmlinux',
    entryMode: bzImage && !bzImage.entry64 ? 'protected' : 'long',
    entry: layout.entry,
    bootParams: layout.zeroPage,
    layout,
    acpi,
    mpTable,
    bzImage: parsed,
    vmlinux,
  };
}

/** A vmlinux's boot-time footprint is at least the bzImage's init_size (BSS, early page tables, brk). */
function withInitSize(p: KernelPlacement, initSize: number): KernelPlacement {
  return { ...p, footprint: Math.max(p.footprint, initSize) };
}
