import { PCI_HOLE_START, HIGH_RAM_START } from './layout.js';

export const E820_RAM = 1;
export const E820_RESERVED = 2;
export const E820_ACPI = 3;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/** Conventional memory ends here; the extended BIOS data area follows. */
export const EBDA_START = 0x9fc00;
/** The BIOS ROM area where firmware tables (MP, ACPI RSDP) are searched for. */
export const BIOS_AREA_START = 0xe0000;
export const BIOS_AREA_END = 0x100000;

/**
 * The e820 map a PC firmware would report for `ramSize` bytes laid out as in
 * layout.ts: low RAM minus the EBDA and the legacy VGA/BIOS window, the BIOS
 * area reserved for firmware tables, high RAM above 4 GiB.
 */
export function e820Map(ramSize: number): E820Entry[] {
  const low = Math.min(ramSize, PCI_HOLE_START);
  const map: E820Entry[] = [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: 0xa0000 - EBDA_START, type: E820_RESERVED },
    { addr: BIOS_AREA_START, size: BIOS_AREA_END - BIOS_AREA_START, type: E820_RESERVED },
  ];
  if (low > BIOS_AREA_END) map.push({ addr: BIOS_AREA_END, size: low - BIOS_AREA_END, type: E820_RAM });
  if (ramSize > low) map.push({ addr: HIGH_RAM_START, size: ramSize - low, type: E820_RAM });
  return map;
}
