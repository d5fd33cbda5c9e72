import type { Bus } from '../../devices/bus.js';
import type { IrqLines } from '../../devices/device.js';
import type { MsiSink } from '../../devices/msi-sink.js';
import type { GuestRam, WakeFn } from '../../irqchip/types.js';
import type { KvmVm } from '../../kvm/vm-fd.js';
import type { KvmVcpu } from '../../kvm/vcpu-fd.js';
import type { Clock } from '../../sync/clock.js';
import type { IrqchipMode } from '../../vcpu/cpuid.js';
import type { VcpuInterrupts } from '../../vcpu/interrupts.js';
import type { RunPage } from '../../vcpu/run-page.js';
import type { TestKnobs } from '../../vcpu/test-knobs.js';
import type { SavedIrqchip } from '../snapshot-files.js';

/** Shared state of the interrupt controllers a mode keeps in this process; structured-cloneable for every thread. */
export type IrqchipState =
  /** Our LAPICs (one per vCPU, with their APIC IDs by vCPU index), IOAPIC and 8259 pair. */
  | { readonly mode: 'user'; readonly lapics: SharedArrayBuffer; readonly apicIds: readonly number[]; readonly ioapic: SharedArrayBuffer; readonly pic: SharedArrayBuffer }
  /** Our IOAPIC and 8259 pair beside KVM's LAPICs; `routesLock` serialises pushing the IOAPIC's routes to KVM (see SplitEoiRoutes). */
  | { readonly mode: 'split'; readonly ioapic: SharedArrayBuffer; readonly pic: SharedArrayBuffer; readonly routesLock: SharedArrayBuffer }
  /** Everything is KVM's. */
  | { readonly mode: 'kernel' };

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

/** What a vCPU thread hands its mode to get the vCPU's interrupt policy. */
export interface VcpuInterruptContext {
  index: number;
  vcpu: KvmVcpu;
  run: RunPage;
  stats: Float64Array;
  clock: Clock;
  /** Arms this vCPU's deadline kick in VM time; 0 disarms. */
  setTimer(deadlineNs: number): void;
  /** Start parked until INIT-SIPI. */
  waitForSipi: boolean;
  syncEvents: boolean;
}

/**
 * One thread's views of the interrupt controllers. Every vCPU worker, I/O
 * thread and the main thread build one over the same shared state; any of
 * them can raise a line or send an interrupt.
 */
export interface IrqchipViews {
  /** What devices drive their interrupt lines through. */
  readonly lines: IrqLines;
  /** What devices send message-signalled interrupts (MSI-X) through. */
  readonly msi: MsiSink;
  /** Attaches the registers of the controllers this process models to a vCPU thread's bus. */
  attach(bus: Bus): void;
  /** The policy by which a vCPU takes interrupts in this mode. */
  vcpuInterrupts(c: VcpuInterruptContext): VcpuInterrupts;
  /** A restored VM: tells KVM what it must know of the restored state before the vCPUs run. */
  afterRestore(): void;
}

/**
 * An irqchip mode: everything that differs between `user`, `split` and
 * `kernel` - KVM set-up, what CPUID may offer, how APs start, each thread's
 * views, the vCPU's interrupt policy, and the state a snapshot keeps.
 */
export interface Irqchip {
  readonly mode: IrqchipMode;
  /**
   * Our LAPIC serves the vCPUs: CPUID offers only what it implements,
   * injections go through the run page's events, APs wait for INIT-SIPI
   * in our model (not in KVM's), and KVM has no LAPIC state to save.
   */
  readonly userLapic: boolean;
  allocate(vcpus: number, apicIds: readonly number[]): IrqchipState;
  /** KVM's part of the irqchip, on a new VM before any vCPU exists. */
  createInKvm(vm: KvmVm): void;
  views(state: IrqchipState, o: IrqchipThreadOptions): IrqchipViews;
  save(state: IrqchipState, vm: KvmVm): SavedIrqchip;
  /** Loads a saved irqchip into a fresh VM's (before any view or vCPU exists). */
  load(state: IrqchipState, vm: KvmVm, saved: SavedIrqchip): void;
}
