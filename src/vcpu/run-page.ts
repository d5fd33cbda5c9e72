import { layoutOf, k } from '../kvm/addon.js';

const R = layoutOf('kvm_run');

/** Offsets into struct kvm_run, resolved once from the addon's layout table. */
export const RunOff = {
  requestInterruptWindow: R.request_interrupt_window!,
  immediateExit: R.immediate_exit!,
  exitReason: R.exit_reason!,
  readyForInjection: R.ready_for_interrupt_injection!,
  ifFlag: R.if_flag!,
  cr8: R.cr8!,
  ioDirection: R.io_direction!,
  ioSize: R.io_size!,
  ioPort: R.io_port!,
  ioCount: R.io_count!,
  ioDataOffset: R.io_data_offset!,
  mmioPhysAddr: R.mmio_phys_addr!,
  mmioData: R.mmio_data!,
  mmioLen: R.mmio_len!,
  mmioIsWrite: R.mmio_is_write!,
  failEntryReason: R.fail_entry_reason!,
  internalSuberror: R.internal_suberror!,
  internalNdata: R.internal_ndata!,
  internalData: R.internal_data!,
  emulationFlags: R.emulation_failure_flags!,
  insnSize: R.emulation_failure_insn_size!,
  insnBytes: R.emulation_failure_insn_bytes!,
  systemEventType: R.system_event_type!,
  msrError: R.msr_error!,
  msrReason: R.msr_reason!,
  msrIndex: R.msr_index!,
  msrData: R.msr_data!,
  eoiVector: R.eoi_vector!,
  exType: R.ex_exception!,
  exErrorCode: R.ex_error_code!,
  validRegs: R.kvm_valid_regs!,
  dirtyRegs: R.kvm_dirty_regs!,
  syncRegs: R.sync_regs!,
  syncSregs: R.sync_sregs!,
  syncEvents: R.sync_events!,
} as const;

export const Exit = {
  Unknown: k('KVM_EXIT_UNKNOWN'),
  Exception: k('KVM_EXIT_EXCEPTION'),
  Io: k('KVM_EXIT_IO'),
  Hypercall: k('KVM_EXIT_HYPERCALL'),
  Debug: k('KVM_EXIT_DEBUG'),
  Hlt: k('KVM_EXIT_HLT'),
  Mmio: k('KVM_EXIT_MMIO'),
  IrqWindowOpen: k('KVM_EXIT_IRQ_WINDOW_OPEN'),
  Shutdown: k('KVM_EXIT_SHUTDOWN'),
  FailEntry: k('KVM_EXIT_FAIL_ENTRY'),
  Intr: k('KVM_EXIT_INTR'),
  InternalError: k('KVM_EXIT_INTERNAL_ERROR'),
  SystemEvent: k('KVM_EXIT_SYSTEM_EVENT'),
  IoapicEoi: k('KVM_EXIT_IOAPIC_EOI'),
  RdMsr: k('KVM_EXIT_X86_RDMSR'),
  WrMsr: k('KVM_EXIT_X86_WRMSR'),
} as const;

const EXIT_NAMES = new Map(Object.entries(Exit).map(([n, v]) => [v, n]));
export const exitName = (reason: number): string => EXIT_NAMES.get(reason) ?? `exit ${reason}`;

/** Typed views over one vCPU's mmap'ed kvm_run area (run struct + PIO data page). */
export class RunPage {
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly view: DataView;

  constructor(readonly buffer: ArrayBuffer) {
    this.u8 = new Uint8Array(buffer);
    this.u16 = new Uint16Array(buffer, 0, buffer.byteLength >> 1);
    this.u32 = new Uint32Array(buffer, 0, buffer.byteLength >> 2);
    this.view = new DataView(buffer);
  }

  get exitReason(): number {
    return this.u32[RunOff.exitReason >> 2]!;
  }

  /** A 64-bit field as a number (exact below 2^53, which covers guest-physical addresses). */
  u64(off: number): number {
    return this.u32[off >> 2]! + this.u32[(off >> 2) + 1]! * 0x100000000;
  }
}
