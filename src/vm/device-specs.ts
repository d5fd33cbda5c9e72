import type { Bus } from '../devices/bus.js';
import type { BusDevice, DeviceHost } from '../devices/device.js';
import { isTimedDevice } from '../devices/device.js';
import { notifyingTimer, type TimerWake } from './timer-wake.js';
import { DebugExit } from '../devices/debug-exit.js';
import { PostCode } from '../devices/post-code.js';
import { Uart16550, UART_PORT_COUNT, type Uart16550State } from '../devices/uart16550.js';
import { AcpiPm, ACPI_PM_LENGTH, type AcpiPmState } from '../devices/acpi-pm.js';

/**
 * Devices described as plain data, so the main thread can send them to every
 * vCPU worker, where `attachDevices` builds that thread's views over the
 * same shared state.
 */
export type DeviceSpec =
  | { kind: 'debug-exit'; port: number }
  | { kind: 'post-code'; port: number }
  | { kind: 'uart16550'; port: number; irq: number; state: Uart16550State }
  | { kind: 'acpi-pm'; port: number; sciIrq: number; s5SlpTyp: number; state: AcpiPmState };

/**
 * Builds this thread's views of `specs` and attaches them to `bus`; returns
 * the device objects. With `timerWake`, writes to time-driven devices wake
 * the device-timer thread so it sees their new deadlines at once.
 */
export function attachDevices(bus: Bus, specs: readonly DeviceSpec[], host: DeviceHost, timerWake?: TimerWake): object[] {
  const devices: object[] = [];
  const add = (port: number, length: number, device: BusDevice): void => {
    devices.push(device);
    bus.attachPio(port, length, timerWake && isTimedDevice(device) ? notifyingTimer(device, timerWake) : device);
  };
  for (const spec of specs) {
    switch (spec.kind) {
      case 'debug-exit':
        add(spec.port, 1, new DebugExit(host.vm));
        break;
      case 'post-code':
        add(spec.port, 1, new PostCode());
        break;
      case 'uart16550':
        add(spec.port, UART_PORT_COUNT, new Uart16550(spec.state, host, { irq: spec.irq }));
        break;
      case 'acpi-pm':
        add(spec.port, ACPI_PM_LENGTH, new AcpiPm(spec.state, host, { sciIrq: spec.sciIrq, s5SlpTyp: spec.s5SlpTyp }));
        break;
    }
  }
  return devices;
}
