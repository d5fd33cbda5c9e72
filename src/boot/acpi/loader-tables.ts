/**
 * The ACPI tables as firmware takes them from fw_cfg: two files and a
 * linker/loader script (table-loader.ts), as QEMU hands them to SeaBIOS.
 *
 *   etc/acpi/rsdp    the RSDP, allocated in the F segment where an OS scans
 *   etc/acpi/tables  XSDT, FADT, FACS (64-byte aligned), MADT, DSDT
 *
 * Every pointer field holds the target's offset inside `etc/acpi/tables`;
 * the script's ADD_POINTER commands add the file's final address to it,
 * then ADD_CHECKSUM commands recompute each checksum over the patched
 * bytes. The FACS has no checksum.
 */
import { alignUp } from '../bytes.js';
import { acpiContents, ACPI_TABLE_ALIGNMENT, type AcpiConfig } from './tables.js';
import { buildRsdp, RsdpOffset, RSDP_SIZE, RSDP_V1_SIZE } from './rsdp.js';
import { buildXsdt } from './xsdt.js';
import { FACS_ALIGNMENT } from './facs.js';
import { SDT_HEADER_SIZE, SdtOffset } from './sdt.js';
import { encodeLoader, type LoaderEntry } from './table-loader.js';

export const ACPI_RSDP_FILE = 'etc/acpi/rsdp';
export const ACPI_TABLES_FILE = 'etc/acpi/tables';
export const TABLE_LOADER_FILE = 'etc/table-loader';

/** FADT pointer fields (ACPI 6.x table 5-34). */
export const FadtPointer = { firmwareCtrl: 36, dsdt: 40, xFirmwareCtrl: 132, xDsdt: 140 } as const;

export interface LoaderTables {
  readonly rsdp: Uint8Array;
  readonly tables: Uint8Array;
  readonly loader: Uint8Array;
  /** Each table's offset in `tables`, by signature. */
  readonly offsets: Readonly<Record<'XSDT' | 'FACP' | 'FACS' | 'APIC' | 'DSDT', number>>;
}

export function buildLoaderTables(config: AcpiConfig): LoaderTables {
  const { ids, facs, madt, dsdt, fadt } = acpiContents(config);
  let next = 0;
  const reserve = (length: number, alignment = ACPI_TABLE_ALIGNMENT): number => {
    const at = alignUp(next, alignment);
    next = at + length;
    return at;
  };
  const xsdtTargets = 2; // FADT, MADT
  const xsdtAt = reserve(SDT_HEADER_SIZE + 8 * xsdtTargets);
  const fadtBytes = fadt(0, 0); // sized first; rebuilt with offsets below
  const fadtAt = reserve(fadtBytes.length);
  const facsAt = reserve(facs.length, FACS_ALIGNMENT);
  const madtAt = reserve(madt.length);
  const dsdtAt = reserve(dsdt.length);
  const tables = new Uint8Array(next);
  tables.set(buildXsdt([fadtAt, madtAt], ids), xsdtAt);
  tables.set(fadt(dsdtAt, facsAt), fadtAt);
  tables.set(facs, facsAt);
  tables.set(madt, madtAt);
  tables.set(dsdt, dsdtAt);
  const rsdp = buildRsdp(xsdtAt, ids.oemId);

  const pointer = (dest: string, offset: number, size: 4 | 8): LoaderEntry => ({ command: 'add-pointer', dest, src: ACPI_TABLES_FILE, offset, size });
  const checksum = (file: string, start: number, length: number, offset = start + SdtOffset.checksum): LoaderEntry => ({ command: 'add-checksum', file, offset, start, length });
  const entries: LoaderEntry[] = [
    { command: 'allocate', file: ACPI_TABLES_FILE, align: FACS_ALIGNMENT, zone: 'high' },
    { command: 'allocate', file: ACPI_RSDP_FILE, align: 16, zone: 'fseg' },
    ...Array.from({ length: xsdtTargets }, (_, i) => pointer(ACPI_TABLES_FILE, xsdtAt + SDT_HEADER_SIZE + 8 * i, 8)),
    pointer(ACPI_TABLES_FILE, fadtAt + FadtPointer.firmwareCtrl, 4),
    pointer(ACPI_TABLES_FILE, fadtAt + FadtPointer.dsdt, 4),
    pointer(ACPI_TABLES_FILE, fadtAt + FadtPointer.xFirmwareCtrl, 8),
    pointer(ACPI_TABLES_FILE, fadtAt + FadtPointer.xDsdt, 8),
    pointer(ACPI_RSDP_FILE, RsdpOffset.xsdtAddress, 8),
    checksum(ACPI_TABLES_FILE, xsdtAt, SDT_HEADER_SIZE + 8 * xsdtTargets),
    checksum(ACPI_TABLES_FILE, fadtAt, fadtBytes.length),
    checksum(ACPI_TABLES_FILE, madtAt, madt.length),
    checksum(ACPI_TABLES_FILE, dsdtAt, dsdt.length),
    checksum(ACPI_RSDP_FILE, 0, RSDP_V1_SIZE, RsdpOffset.checksum),
    checksum(ACPI_RSDP_FILE, 0, RSDP_SIZE, RsdpOffset.extendedChecksum),
  ];
  return { rsdp, tables, loader: encodeLoader(entries), offsets: { XSDT: xsdtAt, FACP: fadtAt, FACS: facsAt, APIC: madtAt, DSDT: dsdtAt } };
}
