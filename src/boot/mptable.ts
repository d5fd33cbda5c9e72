/**
 * The Intel MultiProcessor Specification 1.4 tables (May 1997): the MP
 * floating pointer structure (§4.1) and the MP configuration table (§4.2,
 * base entries §4.3). Linux uses them only when there is no ACPI MADT (or
 * with acpi=off), but still finds CPUs and the IOAPIC from them in that case.
 *
 * Entries come sorted by type as §4.3 requires: processors, buses, the
 * IOAPIC, I/O interrupt assignments, local interrupt assignments.
 *
 * Limit: processor entries hold an 8-bit APIC ID and 0xFF means "all local
 * APICs", so MP tables describe at most 255 CPUs with APIC IDs 0-254. For
 * more, or higher IDs (a topology whose IDs leave gaps), the VMM must skip
 * the MP table (`mpTableFits`) and rely on the ACPI MADT with x2APIC
 * entries alone.
 */
import { intiFlags, isaRoutes, ISA_IRQS, type IsaIrqOverride } from '../irqchip/irq-router.js';
import { IOAPIC_BASE, IOAPIC_VERSION } from '../irqchip/ioapic.js';
import { LAPIC_DEFAULT_BASE, LAPIC_VERSION } from '../irqchip/lapic-regs.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { ByteWriter, setChecksum8 } from './bytes.js';
import { cpuApicIds } from './cpu-apic-ids.js';
import { checkPciIntx, firmwareIsaOverrides, type PciIntxRoute } from './irq-routing.js';

/** Where the floating pointer goes: the start of the BIOS ROM area Linux scans (0xF0000-0xFFFFF). */
export const MP_FLOATING_ADDR = 0xf0000;
export const MP_MAX_CPUS = 255;
export const MP_SPEC_REV = 4; // 1.4

export const MP_FLOATING_SIZE = 16;

/** Entry types (§4.3, table 4-3). */
export const MpEntry = { Processor: 0, Bus: 1, IoApic: 2, IoInterrupt: 3, LocalInterrupt: 4 } as const;
/** Interrupt types of I/O and local interrupt entries (§4.3.4, table 4-10). */
export const MpIntType = { INT: 0, NMI: 1, SMI: 2, ExtINT: 3 } as const;
/** Processor entry CPU flags (§4.3.1). */
export const MpCpuFlags = { EN: 1 << 0, BP: 1 << 1 } as const;
/** Bus IDs we assign: PCI bus 0 keeps ID 0, ISA follows. */
export const MP_PCI_BUS_ID = 0;
export const MP_ISA_BUS_ID = 1;
/** Destination "all local APICs" of local interrupt entries (§4.3.5). */
export const MP_ALL_APICS = 0xff;
/** PCI INTx lines: level-triggered, active high (see irq-routing.ts on polarity). */
export const MP_PCI_INT_FLAGS = intiFlags({ polarity: 'active-high', trigger: 'level' });

export interface MpTableConfig {
  /** vCPUs; vCPU 0 is the bootstrap processor. At most 255. */
  readonly cpus: number;
  /** vCPU i's APIC ID (default i); each at most 254. */
  readonly apicIds?: readonly number[];
  /** CPUID.1:EAX (stepping, model, family) for processor entries; default 0. */
  readonly cpuSignature?: number;
  /** CPUID.1:EDX for processor entries; default 0. */
  readonly featureFlags?: number;
  /** IOAPIC ID; default 0, the ID register's reset value in our model. */
  readonly ioapicId?: number;
  readonly ioapicAddress?: number;
  readonly lapicAddress?: number;
  /** ISA overrides to describe; default `firmwareIsaOverrides()` (IRQ 0 -> pin 2, SCI level/high). */
  readonly overrides?: readonly IsaIrqOverride[];
  /** PCI INTx wiring on bus 0, each to an IOAPIC pin 16-23. */
  readonly pciIntx?: readonly PciIntxRoute[];
  /** 8-character OEM ID and 12-character product ID (space-padded). */
  readonly oemId?: string;
  readonly productId?: string;
}

/** True if an MP table can describe `cpus` processors (with APIC IDs `apicIds`, default 0 to cpus - 1). */
export function mpTableFits(cpus: number, apicIds?: readonly number[]): boolean {
  return cpus >= 1 && cpus <= MP_MAX_CPUS && (apicIds ?? []).every((id) => id < MP_ALL_APICS);
}

/**
 * The floating pointer and configuration table as one byte run, to be
 * placed at `floatingAddr` (16-byte aligned; the configuration table
 * follows it directly). Throws RangeError for more than 255 CPUs.
 */
export function buildMpTable(config: MpTableConfig, floatingAddr = MP_FLOATING_ADDR): Uint8Array {
  if (!Number.isInteger(config.cpus) || !mpTableFits(config.cpus, config.apicIds)) {
    throw new RangeError(`an MP table describes 1-${MP_MAX_CPUS} CPUs with APIC IDs below 255 (8-bit IDs, 0xff is broadcast), not ${config.cpus} with IDs up to ${Math.max(...cpuApicIds(config.cpus, config.apicIds))}: skip it and use ACPI`);
  }
  const ids = cpuApicIds(config.cpus, config.apicIds);
  if (floatingAddr % 16 !== 0) throw new RangeError('the MP floating pointer must be 16-byte aligned');
  const overrides = config.overrides ?? firmwareIsaOverrides();
  const pciIntx = config.pciIntx ?? [];
  checkPciIntx(pciIntx);
  const ioapicId = config.ioapicId ?? 0;
  const tableAddr = floatingAddr + MP_FLOATING_SIZE;

  const t = new ByteWriter(1024);
  // Configuration table header (§4.2, table 4-2); length, count and checksum patched below.
  t.ascii('PCMP', 4)
    .u16(0) // base table length
    .u8(MP_SPEC_REV)
    .u8(0) // checksum
    .ascii(config.oemId ?? 'NODEVISR', 8)
    .ascii(config.productId ?? 'NODEVISOR', 12)
    .u32(0) // OEM table pointer
    .u16(0) // OEM table size
    .u16(0) // entry count
    .u32(config.lapicAddress ?? LAPIC_DEFAULT_BASE)
    .u16(0) // extended table length
    .u8(0) // extended table checksum
    .u8(0);
  let entries = 0;

  // Processors (§4.3.1).
  const apicVersion = LAPIC_VERSION & 0xff;
  for (let cpu = 0; cpu < config.cpus; cpu++) {
    t.u8(MpEntry.Processor)
      .u8(ids[cpu]!)
      .u8(apicVersion)
      .u8(MpCpuFlags.EN | (cpu === 0 ? MpCpuFlags.BP : 0))
      .u32((config.cpuSignature ?? 0) >>> 0)
      .u32((config.featureFlags ?? 0) >>> 0)
      .zeros(8);
    entries++;
  }

  // Buses (§4.3.2), in ascending bus ID order.
  t.u8(MpEntry.Bus).u8(MP_PCI_BUS_ID).ascii('PCI', 6);
  t.u8(MpEntry.Bus).u8(MP_ISA_BUS_ID).ascii('ISA', 6);
  entries += 2;

  // The IOAPIC (§4.3.3): enabled, version 0x11.
  t.u8(MpEntry.IoApic)
    .u8(ioapicId)
    .u8(IOAPIC_VERSION & 0xff)
    .u8(1)
    .u32(config.ioapicAddress ?? IOAPIC_BASE);
  entries++;

  // I/O interrupt assignments (§4.3.4). Pin 0 is the 8259's INTR output
  // (ExtINT): virtual wire mode through the IOAPIC.
  const ioInt = (type: number, flags: number, bus: number, irq: number, pin: number): void => {
    t.u8(MpEntry.IoInterrupt).u8(type).u16(flags).u8(bus).u8(irq).u8(ioapicId).u8(pin);
    entries++;
  };
  ioInt(MpIntType.ExtINT, 0, MP_ISA_BUS_ID, 0, 0);
  const routes = isaRoutes(overrides);
  const flagsOf = new Map(overrides.map((o) => [o.isaIrq, intiFlags(o)]));
  for (let irq = 0; irq < ISA_IRQS; irq++) {
    const pin = routes[irq]!.ioapicPin;
    if (pin === null) continue; // the cascade IRQ 2, or an IRQ whose pin an override took
    ioInt(MpIntType.INT, flagsOf.get(irq) ?? 0, MP_ISA_BUS_ID, irq, pin);
  }
  for (const r of pciIntx) ioInt(MpIntType.INT, MP_PCI_INT_FLAGS, MP_PCI_BUS_ID, (r.device << 2) | r.pin, r.gsi);

  // Local interrupt assignments (§4.3.5): the 8259 on LINT0, NMI on LINT1, every local APIC.
  t.u8(MpEntry.LocalInterrupt).u8(MpIntType.ExtINT).u16(0).u8(MP_ISA_BUS_ID).u8(0).u8(MP_ALL_APICS).u8(0);
  t.u8(MpEntry.LocalInterrupt).u8(MpIntType.NMI).u16(0).u8(MP_ISA_BUS_ID).u8(0).u8(MP_ALL_APICS).u8(1);
  entries += 2;

  const baseLength = t.length;
  t.patchU16(4, baseLength);
  t.patchU16(34, entries);
  // No extended entries (§5): length 0, and the checksum of nothing is 0.
  const table = t.toBytes();
  setChecksum8(table, 7, 0, baseLength);

  // Floating pointer (§4.1, table 4-1): feature byte 1 = 0 (a configuration
  // table is present), byte 2 bit 7 (IMCRP) clear: virtual wire mode, no IMCR.
  const f = new ByteWriter(MP_FLOATING_SIZE);
  f.ascii('_MP_', 4).u32(tableAddr).u8(1).u8(MP_SPEC_REV).u8(0).u8(0).u8(0).zeros(3);
  const floating = f.toBytes();
  setChecksum8(floating, 10);

  const out = new Uint8Array(MP_FLOATING_SIZE + table.length);
  out.set(floating);
  out.set(table, MP_FLOATING_SIZE);
  return out;
}

export interface MpTablePlacement {
  readonly floating: number;
  readonly table: number;
  /** Bytes written from `floating`. */
  readonly length: number;
}

/** Builds the MP tables and writes them at `floatingAddr` (default 0xF0000). */
export function writeMpTable(mem: GuestMemory, config: MpTableConfig, floatingAddr = MP_FLOATING_ADDR): MpTablePlacement {
  const bytes = buildMpTable(config, floatingAddr);
  mem.write(floatingAddr, bytes);
  return { floating: floatingAddr, table: floatingAddr + MP_FLOATING_SIZE, length: bytes.length };
}
