import type { KvmVcpu } from '../kvm/vcpu-fd.js';
import type { VmClock } from '../sync/vm-clock.js';

/**
 * Keeps the guest's TSC from jumping over a pause: on resume, the vCPU's
 * TSC offset goes back by the ticks of the time the VM clock was held.
 * Where KVM does not let us move the offset (software-virtualising hosts:
 * the guest reads the host's TSC), the TSC does jump; kvmclock, which Linux
 * keeps time with, is restored by the VM instead.
 */
export class PausedTsc {
  private heldAtPause = 0;
  private adjustable: boolean | undefined;
  private khz = 0;

  constructor(
    private readonly vcpu: KvmVcpu,
    private readonly clock: VmClock,
  ) {}

  pause(): void {
    this.heldAtPause = this.clock.heldNs;
  }

  resume(): void {
    const pausedNs = this.clock.heldNs - this.heldAtPause;
    if (pausedNs <= 0 || !this.canAdjust()) return;
    const ticks = BigInt(Math.round((pausedNs * this.khz) / 1e6));
    this.vcpu.setTscOffset(this.vcpu.tscOffset()! - ticks);
  }

  /** Whether KVM_VCPU_TSC_OFFSET exists here and takes effect (probed once). */
  private canAdjust(): boolean {
    if (this.adjustable !== undefined) return this.adjustable;
    this.adjustable = false;
    try {
      const offset = this.vcpu.tscOffset();
      if (offset === undefined) return false;
      this.vcpu.setTscOffset(offset - 1n);
      this.adjustable = this.vcpu.tscOffset() === offset - 1n;
      this.vcpu.setTscOffset(offset);
      this.khz = this.vcpu.tscKhz();
    } catch {
      this.adjustable = false;
    }
    return this.adjustable;
  }
}
