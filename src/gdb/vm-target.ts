/**
 * A nodevisor VM as a gdb target: gdb threads are vCPUs, a stop is a VM
 * pause (all-stop), registers and guest-virtual memory go through
 * `vm.debug` (vm/vm-debug.ts), and breakpoint hits arrive as the VM's
 * 'debug-stop' events.
 */
import { layoutOf } from '../kvm/addon.js';
import type { SegmentName } from '../kvm/structs.js';
import type { Vm, VmResult } from '../vm/vm.js';
import type { DebugStopEvent } from '../vcpu/debug-exit.js';
import { fromLeBytes, leBytes, type RegisterValues } from './registers.js';
import type { BreakpointType, GdbTarget, StopEvent } from './target.js';

const FPU = layoutOf('kvm_fpu');
const GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'] as const;
const SELECTORS: readonly SegmentName[] = ['cs', 'ss', 'ds', 'es', 'fs', 'gs'];
const DR6_SINGLE_STEP = 0x4000n;
const X87 = new Set(['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop', 'mxcsr']);

/** The x87 tag (0 valid, 1 zero, 2 special, 3 empty) of an 80-bit register that FXSAVE's abridged tag says is in use. */
function x87Tag(reg: Uint8Array): number {
  const exponent = (reg[8]! | (reg[9]! << 8)) & 0x7fff;
  const mantissa = fromLeBytes(reg.subarray(0, 8));
  if (exponent === 0x7fff) return 2;
  if (exponent === 0) return mantissa === 0n ? 1 : 2;
  return mantissa >> 63n ? 0 : 2;
}

/** The full tag word gdb shows from KVM's abridged one (a bit per physical register). */
export function fullTagWord(ftwx: number, fsw: number, stack: readonly Uint8Array[]): number {
  const top = (fsw >> 11) & 7;
  let tag = 0;
  for (let physical = 0; physical < 8; physical++) {
    const t = ftwx & (1 << physical) ? x87Tag(stack[(physical - top + 8) & 7]!) : 3;
    tag |= t << (physical * 2);
  }
  return tag;
}

/** The abridged tag (a bit per register in use) from a full tag word. */
export function abridgedTag(ftag: number): number {
  let ftwx = 0;
  for (let physical = 0; physical < 8; physical++) if (((ftag >> (physical * 2)) & 3) !== 3) ftwx |= 1 << physical;
  return ftwx;
}

const u32 = (n: number | bigint): Uint8Array => leBytes(BigInt(n), 4);

export class VmGdbTarget implements GdbTarget {
  private onStopHandler?: (e: StopEvent) => void;
  private onExit?: (status: number) => void;
  private lastVcpu = 0;
  private readonly debugStop = (e: DebugStopEvent): void => this.onStopHandler?.(this.stopOf(e));
  private readonly vmStopped = (r: VmResult): void => this.onExit?.(r.exitStatus);

  constructor(private readonly vm: Vm) {
    vm.on('debug-stop', this.debugStop);
    vm.on('stop', this.vmStopped);
  }

  get vcpus(): number {
    return this.vm.vcpus;
  }

  /** Stops listening to the VM (the session is over). */
  dispose(): void {
    this.vm.off('debug-stop', this.debugStop);
    this.vm.off('stop', this.vmStopped);
  }

  async halt(): Promise<StopEvent> {
    if (this.vm.runState === 'running') await this.vm.pause();
    return { vcpu: 0, reason: { kind: 'attach' } };
  }

  onStop(handler: (e: StopEvent) => void, exited: (status: number) => void): void {
    this.onStopHandler = handler;
    this.onExit = exited;
  }

  private stopOf(e: DebugStopEvent): StopEvent {
    this.lastVcpu = e.vcpu;
    if (e.exception === 3) return { vcpu: e.vcpu, reason: { kind: 'breakpoint' } };
    if ((e.dr6 & DR6_SINGLE_STEP) === 0n) {
      for (let n = 0; n < 4; n++) {
        const bp = (e.dr6 >> BigInt(n)) & 1n ? this.vm.debug.hardwareBreakpoint(n) : undefined;
        if (!bp) continue;
        if (bp.kind === 'execute') return { vcpu: e.vcpu, reason: { kind: bp.standIn ? 'breakpoint' : 'hw-breakpoint' } };
        return { vcpu: e.vcpu, reason: { kind: 'watchpoint', access: bp.kind, address: bp.gva } };
      }
    }
    return { vcpu: e.vcpu, reason: { kind: 'step' } };
  }

  readRegisters(vcpu: number): RegisterValues {
    const d = this.vm.debug;
    const regs = d.regs(vcpu);
    const sregs = d.sregs(vcpu);
    const fpu = d.fpu(vcpu);
    const bytes = new Uint8Array(fpu.buffer, fpu.byteOffset, fpu.byteLength);
    const out: RegisterValues = {};
    for (const r of GPRS) out[r] = leBytes(regs[r], 8);
    out.eflags = u32(regs.rflags & 0xffffffffn);
    for (const s of SELECTORS) out[s] = u32(sregs[s].selector);
    const stack = Array.from({ length: 8 }, (_, i) => bytes.slice(FPU.fpr! + i * 16, FPU.fpr! + i * 16 + 10));
    stack.forEach((st, i) => (out[`st${i}`] = st));
    const fsw = fpu.getUint16(FPU.fsw!, true);
    const lastIp = fpu.getBigUint64(FPU.last_ip!, true);
    const lastDp = fpu.getBigUint64(FPU.last_dp!, true);
    out.fctrl = u32(fpu.getUint16(FPU.fcw!, true));
    out.fstat = u32(fsw);
    out.ftag = u32(fullTagWord(fpu.getUint8(FPU.ftwx!), fsw, stack));
    out.fioff = u32(lastIp & 0xffffffffn);
    out.fiseg = u32(lastIp >> 32n);
    out.fooff = u32(lastDp & 0xffffffffn);
    out.foseg = u32(lastDp >> 32n);
    out.fop = u32(fpu.getUint16(FPU.last_opcode!, true) & 0x7ff);
    for (let i = 0; i < 16; i++) out[`xmm${i}`] = bytes.slice(FPU.xmm! + i * 16, FPU.xmm! + i * 16 + 16);
    out.mxcsr = u32(fpu.getUint32(FPU.mxcsr!, true));
    out.fs_base = leBytes(sregs.fs.base, 8);
    out.gs_base = leBytes(sregs.gs.base, 8);
    return out;
  }

  writeRegisters(vcpu: number, values: RegisterValues): boolean {
    const d = this.vm.debug;
    const names = Object.keys(values);
    const value = (n: string): bigint => fromLeBytes(values[n]!);
    if (names.some((n) => (GPRS as readonly string[]).includes(n) || n === 'eflags')) {
      const regs = d.regs(vcpu);
      for (const r of GPRS) if (values[r]) regs[r] = value(r);
      if (values.eflags) regs.rflags = (regs.rflags & ~0xffffffffn) | value('eflags');
      d.setRegs(vcpu, regs);
    }
    let ok = true;
    const sregs = d.sregs(vcpu);
    for (const s of SELECTORS) {
      // gdb writes back every register in a `G`: only an actual change reloads a segment.
      if (values[s] && Number(value(s) & 0xffffn) !== sregs[s].selector) ok = d.loadSegment(vcpu, s, Number(value(s) & 0xffffn)) && ok;
    }
    if (values.fs_base || values.gs_base) {
      const now = d.sregs(vcpu);
      if (values.fs_base) now.fs.base = value('fs_base');
      if (values.gs_base) now.gs.base = value('gs_base');
      d.setSregs(vcpu, now);
    }
    if (names.some((n) => X87.has(n) || /^(st|xmm)\d+$/.test(n))) this.writeFpu(vcpu, values);
    return ok;
  }

  private writeFpu(vcpu: number, values: RegisterValues): void {
    const fpu = this.vm.debug.fpu(vcpu);
    const bytes = new Uint8Array(fpu.buffer, fpu.byteOffset, fpu.byteLength);
    const n = (name: string): number => Number(fromLeBytes(values[name]!));
    for (let i = 0; i < 8; i++) if (values[`st${i}`]) bytes.set(values[`st${i}`]!, FPU.fpr! + i * 16);
    for (let i = 0; i < 16; i++) if (values[`xmm${i}`]) bytes.set(values[`xmm${i}`]!, FPU.xmm! + i * 16);
    if (values.fctrl) fpu.setUint16(FPU.fcw!, n('fctrl'), true);
    if (values.fstat) fpu.setUint16(FPU.fsw!, n('fstat'), true);
    if (values.ftag) fpu.setUint8(FPU.ftwx!, abridgedTag(n('ftag')));
    if (values.fop) fpu.setUint16(FPU.last_opcode!, n('fop') & 0x7ff, true);
    const ip = fpu.getBigUint64(FPU.last_ip!, true);
    const dp = fpu.getBigUint64(FPU.last_dp!, true);
    const hiLo = (old: bigint, hi?: string, lo?: string): bigint =>
      ((hi && values[hi] ? BigInt(n(hi)) : old >> 32n) << 32n) | (lo && values[lo] ? BigInt(n(lo)) : old & 0xffffffffn);
    fpu.setBigUint64(FPU.last_ip!, hiLo(ip, 'fiseg', 'fioff'), true);
    fpu.setBigUint64(FPU.last_dp!, hiLo(dp, 'foseg', 'fooff'), true);
    if (values.mxcsr) fpu.setUint32(FPU.mxcsr!, n('mxcsr'), true);
    this.vm.debug.setFpu(vcpu, fpu);
  }

  readMemory(vcpu: number, address: bigint, length: number): Uint8Array {
    return this.vm.debug.readVirtual(vcpu, address, length);
  }

  writeMemory(vcpu: number, address: bigint, data: Uint8Array): number {
    return this.vm.debug.writeVirtual(vcpu, address, data);
  }

  insertBreakpoint(vcpu: number, type: BreakpointType, address: bigint, kind: number): boolean {
    const d = this.vm.debug;
    if (type === 0) return d.insertSoftwareBreakpoint(vcpu, address);
    return d.insertHardwareBreakpoint(address, type === 1 ? 'execute' : type === 2 ? 'write' : 'access', kind);
  }

  removeBreakpoint(_vcpu: number, type: BreakpointType, address: bigint, kind: number): boolean {
    const d = this.vm.debug;
    if (type === 0) return d.removeSoftwareBreakpoint(address);
    return d.removeHardwareBreakpoint(address, type === 1 ? 'execute' : type === 2 ? 'write' : 'access', kind);
  }

  resume(step?: number): void {
    this.vm.debug.arm(step);
    void this.vm.resume().catch(() => undefined);
  }

  interrupt(): void {
    this.vm.pause().then(
      () => this.onStopHandler?.({ vcpu: this.lastVcpu, reason: { kind: 'interrupt' } }),
      () => undefined,
    );
  }

  describe(vcpu: number): string {
    const s = this.vm.stats().vcpus[vcpu];
    return `vCPU ${vcpu}${s ? ` (${s.state})` : ''}`;
  }

  /** Takes the breakpoints out (pausing a running VM for that) and lets the guest run on. */
  detach(): void {
    this.dispose();
    const finish = (): void => {
      try {
        this.vm.debug.detach();
      } catch {
        return; // the VM is going away
      }
      void this.vm.resume().catch(() => undefined);
    };
    if (this.vm.runState === 'paused') finish();
    else if (this.vm.runState === 'running') this.vm.pause().then(finish, () => undefined);
  }

  kill(): void {
    this.dispose();
    void this.vm.stop();
  }
}
