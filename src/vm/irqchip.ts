/**
 * The irqchip modes, one object each (see irqchips/types.ts): what every
 * other part of the VM asks of "the interrupt controllers" goes through
 * `irqchipFor(mode)` rather than testing the mode itself.
 */
import type { KvmVm } from '../kvm/vm-fd.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import { kernelIrqchip } from './irqchips/kernel.js';
import { splitIrqchip } from './irqchips/split.js';
import type { Irqchip, IrqchipState, IrqchipThreadOptions, IrqchipViews } from './irqchips/types.js';
import { userIrqchip } from './irqchips/user.js';
import type { SavedIrqchip } from './snapshot-files.js';
import { SnapshotError } from './snapshot-manifest.js';

export type { Irqchip, IrqchipState, IrqchipThreadOptions, IrqchipViews, VcpuInterruptContext } from './irqchips/types.js';

const IRQCHIPS: Readonly<Record<IrqchipMode, Irqchip>> = { user: userIrqchip, split: splitIrqchip, kernel: kernelIrqchip };

export function irqchipFor(mode: IrqchipMode): Irqchip {
  return IRQCHIPS[mode];
}

/** One thread's views over the VM's irqchip state. */
export function irqchipViews(state: IrqchipState, o: IrqchipThreadOptions): IrqchipViews {
  return IRQCHIPS[state.mode].views(state, o);
}

export function saveIrqchip(state: IrqchipState, vm: KvmVm): SavedIrqchip {
  return IRQCHIPS[state.mode].save(state, vm);
}

/** Loads a saved irqchip into a fresh VM's (before any view or vCPU exists). */
export function loadIrqchip(state: IrqchipState, vm: KvmVm, saved: SavedIrqchip): void {
  if (saved.mode !== state.mode) throw new SnapshotError(`the snapshot's irqchip mode is ${saved.mode}, this VM's ${state.mode}`);
  IRQCHIPS[state.mode].load(state, vm, saved);
}
