/**
 * The Multiple APIC Description Table (ACPI 6.x §5.2.12, table 5-43),
 * revision 4 (ACPI 6.0-6.2), signature "APIC".
 *
 * - One processor entry per vCPU, in vCPU order (the BSP first), enabled,
 *   with the topology's APIC ID and ACPI processor UID = vCPU index. APIC
 *   IDs (and UIDs) below 255 use Processor Local APIC entries (type 0);
 *   255 and up use Processor Local x2APIC entries (type 9), as §5.2.12.12
 *   requires ("Logical processors with APIC ID values of 255 and greater
 *   ... shall use the Processor Local x2APIC structure").
 * - The IOAPIC with GSI base 0.
 * - Interrupt source overrides (type 2) for the ISA IRQs the router moves
 *   or gives non-default signalling: IRQ 0 -> GSI 2 and the SCI (level,
 *   active high: see ../irq-routing.ts).
 * - LINT1 of every processor is the NMI input: a Local APIC NMI entry (type
 *   4, UID 0xFF = all) and, when there are x2APIC processors, a Local x2APIC
 *   NMI entry (type 0xA, UID 0xFFFFFFFF = all).
 * - Flags: PCAT_COMPAT, there are 8259s (the OS masks them).
 */
import { intiFlags, type IsaIrqOverride } from '../../irqchip/irq-router.js';
import { ByteWriter } from '../bytes.js';
import { cpuApicIds } from '../cpu-apic-ids.js';
import { buildSdt, DEFAULT_SDT_IDS, type SdtIds } from './sdt.js';

export const MADT_REVISION = 4;
export const MADT_PCAT_COMPAT = 1 << 0;
/** Interrupt controller structure types (table 5-45). */
export const MadtEntry = {
  LocalApic: 0,
  IoApic: 1,
  InterruptSourceOverride: 2,
  LocalApicNmi: 4,
  LocalX2Apic: 9,
  LocalX2ApicNmi: 0xa,
} as const;
export const MadtEntrySize = { LocalApic: 8, IoApic: 12, InterruptSourceOverride: 10, LocalApicNmi: 6, LocalX2Apic: 16, LocalX2ApicNmi: 12 } as const;
/** Local APIC / x2APIC flags: Enabled (bit 0). */
export const MADT_CPU_ENABLED = 1 << 0;
/** APIC IDs from here on need x2APIC entries. */
export const X2APIC_ID_THRESHOLD = 255;
/** ISA bus in interrupt source overrides. */
export const MADT_BUS_ISA = 0;
/** The LINT input NMIs arrive on. */
export const NMI_LINT = 1;

export interface MadtConfig {
  /** vCPUs; vCPU i has processor UID i. */
  readonly cpus: number;
  /** vCPU i's APIC ID (default i). */
  readonly apicIds?: readonly number[];
  readonly lapicAddress: number;
  readonly ioapicId: number;
  readonly ioapicAddress: number;
  /** ISA interrupt source overrides, SCI included (`firmwareIsaOverrides()`). */
  readonly overrides: readonly IsaIrqOverride[];
  readonly ids?: SdtIds;
}

export function buildMadt(config: MadtConfig): Uint8Array {
  if (!Number.isInteger(config.cpus) || config.cpus < 1 || config.cpus > 0xfffffffe) throw new RangeError(`bad vCPU count ${config.cpus}`);
  const ids = cpuApicIds(config.cpus, config.apicIds);
  const w = new ByteWriter(44 + config.cpus * 16);
  w.u32(config.lapicAddress).u32(MADT_PCAT_COMPAT);

  // The type 0 entry's UID is a byte too, and 0xFF in it means "all processors".
  ids.forEach((id, cpu) => {
    if (id < X2APIC_ID_THRESHOLD && cpu < X2APIC_ID_THRESHOLD) {
      w.u8(MadtEntry.LocalApic).u8(MadtEntrySize.LocalApic).u8(cpu).u8(id).u32(MADT_CPU_ENABLED);
    } else {
      w.u8(MadtEntry.LocalX2Apic).u8(MadtEntrySize.LocalX2Apic).u16(0).u32(id).u32(MADT_CPU_ENABLED).u32(cpu);
    }
  });

  w.u8(MadtEntry.IoApic).u8(MadtEntrySize.IoApic).u8(config.ioapicId).u8(0).u32(config.ioapicAddress).u32(0);

  for (const o of config.overrides) {
    w.u8(MadtEntry.InterruptSourceOverride).u8(MadtEntrySize.InterruptSourceOverride).u8(MADT_BUS_ISA).u8(o.isaIrq).u32(o.gsi).u16(intiFlags(o));
  }

  // NMI on LINT1, flags 0 (conforming: edge, active high as the bus defines).
  w.u8(MadtEntry.LocalApicNmi).u8(MadtEntrySize.LocalApicNmi).u8(0xff).u16(0).u8(NMI_LINT);
  if (ids.some((id, cpu) => id >= X2APIC_ID_THRESHOLD || cpu >= X2APIC_ID_THRESHOLD)) {
    w.u8(MadtEntry.LocalX2ApicNmi).u8(MadtEntrySize.LocalX2ApicNmi).u16(0).u32(0xffffffff).u8(NMI_LINT).zeros(3);
  }
  return buildSdt('APIC', MADT_REVISION, w.toBytes(), config.ids ?? DEFAULT_SDT_IDS);
}
