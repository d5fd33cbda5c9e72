/**
 * Recording test doubles for device tests: IRQ lines and VM control that
 * remember what a device did to them, and a factory for the DeviceHost a
 * device is constructed with.
 */
import { expect } from 'chai';
import type { DeviceHost, IrqLines, StopReason, VmControl } from '../../src/devices/device.js';
import { FakeClock } from '../../src/sync/clock.js';

/** IRQ lines that record every setLevel call until taken. */
export class RecordingIrq implements IrqLines {
  private events: Array<[number, boolean]> = [];

  /**
   * @param gsi The one IRQ the device under test should drive; `take()` and
   *   `pulses()` check every recorded call against it. Leave it out for a
   *   device with several lines, and read them with `takeEvents()`.
   */
  constructor(readonly gsi?: number) {}

  setLevel(gsi: number, high: boolean): void {
    this.events.push([gsi, high]);
  }

  /** Every (gsi, level) pair driven since the last take, unchecked. */
  takeEvents(): Array<[number, boolean]> {
    const events = this.events;
    this.events = [];
    return events;
  }

  /** The levels driven since the last take; fails on any other IRQ than `gsi`. */
  take(): boolean[] {
    const expected = this.gsi;
    if (expected === undefined) throw new Error('RecordingIrq.take() needs the IRQ it expects: construct it with one, or use takeEvents()');
    const events = this.takeEvents();
    for (const [gsi] of events) expect(gsi).to.equal(expected);
    return events.map(([, high]) => high);
  }

  /** Pulses (high then low) driven since the last take; fails on anything else. */
  pulses(): number {
    const levels = this.take();
    expect(levels.length % 2, `levels ${levels.join(',')}`).to.equal(0);
    for (let i = 0; i < levels.length; i += 2) expect([levels[i], levels[i + 1]]).to.deep.equal([true, false]);
    return levels.length / 2;
  }
}

/** VM control that records stop requests and log lines. */
export class RecordingVm implements VmControl {
  readonly stops: StopReason[] = [];
  readonly logs: Array<[string, string]> = [];
  requestStop(reason: StopReason): void {
    this.stops.push(reason);
  }
  log(level: 'info' | 'warn' | 'error', message: string): void {
    this.logs.push([level, message]);
  }
}

export interface TestDeviceHost<I extends IrqLines> {
  host: DeviceHost;
  irq: I;
  vm: RecordingVm;
  clock: FakeClock;
}

interface ClockOptions {
  /** A clock to share with another view; a new FakeClock when left out. */
  clock?: FakeClock;
  /** Where a new FakeClock starts (ignored when `clock` is given); 0 when left out. */
  startNs?: number;
}

/**
 * A DeviceHost with a fresh RecordingVm. The IRQ lines are a new
 * RecordingIrq expecting `gsi`, or the `irq` given (another view's
 * RecordingIrq, or noIrqLines for a device without an interrupt).
 */
export function deviceHost(options?: ClockOptions & { gsi?: number }): TestDeviceHost<RecordingIrq>;
export function deviceHost<I extends IrqLines>(options: ClockOptions & { irq: I }): TestDeviceHost<I>;
export function deviceHost(options: ClockOptions & { gsi?: number; irq?: IrqLines } = {}): TestDeviceHost<IrqLines> {
  const irq = options.irq ?? new RecordingIrq(options.gsi);
  const vm = new RecordingVm();
  const clock = options.clock ?? new FakeClock(options.startNs);
  return { host: { irq, vm, clock }, irq, vm, clock };
}
