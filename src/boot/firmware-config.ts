/**
 * What nodevisor tells PC firmware through fw_cfg, in the items and files
 * QEMU's `pc` machine provides and SeaBIOS reads (src/fw/paravirt.c):
 * CPU counts, RAM (the `etc/e820` map of RAM ranges; the firmware adds its
 * own reservations), the ACPI tables through the linker/loader, the boot
 * order, the serial console, and what to do when nothing boots.
 */
import { FwCfgKey, type FwCfgItem } from '../devices/fw-cfg.js';
import { E820_RAM } from '../memory/e820.js';
import { HIGH_RAM_START, PCI_HOLE_START } from '../memory/layout.js';
import type { AcpiConfig } from './acpi/tables.js';
import { ACPI_RSDP_FILE, ACPI_TABLES_FILE, TABLE_LOADER_FILE, buildLoaderTables } from './acpi/loader-tables.js';
import { FwCfgBuilder, u16le, u32le, u64le } from './fw-cfg-items.js';

export const E820_FILE_ENTRY_SIZE = 20;

export interface FirmwareConfig {
  readonly ramSize: number;
  readonly cpus: number;
  readonly acpi: AcpiConfig;
  /** OpenFirmware device paths, most preferred first (see `virtioBlkBootPath`). */
  readonly bootOrder: readonly string[];
  /** The port of the UART the firmware (and the boot loader, through int 10h) writes its text to; null for none. */
  readonly serialConsole: number | null;
  /** After "No bootable device", wait this long and reset (-1: wait forever, SeaBIOS's `etc/boot-fail-wait`). */
  readonly bootFailWaitMs: number;
}

/** The path QEMU gives a virtio-blk PCI function at bus 0 device `device`; SeaBIOS matches it by the device number. */
export function virtioBlkBootPath(device: number): string {
  return `/pci@i0cf8/scsi@${device.toString(16)}/disk@0,0`;
}

/** The `etc/e820` file: the RAM ranges, 20-byte little-endian entries (u64 address, u64 length, u32 type). */
export function e820File(ramSize: number): Uint8Array {
  const low = Math.min(ramSize, PCI_HOLE_START);
  const ranges: Array<[number, number]> = [[0, low]];
  if (ramSize > low) ranges.push([HIGH_RAM_START, ramSize - low]);
  const out = new Uint8Array(ranges.length * E820_FILE_ENTRY_SIZE);
  const v = new DataView(out.buffer);
  ranges.forEach(([addr, len], i) => {
    v.setBigUint64(i * E820_FILE_ENTRY_SIZE, BigInt(addr), true);
    v.setBigUint64(i * E820_FILE_ENTRY_SIZE + 8, BigInt(len), true);
    v.setUint32(i * E820_FILE_ENTRY_SIZE + 16, E820_RAM, true);
  });
  return out;
}

/** The fw_cfg items for a VM booted by firmware. */
export function firmwareItems(cfg: FirmwareConfig): FwCfgItem[] {
  const acpi = buildLoaderTables({ ...cfg.acpi, cpus: cfg.cpus });
  const text = (s: string): Uint8Array => new TextEncoder().encode(s);
  const b = new FwCfgBuilder()
    .key(FwCfgKey.Uuid, new Uint8Array(16))
    .key(FwCfgKey.RamSize, u64le(cfg.ramSize))
    .key(FwCfgKey.NoGraphic, u16le(1))
    .key(FwCfgKey.NbCpus, u16le(cfg.cpus))
    .key(FwCfgKey.MaxCpus, u16le(cfg.cpus))
    // No NUMA: a node count of 0, then one (zero) node number per CPU.
    .key(FwCfgKey.Numa, new Uint8Array(8 * (1 + cfg.cpus)))
    .key(FwCfgKey.BootMenu, u16le(0))
    // ISA IRQ 0 arrives at IOAPIC pin 2 (the MADT says so too).
    .key(FwCfgKey.Irq0Override, new Uint8Array([1]))
    .file('etc/e820', e820File(cfg.ramSize))
    .file(ACPI_RSDP_FILE, acpi.rsdp)
    .file(ACPI_TABLES_FILE, acpi.tables)
    .file(TABLE_LOADER_FILE, acpi.loader)
    .file('etc/boot-fail-wait', u32le(cfg.bootFailWaitMs));
  if (cfg.bootOrder.length) b.file('bootorder', text(cfg.bootOrder.map((p) => `${p}\n`).join('') + '\0'));
  if (cfg.serialConsole !== null) b.file('etc/sercon-port', u16le(cfg.serialConsole));
  return b.build();
}
