import type { KvmVcpu } from '../kvm/vcpu-fd.js';
import type { DualPic } from '../irqchip/pic.js';
import type { Ioapic } from '../irqchip/ioapic.js';
import { Stat } from './control.js';
import type { VcpuInterrupts } from './interrupts.js';
import { RunOff, type RunPage } from './run-page.js';

/**
 * `split` irqchip mode: KVM's LAPICs take IOAPIC messages as MSIs and run
 * their own timers and IPIs. Two things remain ours: the 8259's vector is
 * handed to the BSP with KVM_INTERRUPT (ExtINT through LINT0), and EOIs of
 * level-triggered vectors come back as KVM_EXIT_IOAPIC_EOI for our IOAPIC.
 */
export class SplitInterrupts implements VcpuInterrupts {
  readonly haltInKernel = true;

  constructor(
    private readonly index: number,
    private readonly vcpu: KvmVcpu,
    private readonly pic: DualPic,
    private readonly ioapic: Ioapic,
    private readonly stats: Float64Array,
  ) {}

  beforeRun(run: RunPage): boolean {
    if (this.index !== 0) return true;
    const u8 = run.u8;
    if (this.pic.hasInterrupt()) {
      if (u8[RunOff.readyForInjection]) {
        this.vcpu.interrupt(this.pic.acknowledge());
        this.stats[Stat.Injections]! += 1;
        u8[RunOff.requestInterruptWindow] = 0;
      } else {
        u8[RunOff.requestInterruptWindow] = 1;
      }
    } else {
      u8[RunOff.requestInterruptWindow] = 0;
    }
    return true;
  }

  hasPending(): boolean {
    return this.index === 0 && this.pic.hasInterrupt();
  }

  msUntilTimer(): number {
    return Infinity;
  }

  poll(): void {}

  eoi(vector: number): void {
    this.ioapic.onEoi(vector);
  }
}
