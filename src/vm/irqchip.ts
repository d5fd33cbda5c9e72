import type { Bus } from '../devices/bus.js';
import type { IrqLines } from '../devices/device.js';
import { LapicSet, createMmioDevice, LAPIC_DEFAULT_BASE, LAPIC_MMIO_SIZE } from '../irqchip/lapic.js';
import { Ioapic, IOAPIC_BASE, IOAPIC_MMIO_SIZE } from '../irqchip/ioapic.js';
import { DualPic, PIC_MASTER_BASE, PIC_SLAVE_BASE, ELCR_BASE, PIC_PORT_COUNT } from '../irqchip/pic.js';
import { IrqRouter } from '../irqchip/irq-router.js';
import type { ApicBus, GuestRam, WakeFn } from '../irqchip/types.js';
import type { Clock } from '../sync/clock.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { TestKnobs } from '../vcpu/test-knobs.js';
import { ipiCounter } from '../vcpu/control.js';
import { KernelIrqLines } from './irq-lines.js';
import { MsiApicBus } from './msi-bus.js';
import { SplitEoiRoutes } from './split-eoi-routes.js';
import { ApicBusMsiSink, KvmMsiSink } from './msi-signal.js';
import type { MsiSink } from '../devices/msi-sink.js';

/** Shared state of the userspace interrupt controllers (what `user`/`split` modes keep here). */
export interface IrqchipState {
  mode: IrqchipMode;
  /** One LAPIC per vCPU (`user` mode only). */
  lapics?: SharedArrayBuffer;
  /** The LAPICs' APIC IDs by vCPU index (`user` mode; default the index). */
  apicIds?: readonly number[];
  ioapic?: SharedArrayBuffer;
  pic?: SharedArrayBuffer;
  /** `split` mode: serialises pushing the IOAPIC's routes to KVM (see SplitEoiRoutes). */
  routesLock?: SharedArrayBuffer;
}

export function allocateIrqchip(mode: IrqchipMode, vcpus: number, apicIds?: readonly number[]): IrqchipState {
  if (mode === 'kernel') return { mode };
  return {
    mode,
    lapics: mode === 'user' ? LapicSet.allocate(vcpus) : undefined,
    apicIds: mode === 'user' ? apicIds : undefined,
    ioapic: Ioapic.allocate(),
    pic: DualPic.allocate(),
    routesLock: mode === 'split' ? SplitEoiRoutes.allocateRoutesLock() : undefined,
  };
}

export interface IrqchipThreadOptions {
  vmFd: number;
  clock: Clock;
  wake: WakeFn;
  testKnobs?: TestKnobs;
  /** The VM's per-vCPU stats rows, where a vCPU thread counts the IPIs it sends and delivers. */
  stats?: SharedArrayBuffer;
  /** Guest RAM, on vCPU threads: the userspace LAPIC's paravirtual EOI word lives there. */
  guestRam?: GuestRam;
}

/**
 * One thread's views of the interrupt controllers. Every vCPU worker and the
 * main thread build one over the same shared state; any of them can raise a
 * line or send an interrupt.
 */
export class IrqchipViews {
  readonly lapics?: LapicSet;
  readonly ioapic?: Ioapic;
  readonly pic?: DualPic;
  /** A restored VM in split mode: KVM learns the restored IOAPIC's level-triggered routes (see SplitEoiRoutes). */
  syncRestoredRoutes(): void {
    if (this.state.mode === 'split') new SplitEoiRoutes(this.ioapic!, this.vmFd, this.state.routesLock!).sync();
  }

  /** What devices drive their interrupt lines through. */
  readonly lines: IrqLines;
  /** What devices send message-signalled interrupts (MSI-X) through. */
  readonly msi: MsiSink;
  private readonly vmFd: number;

  constructor(
    readonly state: IrqchipState,
    o: IrqchipThreadOptions,
  ) {
    this.vmFd = o.vmFd;
    if (state.mode === 'kernel') {
      this.lines = new KernelIrqLines(o.vmFd);
      this.msi = new KvmMsiSink(o.vmFd);
      return;
    }
    let bus: ApicBus;
    if (state.mode === 'user') {
      const lapics = new LapicSet(state.lapics!, {
        apicIds: state.apicIds,
        clock: o.clock,
        wake: o.wake,
        eoi: { onEoi: (v) => this.ioapic!.onEoi(v) },
        testIpiDelayNs: (o.testKnobs?.ipiDelayUs ?? 0) * 1000,
        ipiDelivered: o.stats ? ipiCounter(o.stats) : undefined,
        guestRam: o.guestRam,
      });
      this.lapics = lapics;
      bus = lapics;
      // The 8259's INTR is wired to the BSP's LINT0 (virtual-wire mode).
      this.pic = new DualPic(state.pic!, { onOutput: (high) => lapics.get(0).setLint(0, high) });
    } else {
      bus = new MsiApicBus(o.vmFd);
      // In split mode the BSP's in-kernel LAPIC takes ExtINT from us through
      // KVM_INTERRUPT, so the PIC's output only has to wake vCPU 0.
      this.pic = new DualPic(state.pic!, { onOutput: (high) => high && o.wake(0) });
    }
    this.msi = state.mode === 'user' ? new ApicBusMsiSink(bus) : new KvmMsiSink(o.vmFd);
    this.ioapic = new Ioapic(state.ioapic!, bus);
    this.lines = new IrqRouter({ ioapic: this.ioapic, pic: this.pic });
  }

  /** Attaches the controllers' registers to a vCPU thread's bus. */
  attach(bus: Bus): void {
    if (this.lapics) bus.attachMmio(LAPIC_DEFAULT_BASE, LAPIC_MMIO_SIZE, createMmioDevice(this.lapics));
    if (this.ioapic) {
      const window = this.state.mode === 'split' ? new SplitEoiRoutes(this.ioapic, this.vmFd, this.state.routesLock!) : this.ioapic;
      bus.attachMmio(IOAPIC_BASE, IOAPIC_MMIO_SIZE, window);
    }
    if (this.pic) {
      bus.attachPio(PIC_MASTER_BASE, PIC_PORT_COUNT, this.pic.master);
      bus.attachPio(PIC_SLAVE_BASE, PIC_PORT_COUNT, this.pic.slave);
      bus.attachPio(ELCR_BASE, PIC_PORT_COUNT, this.pic.elcr);
    }
  }
}
