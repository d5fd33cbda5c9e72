/**
 * Lays the ACPI tables out in the BIOS area and writes them into guest RAM:
 *
 *   0xE0000  RSDP (16-byte aligned, where the OS scans for "RSD PTR ")
 *   ...      XSDT -> FADT, MADT
 *            FADT -> FACS (64-byte aligned), DSDT
 *
 * Each table starts on a 16-byte boundary (the FACS on 64). The region is
 * 0xE0000-0xEFFFF by default, below the MP table at 0xF0000; e820 reports the
 * whole 0xE0000-0xFFFFF as reserved, so the OS leaves the tables alone.
 * 64 KiB holds the MADT of ~4000 vCPUs (16 bytes each as x2APIC entries).
 */
import { DEFAULT_ISA_OVERRIDES, type IsaIrqOverride } from '../../irqchip/irq-router.js';
import { IOAPIC_BASE } from '../../irqchip/ioapic.js';
import { LAPIC_DEFAULT_BASE } from '../../irqchip/lapic-regs.js';
import { PM1A_CNT, PM1A_STS, PM1_CNT_LEN, PM1_EVT_LEN, PM_TMR, PM_TMR_LEN } from '../../devices/acpi-pm.js';
import { BIOS_AREA_START } from '../../memory/e820.js';
import { PVPANIC_PORT } from '../../devices/pvpanic.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { PlatformPorts } from '../../devices/platform-ports.js';
import { alignUp, hex } from '../bytes.js';
import { firmwareIsaOverrides, type PciIntxRoute } from '../irq-routing.js';
import { buildDsdt } from './dsdt.js';
import { buildFacs, FACS_ALIGNMENT } from './facs.js';
import { buildFadt, CMOS_CENTURY_INDEX, FADT_SIZE, IapcBootArch, RESET_PORT, RESET_VALUE } from './fadt.js';
import { buildMadt } from './madt.js';
import { buildRsdp, RSDP_SIZE } from './rsdp.js';
import { DEFAULT_SDT_IDS, SDT_HEADER_SIZE, type SdtIds } from './sdt.js';
import { buildXsdt } from './xsdt.js';

export const ACPI_REGION_START = BIOS_AREA_START;
/** The MP table area begins here (mptable.ts). */
export const ACPI_REGION_END = 0xf0000;
export const ACPI_TABLE_ALIGNMENT = 16;

export interface AcpiConfig {
  /** vCPUs. */
  readonly cpus: number;
  /** vCPU i's APIC ID (default i). */
  readonly apicIds?: readonly number[];
  /** Default 0, our IOAPIC's reset ID. */
  readonly ioapicId?: number;
  readonly ioapicAddress?: number;
  readonly lapicAddress?: number;
  /** The SCI's ISA IRQ; default PlatformPorts.sciIrq (9). */
  readonly sciIrq?: number;
  /** The router's ISA overrides (default DEFAULT_ISA_OVERRIDES); the SCI override is added to them. */
  readonly isaOverrides?: readonly IsaIrqOverride[];
  /** Base port of the ACPI PM block (acpi-pm.ts); default PlatformPorts.acpiPm (0x600). */
  readonly pmBase?: number;
  /** SLP_TYP of \_S5_; default PlatformPorts.s5SlpTyp (5). */
  readonly s5SlpTyp?: number;
  /** FADT RESET_REG; default port 0xCF9, value 0x06; null for none. */
  readonly reset?: { readonly port: number; readonly value: number } | null;
  /** IAPC_BOOT_ARCH: an 8042 keyboard controller (default true). */
  readonly i8042?: boolean;
  /** IAPC_BOOT_ARCH: VGA present (default false: VGA_NOT_PRESENT is set). */
  readonly vga?: boolean;
  /** IAPC_BOOT_ARCH: MSI supported (default true: MSI_NOT_SUPPORTED clear). */
  readonly msi?: boolean;
  /**
   * A CMOS RTC at ports 0x70/0x71 with its century byte at 0x32 (default
   * true). False sets IAPC_BOOT_ARCH.CMOS_RTC_NOT_PRESENT and CENTURY 0.
   */
  readonly cmosRtc?: boolean;
  /** Declare \_SB_.PCI0 in the DSDT (default true). */
  readonly pciHostBridge?: boolean;
  /** PCI INTx wiring the DSDT describes (_PRT and interrupt links); the MP table gets the same. */
  readonly pciIntx?: readonly PciIntxRoute[];
  /** The pvpanic device's port for the DSDT (default 0x505); null for none. */
  readonly pvpanicPort?: number | null;
  readonly ids?: SdtIds;
  /** Region for the tables; default 0xE0000-0xF0000. The RSDP comes first, so `base` must be where the OS scans. */
  readonly base?: number;
  readonly limit?: number;
}

/**
 * What the firmware tables say about the platform's devices, built from
 * the devices the VM declares (vm/device-specs.ts, describeDevices): the
 * ACPI PM block and its SCI, the reset register, the 8042, the RTC, the
 * PCI host bridge and pvpanic. Left out: the table defaults.
 */
export type PlatformDescription = Pick<AcpiConfig, 'pmBase' | 'sciIrq' | 's5SlpTyp' | 'reset' | 'i8042' | 'cmosRtc' | 'pciHostBridge' | 'pvpanicPort'>;

export interface AcpiTableInfo {
  readonly signature: string;
  readonly address: number;
  readonly length: number;
}

export interface AcpiTables {
  /** Address of the RSDP: boot_params.acpi_rsdp_addr. */
  readonly rsdp: number;
  /** Every structure placed, RSDP first. */
  readonly tables: readonly AcpiTableInfo[];
  /** The bytes of [base, end): what `writeAcpiTables` copies. */
  readonly image: Uint8Array;
  readonly base: number;
  readonly end: number;
}

/** The IAPC_BOOT_ARCH value for a config. */
export function iapcBootArch(config: Pick<AcpiConfig, 'i8042' | 'vga' | 'msi' | 'cmosRtc'>): number {
  return (
    IapcBootArch.LEGACY_DEVICES | // COM1 and the PM block are ISA/LPC-style devices
    ((config.i8042 ?? true) ? IapcBootArch.I8042 : 0) |
    ((config.vga ?? false) ? 0 : IapcBootArch.VGA_NOT_PRESENT) |
    ((config.msi ?? true) ? 0 : IapcBootArch.MSI_NOT_SUPPORTED) |
    ((config.cmosRtc ?? true) ? 0 : IapcBootArch.CMOS_RTC_NOT_PRESENT)
  );
}

/** The tables that point nowhere, and the FADT once the DSDT's and FACS's addresses are known. */
export interface AcpiContents {
  readonly ids: SdtIds;
  readonly facs: Uint8Array;
  readonly madt: Uint8Array;
  readonly dsdt: Uint8Array;
  fadt(dsdtAddress: number, facsAddress: number): Uint8Array;
}

/** Builds the contents of every table for `config`; where they go is the caller's business. */
export function acpiContents(config: AcpiConfig): AcpiContents {
  const ids = config.ids ?? DEFAULT_SDT_IDS;
  const sciIrq = config.sciIrq ?? PlatformPorts.sciIrq;
  const pmBase = config.pmBase ?? PlatformPorts.acpiPm;
  const madt = buildMadt({
    cpus: config.cpus,
    apicIds: config.apicIds,
    lapicAddress: config.lapicAddress ?? LAPIC_DEFAULT_BASE,
    ioapicId: config.ioapicId ?? 0,
    ioapicAddress: config.ioapicAddress ?? IOAPIC_BASE,
    overrides: firmwareIsaOverrides(sciIrq, config.isaOverrides ?? DEFAULT_ISA_OVERRIDES),
    ids,
  });
  const dsdt = buildDsdt({ s5SlpTyp: config.s5SlpTyp ?? PlatformPorts.s5SlpTyp, pciHostBridge: config.pciHostBridge ?? true, pciIntx: config.pciIntx, pvpanicPort: config.pvpanicPort === null ? undefined : (config.pvpanicPort ?? PVPANIC_PORT), ids });
  const fadt = (dsdtAddress: number, facsAddress: number): Uint8Array =>
    buildFadt({
      dsdtAddress,
      facsAddress,
      sciIrq,
      pm1aEvtBlk: pmBase + PM1A_STS,
      pm1aCntBlk: pmBase + PM1A_CNT,
      pmTmrBlk: pmBase + PM_TMR,
      pm1EvtLen: PM1_EVT_LEN,
      pm1CntLen: PM1_CNT_LEN,
      pmTmrLen: PM_TMR_LEN,
      reset: config.reset === undefined ? { port: RESET_PORT, value: RESET_VALUE } : config.reset,
      iapcBootArch: iapcBootArch(config),
      century: (config.cmosRtc ?? true) ? CMOS_CENTURY_INDEX : 0,
      ids,
    });
  return { ids, facs: buildFacs(), madt, dsdt, fadt };
}

/**
 * Builds every table and lays them out from `base`, without touching guest
 * RAM. Throws RangeError if they do not fit below `limit`.
 */
export function layoutAcpiTables(config: AcpiConfig): AcpiTables {
  const base = config.base ?? ACPI_REGION_START;
  const limit = config.limit ?? ACPI_REGION_END;
  if (base % ACPI_TABLE_ALIGNMENT !== 0) throw new RangeError(`the ACPI region must start 16-byte aligned (got ${hex(base)})`);
  const { ids, facs, madt, dsdt, fadt: buildFadtAt } = acpiContents(config);

  // Every size is known before the pointers are: place, then build the pointing tables.
  let next = base;
  const reserve = (length: number, alignment = ACPI_TABLE_ALIGNMENT): number => {
    const address = alignUp(next, alignment);
    next = address + length;
    return address;
  };
  const xsdtEntries = 2; // FADT, MADT
  const rsdpAddr = reserve(RSDP_SIZE);
  const xsdtAddr = reserve(SDT_HEADER_SIZE + 8 * xsdtEntries);
  const fadtAddr = reserve(FADT_SIZE);
  const facsAddr = reserve(facs.length, FACS_ALIGNMENT);
  const madtAddr = reserve(madt.length);
  const dsdtAddr = reserve(dsdt.length);

  const fadt = buildFadtAt(dsdtAddr, facsAddr);
  const placed: { signature: string; address: number; bytes: Uint8Array }[] = [
    { signature: 'RSD PTR ', address: rsdpAddr, bytes: buildRsdp(xsdtAddr, ids.oemId) },
    { signature: 'XSDT', address: xsdtAddr, bytes: buildXsdt([fadtAddr, madtAddr], ids) },
    { signature: 'FACP', address: fadtAddr, bytes: fadt },
    { signature: 'FACS', address: facsAddr, bytes: facs },
    { signature: 'APIC', address: madtAddr, bytes: madt },
    { signature: 'DSDT', address: dsdtAddr, bytes: dsdt },
  ];

  if (next > limit) {
    throw new RangeError(`the ACPI tables need ${next - base} bytes from ${hex(base)}, past the region's end ${hex(limit)} (too many vCPUs for the BIOS area?)`);
  }
  const image = new Uint8Array(next - base);
  for (const p of placed) image.set(p.bytes, p.address - base);
  return {
    rsdp: rsdpAddr,
    tables: placed.map((p) => ({ signature: p.signature, address: p.address, length: p.bytes.length })),
    image,
    base,
    end: next,
  };
}

/**
 * Builds the tables, writes them into guest RAM and returns where they went;
 * `.rsdp` is what boot_params.acpi_rsdp_addr takes.
 */
export function buildAcpiTables(mem: GuestMemory, config: AcpiConfig): AcpiTables {
  const tables = layoutAcpiTables(config);
  mem.write(tables.base, tables.image);
  return tables;
}
