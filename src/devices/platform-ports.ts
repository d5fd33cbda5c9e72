import { ACPI_PM_LENGTH } from './acpi-pm.js';

/**
 * Where the PC platform's fixed devices live: the VM attaches them here and
 * the firmware tables (MP table, ACPI) describe the same, from this one
 * declaration.
 */
export const PlatformPorts = {
  com1: 0x3f8,
  com1Irq: 4,
  acpiPm: 0x600,
  acpiPmLength: ACPI_PM_LENGTH,
  sciIrq: 9,
  /** SLP_TYP value the DSDT's \_S5 object names for soft-off. */
  s5SlpTyp: 5,
  postCode: 0x80,
  kbcData: 0x60,
  kbcCommand: 0x64,
  pciConfig: 0xcf8,
} as const;
