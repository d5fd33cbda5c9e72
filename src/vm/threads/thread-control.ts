import type { StopReason, VmControl } from '../../devices/device.js';
import { VmControlBlock } from '../../vcpu/control.js';
import { VmClock } from '../../sync/vm-clock.js';
import { irqchipViews, type IrqchipState, type IrqchipThreadOptions, type IrqchipViews } from '../irqchip.js';

export type LogLevel = 'info' | 'warn' | 'error';

/** What every VM thread may tell the main thread, besides messages of its own kind. */
export type ThreadReport = { type: 'stop'; reason: StopReason } | { type: 'log'; level: LogLevel; message: string };

/**
 * The `VmControl` of a thread other than the main one: a stop request and
 * log lines go to the main thread through `post`.
 *
 * With `control` (vCPU and device-timer threads), the thread claims the
 * stop itself and wakes every vCPU, so the VM stops at once; its report,
 * posted before the thread says it exited, carries the reason the main
 * thread records. Without it (I/O threads, whose end the main thread does
 * not wait for before tearing the VM down), the thread only asks, and the
 * main thread claims the stop when the report arrives, so the reason is
 * never lost to a teardown that started first.
 */
export function threadVmControl(post: (m: ThreadReport) => void, control?: VmControlBlock): VmControl {
  return {
    requestStop(reason: StopReason): void {
      if (!control) return post({ type: 'stop', reason });
      if (control.claimStop()) post({ type: 'stop', reason });
      control.wakeAll();
    },
    log(level: LogLevel, message: string): void {
      post({ type: 'log', level, message });
    },
  };
}

/** What every VM thread's worker data carries of the VM's shared state. */
export interface SharedThreadData {
  readonly vmFd: number;
  readonly control: SharedArrayBuffer;
  /** The VM clock (sync/vm-clock.ts), held while the VM is paused. */
  readonly clock: SharedArrayBuffer;
  readonly irqchipState: IrqchipState;
}

export interface ThreadContext {
  readonly control: VmControlBlock;
  readonly clock: VmClock;
  /** This thread's irqchip views, waking vCPUs through `control` (`extra`: what only some threads give). */
  irqchipViews(extra?: Omit<IrqchipThreadOptions, 'vmFd' | 'clock' | 'wake'>): IrqchipViews;
}

/** The one way a thread rebuilds its view of the VM from worker data: control block, VM clock, irqchip views. */
export function threadContext(d: SharedThreadData, vcpus: number): ThreadContext {
  const control = new VmControlBlock(d.control, vcpus);
  const clock = new VmClock(d.clock);
  return { control, clock, irqchipViews: (extra = {}) => irqchipViews(d.irqchipState, { vmFd: d.vmFd, clock, wake: (i) => control.wake(i), ...extra }) };
}
