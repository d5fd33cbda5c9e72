import type { CpuidEntry, Regs, Sregs } from '../../kvm/structs.js';
import type { MemoryRegion } from '../../memory/guest-memory.js';
import type { DeviceSpec } from '../device-specs.js';
import type { EntryMode } from '../../vcpu/boot-state.js';
import type { IrqchipMode } from '../../vcpu/cpuid.js';
import type { IrqchipState } from '../irqchip.js';
import type { TestKnobs } from '../../vcpu/test-knobs.js';
import type { VcpuArchState } from '../../vcpu/arch-state.js';
import type { ThreadReport } from './thread-control.js';
import type { DebugStopEvent } from '../../vcpu/debug-exit.js';

/** Everything a vCPU worker is started with (structured-cloned). */
export interface VcpuWorkerData {
  index: number;
  /** The vCPU's APIC ID, which is also its KVM vCPU ID (KVM's LAPIC takes its ID from it). */
  apicId: number;
  count: number;
  vmFd: number;
  runSize: number;
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  /** One bit per port: set once an unclaimed port has been reported. */
  reportedPorts: SharedArrayBuffer;
  memory: MemoryRegion[];
  devices: DeviceSpec[];
  cpuid: CpuidEntry[];
  irqchip: IrqchipMode;
  irqchipState: IrqchipState;
  /** 'all': every vCPU enters the image; 'sipi': APs wait for INIT-SIPI-SIPI. */
  startup: 'all' | 'sipi';
  /** Entry state for a directly loaded guest, or explicit registers; null: the architectural reset state (firmware boot). */
  /** `linux`: the Linux boot protocol's GDT and selectors (__BOOT_CS 0x10, __BOOT_DS 0x18). */
  /** `rax`/`rbx`: their values at entry (multiboot: the magic and the information structure). */
  boot: { mode: EntryMode; entry: number; rsi?: number; rax?: number; rbx?: number; linux?: boolean } | { regs: Regs; sregs: Partial<Sregs> } | null;
  syncRegs: boolean;
  /** KVM can sync vcpu events through the run page (KVM_SYNC_X86_EVENTS). */
  syncEvents: boolean;
  /** Carry out instructions KVM's emulator cannot (software-virtualising hosts). */
  quirks: boolean;
  /** The most a halted vCPU polls for a wake-up before sleeping, in ns (0: never). */
  haltPollNs: number;
  testKnobs?: TestKnobs;
  /** Exit profile tables (exit-profile.ts), when the VM records one. */
  exitProfile?: SharedArrayBuffer;
  /** Wake word of the device-timer thread (bumped when a PIT/RTC deadline moves earlier). */
  timerWake: SharedArrayBuffer;
  /** The VM clock (sync/vm-clock.ts): host time minus the time spent paused. */
  clock: SharedArrayBuffer;
  /** A restored VM: the vCPU's saved state, loaded instead of a boot state. */
  restore?: { arch: VcpuArchState; waitingForSipi: boolean };
  /** The debugger's shared state (debug-block.ts). */
  debug: SharedArrayBuffer;
}

export type WorkerMessage =
  | { type: 'ready'; index: number; tid: number }
  | ThreadReport
  | { type: 'exited'; index: number }
  | { type: 'debug-output'; bytes: Uint8Array }
  | ({ type: 'debug-stop' } & DebugStopEvent);
