import type { Bus } from '../../devices/bus.js';
import { Ioapic } from '../../irqchip/ioapic.js';
import { createMmioDevice, LAPIC_DEFAULT_BASE, LAPIC_MMIO_SIZE, LapicSet } from '../../irqchip/lapic.js';
import { DualPic } from '../../irqchip/pic.js';
import { ipiCounter } from '../../vcpu/control.js';
import { UserInterrupts } from '../../vcpu/user-interrupts.js';
import { ApicBusMsiSink } from '../msi-signal.js';
import { attachIoapicAndPic, loadModels, routedLines, saveModels, stateOf } from './models.js';
import type { Irqchip, IrqchipState, IrqchipThreadOptions, IrqchipViews, VcpuInterruptContext } from './types.js';

type UserState = Extract<IrqchipState, { mode: 'user' }>;

/** `user`: every controller is ours, in shared memory; KVM only runs the vCPUs. */
export const userIrqchip: Irqchip = {
  mode: 'user',
  userLapic: true,
  allocate: (vcpus, apicIds) => ({ mode: 'user', lapics: LapicSet.allocate(vcpus), apicIds, ioapic: Ioapic.allocate(), pic: DualPic.allocate() }),
  createInKvm() {},
  views: (state, o) => new UserViews(stateOf(state, 'user'), o),
  save: (state) => {
    const s = stateOf(state, 'user');
    return { mode: 'user', state: { ...saveModels(s), lapics: LapicSet.save(s.lapics) } };
  },
  load: (state, _vm, saved) => {
    const s = stateOf(state, 'user');
    loadModels(s, saved, (get) => LapicSet.load(s.lapics, get('lapics')));
  },
};

class UserViews implements IrqchipViews {
  readonly lapics: LapicSet;
  readonly ioapic: Ioapic;
  readonly pic: DualPic;
  readonly lines;
  readonly msi;

  constructor(state: UserState, o: IrqchipThreadOptions) {
    const lapics = new LapicSet(state.lapics, {
      apicIds: state.apicIds,
      clock: o.clock,
      wake: o.wake,
      eoi: { onEoi: (v) => this.ioapic.onEoi(v) },
      testIpiDelayNs: (o.testKnobs?.ipiDelayUs ?? 0) * 1000,
      ipiDelivered: o.stats ? ipiCounter(o.stats) : undefined,
      guestRam: o.guestRam,
    });
    this.lapics = lapics;
    // The 8259's INTR is wired to the BSP's LINT0 (virtual-wire mode).
    this.pic = new DualPic(state.pic, { onOutput: (high) => lapics.get(0).setLint(0, high) });
    this.ioapic = new Ioapic(state.ioapic, lapics);
    this.msi = new ApicBusMsiSink(lapics);
    this.lines = routedLines(this.ioapic, this.pic);
  }

  attach(bus: Bus): void {
    bus.attachMmio(LAPIC_DEFAULT_BASE, LAPIC_MMIO_SIZE, createMmioDevice(this.lapics));
    attachIoapicAndPic(bus, this.ioapic, this.pic);
  }

  vcpuInterrupts(c: VcpuInterruptContext): UserInterrupts {
    return new UserInterrupts({
      setTimer: c.setTimer,
      vcpu: c.vcpu,
      lapic: this.lapics.get(c.index),
      pic: this.pic,
      clock: c.clock,
      stats: c.stats,
      run: c.run,
      waitForSipi: c.waitForSipi,
      syncEvents: c.syncEvents,
    });
  }

  afterRestore(): void {}
}
