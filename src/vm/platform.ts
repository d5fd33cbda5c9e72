import { Uart16550 } from '../devices/uart16550.js';
import { AcpiPm } from '../devices/acpi-pm.js';
import { PlatformPorts } from '../devices/platform-ports.js';
import { I8254Pit, PIT_PORT, PIT_IRQ } from '../devices/i8254-pit.js';
import { CmosRtc, RTC_PORT, RTC_IRQ } from '../devices/cmos-rtc.js';
import { I8042 } from '../devices/i8042.js';
import { PciHost } from '../devices/pci-host.js';
import { ResetControl } from '../devices/reset-control.js';
import { DEBUG_EXIT_PORT } from '../devices/debug-exit.js';
import { PVPANIC_PORT } from '../devices/pvpanic.js';
import { PCI_HOLE_START } from '../memory/layout.js';
import { DEBUG_CONSOLE_PORT } from '../devices/debug-console.js';
import { FW_CFG_PORT, type FwCfgState } from '../devices/fw-cfg.js';
import { describeDevices, type DeviceSpec } from './device-specs.js';
import type { PlatformDescription } from '../boot/acpi/tables.js';
import type { PamSpec } from './firmware-memory.js';

export { PlatformPorts };

export interface PlatformConfig {
  ramSize: number;
  vcpus: number;
  /** Firmware boots: the fw_cfg device's contents, and the PAM registers' memory. */
  firmware?: { fwCfg: FwCfgState; pam: PamSpec };
}

/** The PC platform every VM gets, with fresh shared state. */
export function platformDevices(cfg: PlatformConfig): DeviceSpec[] {
  const below4G = Math.min(cfg.ramSize, PCI_HOLE_START);
  return [
    { kind: 'uart16550', port: PlatformPorts.com1, irq: PlatformPorts.com1Irq, state: Uart16550.allocate() },
    { kind: 'acpi-pm', port: PlatformPorts.acpiPm, sciIrq: PlatformPorts.sciIrq, s5SlpTyp: PlatformPorts.s5SlpTyp, state: AcpiPm.allocate() },
    { kind: 'pit', port: PIT_PORT, irq: PIT_IRQ, state: I8254Pit.allocate() },
    { kind: 'rtc', port: RTC_PORT, irq: RTC_IRQ, state: CmosRtc.allocate({ ramBelow4G: below4G, ramAbove4G: cfg.ramSize - below4G, cpus: cfg.vcpus }) },
    { kind: 'i8042', dataPort: PlatformPorts.kbcData, commandPort: PlatformPorts.kbcCommand, kbdIrq: 1, auxIrq: 12, state: I8042.allocate() },
    { kind: 'pci-host', port: PlatformPorts.pciConfig, state: PciHost.allocate(), reset: ResetControl.allocate(), ...(cfg.firmware ? { pam: cfg.firmware.pam } : {}) },
    { kind: 'post-code', port: PlatformPorts.postCode },
    { kind: 'debug-exit', port: DEBUG_EXIT_PORT },
    { kind: 'pvpanic', port: PVPANIC_PORT },
    { kind: 'debug-console', port: DEBUG_CONSOLE_PORT },
    ...(cfg.firmware ? [{ kind: 'fw-cfg', port: FW_CFG_PORT, state: cfg.firmware.fwCfg } as const] : []),
  ];
}

/**
 * What the firmware tables (MADT, FADT, DSDT) say about the platform of
 * `cfg`: read from the devices it declares. Firmware's additions (fw_cfg,
 * PAM) describe nothing there, so the firmware-less list serves both boots.
 */
export function platformDescription(cfg: Omit<PlatformConfig, 'firmware'>): PlatformDescription {
  return describeDevices(platformDevices(cfg));
}
