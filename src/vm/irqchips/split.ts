import type { Bus } from '../../devices/bus.js';
import { Ioapic } from '../../irqchip/ioapic.js';
import { DualPic } from '../../irqchip/pic.js';
import type { KvmVm } from '../../kvm/vm-fd.js';
import { SplitInterrupts } from '../../vcpu/split-interrupts.js';
import { MsiApicBus } from '../msi-bus.js';
import { KvmMsiSink } from '../msi-signal.js';
import { SplitEoiRoutes } from '../split-eoi-routes.js';
import { attachIoapicAndPic, loadModels, routedLines, saveModels, stateOf } from './models.js';
import type { Irqchip, IrqchipState, IrqchipThreadOptions, IrqchipViews, VcpuInterruptContext } from './types.js';

type SplitState = Extract<IrqchipState, { mode: 'split' }>;

/** IOAPIC pins KVM tracks EOIs for (KVM_CAP_SPLIT_IRQCHIP's argument). */
const SPLIT_ROUTES = 24;

/** `split`: KVM's LAPICs, our IOAPIC and 8259 pair; KVM learns the IOAPIC's level routes to report their EOIs. */
export const splitIrqchip: Irqchip = {
  mode: 'split',
  userLapic: false,
  allocate: () => ({ mode: 'split', ioapic: Ioapic.allocate(), pic: DualPic.allocate(), routesLock: SplitEoiRoutes.allocateRoutesLock() }),
  createInKvm: (vm: KvmVm) => {
    vm.enableCap('KVM_CAP_SPLIT_IRQCHIP', SPLIT_ROUTES);
  },
  views: (state, o) => new SplitViews(stateOf(state, 'split'), o),
  save: (state) => ({ mode: 'split', state: saveModels(stateOf(state, 'split')) }),
  load: (state, _vm, saved) => loadModels(stateOf(state, 'split'), saved),
};

class SplitViews implements IrqchipViews {
  readonly ioapic: Ioapic;
  readonly pic: DualPic;
  readonly lines;
  readonly msi;
  private readonly window: SplitEoiRoutes;

  constructor(state: SplitState, o: IrqchipThreadOptions) {
    // The BSP's in-kernel LAPIC takes ExtINT from us through KVM_INTERRUPT,
    // so the PIC's output only has to wake vCPU 0.
    this.pic = new DualPic(state.pic, { onOutput: (high) => high && o.wake(0) });
    this.ioapic = new Ioapic(state.ioapic, new MsiApicBus(o.vmFd));
    this.msi = new KvmMsiSink(o.vmFd);
    this.lines = routedLines(this.ioapic, this.pic);
    this.window = new SplitEoiRoutes(this.ioapic, o.vmFd, state.routesLock);
  }

  attach(bus: Bus): void {
    attachIoapicAndPic(bus, this.window, this.pic);
  }

  vcpuInterrupts(c: VcpuInterruptContext): SplitInterrupts {
    return new SplitInterrupts(c.index, c.vcpu, this.pic, this.ioapic, c.stats);
  }

  /** KVM learns the restored IOAPIC's level-triggered routes. */
  afterRestore(): void {
    this.window.sync();
  }
}
