// What `user` and `split` share: our IOAPIC and 8259 pair.
import type { Bus } from '../../devices/bus.js';
import type { BusDevice, IrqLines } from '../../devices/device.js';
import { Ioapic, IOAPIC_BASE, IOAPIC_MMIO_SIZE } from '../../irqchip/ioapic.js';
import { IrqRouter } from '../../irqchip/irq-router.js';
import { DualPic, ELCR_BASE, PIC_MASTER_BASE, PIC_PORT_COUNT, PIC_SLAVE_BASE } from '../../irqchip/pic.js';
import { required, type SavedState } from '../../sync/state-layout.js';
import type { IrqchipMode } from '../../vcpu/cpuid.js';
import type { SavedIrqchip } from '../snapshot-files.js';
import type { IrqchipState } from './types.js';

/** `state`, which must be of `mode` (a view built over another mode's state is a wiring error). */
export function stateOf<M extends IrqchipMode>(state: IrqchipState, mode: M): Extract<IrqchipState, { mode: M }> {
  if (state.mode !== mode) throw new Error(`irqchip state of mode ${state.mode} handed to the ${mode} irqchip`);
  return state as Extract<IrqchipState, { mode: M }>;
}

/** ISA lines: to the IOAPIC's pins and the 8259 inputs at once, as a PC wires them. */
export function routedLines(ioapic: Ioapic, pic: DualPic): IrqLines {
  return new IrqRouter({ ioapic, pic });
}

export function attachIoapicAndPic(bus: Bus, ioapicWindow: BusDevice, pic: DualPic): void {
  bus.attachMmio(IOAPIC_BASE, IOAPIC_MMIO_SIZE, ioapicWindow);
  bus.attachPio(PIC_MASTER_BASE, PIC_PORT_COUNT, pic.master);
  bus.attachPio(PIC_SLAVE_BASE, PIC_PORT_COUNT, pic.slave);
  bus.attachPio(ELCR_BASE, PIC_PORT_COUNT, pic.elcr);
}

export function saveModels(s: { ioapic: SharedArrayBuffer; pic: SharedArrayBuffer }): Record<string, SavedState> {
  return { ioapic: Ioapic.save(s.ioapic), pic: DualPic.save(s.pic) };
}

export function loadModels(s: { ioapic: SharedArrayBuffer; pic: SharedArrayBuffer }, saved: SavedIrqchip, more?: (get: (name: string) => SavedState) => void): void {
  const get = (name: string): SavedState => required(saved.state, name);
  Ioapic.load(s.ioapic, get('ioapic'));
  DualPic.load(s.pic, get('pic'));
  more?.(get);
}
