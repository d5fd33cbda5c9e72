import type { RegisterValues } from './registers.js';

/** Why the target stopped, as the stop reply tells gdb. */
export type StopReason =
  | { kind: 'breakpoint' } // a software breakpoint (swbreak)
  | { kind: 'hw-breakpoint' }
  | { kind: 'watchpoint'; access: 'write' | 'access'; address: bigint }
  | { kind: 'step' }
  | { kind: 'interrupt' } // gdb's Ctrl-C
  | { kind: 'attach' }; // the state gdb found it in

export interface StopEvent {
  /** 0-based vCPU index (gdb thread = index + 1). */
  vcpu: number;
  reason: StopReason;
}

/** Z packet types the stub takes: 0 software, 1 hardware breakpoint, 2 write, 4 access watchpoint. */
export type BreakpointType = 0 | 1 | 2 | 4;

/**
 * What the gdb session needs of the machine it debugs. The real one is a
 * VM (vm-target.ts); the session's tests use a fake. All calls except
 * `resume`/`interrupt`/`halt` happen while the target is stopped.
 */
export interface GdbTarget {
  readonly vcpus: number;
  /** Stops everything (if running) for gdb to attach; resolves with how it stands. */
  halt(): Promise<StopEvent>;
  readRegisters(vcpu: number): RegisterValues;
  /** Writes the registers given (a subset); false if one cannot be written. */
  writeRegisters(vcpu: number, values: RegisterValues): boolean;
  /** Up to `length` bytes at guest-virtual `address` (fewer where the mapping ends). */
  readMemory(vcpu: number, address: bigint, length: number): Uint8Array;
  /** Bytes written (fewer where the mapping ends). */
  writeMemory(vcpu: number, address: bigint, data: Uint8Array): number;
  insertBreakpoint(vcpu: number, type: BreakpointType, address: bigint, kind: number): boolean;
  removeBreakpoint(vcpu: number, type: BreakpointType, address: bigint, kind: number): boolean;
  /** Lets every vCPU run, single-stepping `step` if given; the next stop comes through `onStop`. */
  resume(step?: number): void;
  /** Stops a running target; the stop comes through `onStop` with reason 'interrupt'. */
  interrupt(): void;
  /** Called once with the handler for stops after `resume`/`interrupt`, and for the VM ending. */
  onStop(handler: (e: StopEvent) => void, exited: (status: number) => void): void;
  /** A line for `info threads`. */
  describe(vcpu: number): string;
  /** gdb detached: breakpoints out, debugging off, the guest runs on. */
  detach(): void;
  /** gdb's kill: end the VM. */
  kill(): void;
}
