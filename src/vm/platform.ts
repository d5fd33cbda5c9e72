import type { Uart16550State } from '../devices/uart16550.js';
import type { AcpiPmState } from '../devices/acpi-pm.js';
import { ACPI_PM_LENGTH } from '../devices/acpi-pm.js';
import type { DeviceSpec } from './device-specs.js';

/** Where the PC platform's fixed devices live; firmware tables describe the same. */
export const PlatformPorts = {
  com1: 0x3f8,
  com1Irq: 4,
  acpiPm: 0x600,
  acpiPmLength: ACPI_PM_LENGTH,
  sciIrq: 9,
  /** SLP_TYP value the DSDT's \_S5 object names for soft-off. */
  s5SlpTyp: 5,
  postCode: 0x80,
} as const;

export function platformDevices(state: { uart: Uart16550State; acpi: AcpiPmState }): DeviceSpec[] {
  return [
    { kind: 'uart16550', port: PlatformPorts.com1, irq: PlatformPorts.com1Irq, state: state.uart },
    { kind: 'acpi-pm', port: PlatformPorts.acpiPm, sciIrq: PlatformPorts.sciIrq, s5SlpTyp: PlatformPorts.s5SlpTyp, state: state.acpi },
    { kind: 'post-code', port: PlatformPorts.postCode },
  ];
}
