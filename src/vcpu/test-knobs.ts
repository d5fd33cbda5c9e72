/**
 * Deliberate slow-downs that exist only so tests can prove that benchmarks
 * and A/B comparisons catch regressions. Every VM accepts them (VmOptions
 * `testKnobs`); a benchmark report that used any says so.
 */
export interface TestKnobs {
  /** Busy-wait this long on every IPI delivery (userspace irqchip). */
  ipiDelayUs?: number;
  /** Hold every virtio-blk request this long in its I/O thread (a slow disk). */
  blkDelayUs?: number;
  /** Make a virtio-blk I/O thread throw (a nodevisor bug) once this many requests have completed. */
  blkFailAfter?: number;
  /**
   * Busy-wait this long whenever a vCPU is kicked out of KVM_RUN (a slow
   * interrupt path): in `user` mode every LAPIC timer tick and interrupt
   * from another thread kicks, so a guest's time slices shrink.
   */
  kickDelayUs?: number;
}
