import type { StopReason, VmControl } from '../../devices/device.js';
import type { VmControlBlock } from '../../vcpu/control.js';

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
