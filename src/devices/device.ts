import type { Clock } from '../sync/clock.js';

/** Width of one port or MMIO access, in bytes. Wider MMIO is split by the bus. */
export type AccessSize = 1 | 2 | 4;

/**
 * A device as the bus sees it: reads and writes at an offset relative to the
 * base it was attached at, made by vCPU `vcpu`. Device instances are per
 * thread; state that several threads touch lives in shared memory behind
 * them, so the same device can be attached in every vCPU worker.
 */
export interface BusDevice {
  readonly name: string;
  read(offset: number, size: AccessSize, vcpu: number): number;
  write(offset: number, size: AccessSize, value: number, vcpu: number): void;
}

/** Interrupt lines as devices drive them: by level, like real wires. */
export interface IrqLines {
  /** Drives `gsi` high or low. An edge-triggered input fires on low-to-high. */
  setLevel(gsi: number, high: boolean): void;
}

/** An `IrqLines` that goes nowhere, for models tested without an irqchip. */
export const noIrqLines: IrqLines = { setLevel() {} };

/** Why a VM stops; the CLI prints it and maps it to an exit status. */
export type StopReason =
  | { kind: 'poweroff' }
  | { kind: 'reset' }
  | { kind: 'debug-exit'; code: number }
  /** `detail`: the kernel's panic line, where the console showed one. */
  | { kind: 'panic'; detail?: string }
  | { kind: 'triple-fault'; vcpu: number; detail: string }
  /** The firmware tried every boot device and none booted (it then resets); `detail`: what it said about each. */
  | { kind: 'no-boot-device'; detail: string }
  | { kind: 'error'; vcpu: number; detail: string }
  | { kind: 'stopped' };

/** What a device may ask of the VM it lives in. */
export interface VmControl {
  /** Ends the VM (all vCPUs stop); the first request wins. */
  requestStop(reason: StopReason): void;
  /** A diagnostic line for the user (rate-limited by callers). */
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** Text the guest wrote to the debug console (port 0x402), a line or less at a time. */
  debugOutput?(bytes: Uint8Array): void;
}

/** Everything a device needs from the thread it is attached in. */
export interface DeviceHost {
  readonly irq: IrqLines;
  readonly vm: VmControl;
  readonly clock: Clock;
}

/**
 * A device with time-driven behaviour (PIT, RTC): it has no timers of its
 * own; the VM's device-timer thread sleeps until the earliest deadline and
 * calls `poll()`. Both may be called from any thread.
 */
export interface TimedDevice {
  /** When `poll` next has work, in `Clock` ns; Infinity if nothing is due. */
  nextDeadlineNs(): number;
  /** Fires whatever is due now (drives IRQ lines, re-arms). */
  poll(): void;
}

export const isTimedDevice = (d: object): d is TimedDevice & object =>
  typeof (d as Partial<TimedDevice>).nextDeadlineNs === 'function' && typeof (d as Partial<TimedDevice>).poll === 'function';
