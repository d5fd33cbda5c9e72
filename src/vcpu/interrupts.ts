import type { RunPage } from './run-page.js';

/**
 * How a vCPU's run loop takes interrupts: the policy differs per irqchip mode
 * (our LAPIC in userspace, or KVM's). The loop calls these around KVM_RUN.
 */
export interface VcpuInterrupts {
  /** Before each KVM_RUN: inject what is deliverable, or ask for a window. */
  beforeRun(run: RunPage): void;
  /** True while something should end a HLT. */
  hasPending(): boolean;
  /** Milliseconds until a timer needs servicing; Infinity if none is armed. */
  msUntilTimer(): number;
  /** Services expired timers (called after every park). */
  poll(): void;
  /** A WRMSR/RDMSR exit this chip handles; false if it does not own `index`. */
  msr?(run: RunPage, write: boolean, index: number): boolean;
  /** KVM_EXIT_IOAPIC_EOI (split irqchip mode). */
  eoi?(vector: number): void;
}

/** For guests that take no interrupts from us (the in-kernel irqchip delivers its own). */
export const noInterrupts: VcpuInterrupts = {
  beforeRun() {},
  hasPending: () => false,
  msUntilTimer: () => Infinity,
  poll() {},
};
