import type { RunPage } from './run-page.js';

/**
 * How a vCPU's run loop takes interrupts: the policy differs per irqchip mode
 * (our LAPIC in userspace, or KVM's). The loop calls these around KVM_RUN.
 */
export interface VcpuInterrupts {
  /**
   * Before each KVM_RUN: handle INIT/SIPI/NMI, arm the timer, inject what is
   * deliverable or ask for an interrupt window. False while the vCPU must not
   * run (waiting for a SIPI); the loop then parks until `hasPending`.
   */
  beforeRun(run: RunPage): boolean;
  /** True while something should end a HLT (or a wait for SIPI). */
  hasPending(): boolean;
  /** Milliseconds until a timer needs servicing; Infinity if none is armed. */
  msUntilTimer(): number;
  /** Services expired timers (called after every park). */
  poll(): void;
  /** After each exit: pick up state the guest changed without an exit of ours (CR8). */
  afterRun?(run: RunPage): void;
  /** KVM itself blocks halted vCPUs (in-kernel LAPIC): re-enter instead of parking. */
  readonly haltInKernel: boolean;
  /** A WRMSR/RDMSR exit this chip handles; false if it does not own `index`. */
  msr?(run: RunPage, write: boolean, index: number): boolean;
  /** KVM_EXIT_IOAPIC_EOI (split irqchip mode). */
  eoi?(vector: number): void;
  /** The VM is pausing: nothing of this vCPU's may fire until `resume`. */
  pause?(): void;
  resume?(): void;
}

/** For guests whose interrupts KVM's in-kernel irqchip delivers. */
export const kernelInterrupts: VcpuInterrupts = {
  beforeRun: () => true,
  hasPending: () => false,
  msUntilTimer: () => Infinity,
  poll() {},
  haltInKernel: true,
};
