/**
 * A debugger's access to a paused VM: registers through the vCPU fds (any
 * thread of this process may issue vCPU ioctls while no KVM_RUN holds the
 * vCPU, which a pause guarantees), guest-virtual memory through the vCPU's
 * own page tables, software breakpoints (an `int3` written into guest RAM)
 * and the debug registers, single-step and breakpoint intercepts of
 * KVM_SET_GUEST_DEBUG. Policy for the gdb stub lives in src/gdb/; this is
 * the VM's side of it.
 */
import { k } from '../kvm/addon.js';
import { NodevisorError } from '../kvm/errors.js';
import type { Regs, SegmentName, Sregs } from '../kvm/structs.js';
import { KvmVcpu } from '../kvm/vcpu-fd.js';
import type { KvmVm } from '../kvm/vm-fd.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { VmControlBlock } from '../vcpu/control.js';
import type { DebugBlock } from '../vcpu/debug-block.js';
import { translateVirtual } from '../vcpu/quirks/page-walk.js';

/** Debug-register breakpoint kinds (DR7 R/W field: 00 execute, 01 write, 11 read or write). */
export type HardwareBreakpointKind = 'execute' | 'write' | 'access';

interface SoftwareBreakpoint {
  gva: bigint;
  gpa: number;
  original: number;
}

interface HardwareBreakpoint {
  gva: bigint;
  kind: HardwareBreakpointKind;
  length: number;
  /** A software breakpoint at an address not mapped when it was placed (see insertSoftwareBreakpoint). */
  standIn?: boolean;
}

const INT3 = 0xcc;
const DEBUG_REGISTERS = 4;
const RW_BITS: Record<HardwareBreakpointKind, bigint> = { execute: 0n, write: 1n, access: 3n };
const LEN_BITS: Record<number, bigint> = { 1: 0n, 2: 1n, 8: 2n, 4: 3n };
/** DR7 bit 10 reads as 1; GE (bit 9) as Linux and QEMU set it. */
const DR7_FIXED = 0x600n;

/** The KVM_SET_GUEST_DEBUG flags this host supports beyond the basic ones (KVM_CAP_SET_GUEST_DEBUG2), 0 if it does not say. */
export function guestDebugFlags(vm: KvmVm): number {
  try {
    return Math.max(0, vm.check('KVM_CAP_SET_GUEST_DEBUG2'));
  } catch {
    return 0;
  }
}

export interface VmDebugDeps {
  control: VmControlBlock;
  block: DebugBlock;
  memory: GuestMemory;
  vcpus: number;
  isPaused: () => boolean;
  /** KVM_CAP_SET_GUEST_DEBUG2's answer. */
  guestDebugFlags: number;
}

export class VmDebug {
  private readonly software = new Map<bigint, SoftwareBreakpoint>();
  private readonly hardware: Array<HardwareBreakpoint | undefined> = new Array(DEBUG_REGISTERS).fill(undefined);

  constructor(private readonly d: VmDebugDeps) {}

  get vcpuCount(): number {
    return this.d.vcpus;
  }

  private vcpu(index: number): KvmVcpu {
    if (!Number.isInteger(index) || index < 0 || index >= this.d.vcpus) throw new NodevisorError('EDEBUG', `there is no vCPU ${index}`);
    if (!this.d.isPaused()) throw new NodevisorError('EDEBUG', 'the VM must be paused for debugger access');
    const fd = this.d.control.fd(index);
    if (fd < 0) throw new NodevisorError('EDEBUG', `vCPU ${index} has exited`);
    return new KvmVcpu(fd);
  }

  regs(index: number): Regs {
    return this.vcpu(index).getRegs();
  }

  setRegs(index: number, regs: Regs): void {
    this.vcpu(index).setRegs(regs);
  }

  sregs(index: number): Sregs {
    return this.vcpu(index).getSregs();
  }

  setSregs(index: number, sregs: Sregs): void {
    this.vcpu(index).setSregs(sregs);
  }

  /** Raw struct kvm_fpu (see `layoutOf('kvm_fpu')`). */
  fpu(index: number): DataView {
    return this.vcpu(index).getFpu();
  }

  setFpu(index: number, fpu: DataView): void {
    this.vcpu(index).setFpu(fpu);
  }

  /**
   * Loads segment register `seg` of vCPU `index` with `selector` as a
   * segment load would: the hidden base, limit and attributes come from
   * the descriptor in the guest's GDT. A null selector makes it unusable.
   * False if the descriptor cannot be read (LDT selectors, beyond the limit).
   */
  loadSegment(index: number, seg: SegmentName, selector: number): boolean {
    const sregs = this.sregs(index);
    const s = sregs[seg];
    if ((selector & ~3) === 0) {
      sregs[seg] = { ...s, selector, unusable: 1, present: 0 };
      this.setSregs(index, sregs);
      return true;
    }
    if (selector & 4 || (selector | 7) > sregs.gdt.limit) return false;
    const bytes = this.readVirtual(index, sregs.gdt.base + BigInt(selector & ~7), 8);
    if (bytes.length < 8) return false;
    const lo = new DataView(bytes.buffer).getUint32(0, true);
    const hi = new DataView(bytes.buffer).getUint32(4, true);
    const g = (hi >>> 23) & 1;
    const rawLimit = (lo & 0xffff) | (hi & 0xf0000);
    sregs[seg] = {
      ...s,
      selector,
      base: BigInt((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) & 0xffffffffn,
      limit: g ? rawLimit * 4096 + 4095 : rawLimit,
      type: (hi >>> 8) & 0xf,
      s: (hi >>> 12) & 1,
      dpl: (hi >>> 13) & 3,
      present: (hi >>> 15) & 1,
      avl: (hi >>> 20) & 1,
      l: (hi >>> 21) & 1,
      db: (hi >>> 22) & 1,
      g,
      unusable: 0,
    };
    this.setSregs(index, sregs);
    return true;
  }

  /** Guest-physical address of `gva` under vCPU `index`'s paging, as a supervisor read; undefined if unmapped or not RAM. */
  private translate(sregs: Sregs, gva: bigint): number | undefined {
    const t = translateVirtual(this.d.memory, sregs, 0, gva, 'read', { ac: true });
    return 'fault' in t ? undefined : t.gpa;
  }

  /**
   * Up to `length` bytes at guest-virtual `gva` through vCPU `index`'s page
   * tables: fewer if an unmapped page (or one outside RAM) comes first.
   * The debugger's own breakpoints read as the bytes they replaced.
   */
  readVirtual(index: number, gva: bigint, length: number): Uint8Array {
    const out: number[] = [];
    this.eachPage(index, gva, length, (gpa, at, n) => {
      const bytes = this.d.memory.read(gpa, n);
      for (let i = 0; i < n; i++) out.push(this.software.get(at + BigInt(i))?.original ?? bytes[i]!);
    });
    return Uint8Array.from(out);
  }

  /** Writes `data` at guest-virtual `gva` (whatever the page's write permission); returns how many bytes were written. */
  writeVirtual(index: number, gva: bigint, data: Uint8Array): number {
    let done = 0;
    this.eachPage(index, gva, data.length, (gpa, at, n) => {
      for (let i = 0; i < n; i++) {
        const bp = this.software.get(at + BigInt(i));
        // Under one of our breakpoints the new byte is what it will restore.
        if (bp) bp.original = data[done + i]!;
        else this.d.memory.writeU8(gpa + i, data[done + i]!);
      }
      done += n;
    });
    return done;
  }

  private eachPage(index: number, gva: bigint, length: number, visit: (gpa: number, at: bigint, n: number) => void): void {
    const sregs = this.sregs(index);
    let done = 0;
    while (done < length) {
      const at = BigInt.asUintN(64, gva + BigInt(done));
      const n = Math.min(length - done, 4096 - Number(at & 0xfffn));
      const gpa = this.translate(sregs, at);
      if (gpa === undefined || !this.d.memory.contains(gpa, n)) return;
      visit(gpa, at, n);
      done += n;
    }
  }

  /**
   * Places an `int3` at `gva` (translated through vCPU `index`). Where the
   * address is not mapped yet - `break start_kernel` while the VMM's boot
   * page tables are still in use - a free debug register stands in for it
   * (it compares linear addresses, whatever the paging). False if neither
   * is possible.
   */
  insertSoftwareBreakpoint(index: number, gva: bigint): boolean {
    const at = BigInt.asUintN(64, gva);
    if (this.software.has(at) || this.findHardware(at, 'execute', 1, true) >= 0) return true;
    const gpa = this.translate(this.sregs(index), at);
    if (gpa === undefined || !this.d.memory.contains(gpa, 1)) return this.placeHardware({ gva: at, kind: 'execute', length: 1, standIn: true });
    if (this.software.size >= 256) return false;
    this.software.set(at, { gva: at, gpa, original: this.d.memory.readU8(gpa) });
    this.d.memory.writeU8(gpa, INT3);
    this.publishSoftware();
    return true;
  }

  removeSoftwareBreakpoint(gva: bigint): boolean {
    const at = BigInt.asUintN(64, gva);
    const bp = this.software.get(at);
    if (!bp) return this.clearHardware(this.findHardware(at, 'execute', 1, true));
    // Put the byte back unless the guest has since rewritten it.
    if (this.d.memory.readU8(bp.gpa) === INT3) this.d.memory.writeU8(bp.gpa, bp.original);
    this.software.delete(at);
    this.publishSoftware();
    return true;
  }

  private publishSoftware(): void {
    this.d.block.setBreakpoints([...this.software.keys()]);
  }

  /** Uses a free debug register for `gva`; false if all four are taken or the length is not 1, 2, 4 or 8 (aligned). */
  insertHardwareBreakpoint(gva: bigint, kind: HardwareBreakpointKind, length = 1): boolean {
    if (kind === 'execute') length = 1;
    if (LEN_BITS[length] === undefined || gva % BigInt(length) !== 0n) return false;
    return this.findHardware(gva, kind, length, false) >= 0 || this.placeHardware({ gva, kind, length });
  }

  removeHardwareBreakpoint(gva: bigint, kind: HardwareBreakpointKind, length = 1): boolean {
    return this.clearHardware(this.findHardware(gva, kind, kind === 'execute' ? 1 : length, false));
  }

  private findHardware(gva: bigint, kind: HardwareBreakpointKind, length: number, standIn: boolean): number {
    return this.hardware.findIndex((h) => h && h.gva === gva && h.kind === kind && h.length === length && (h.standIn ?? false) === standIn);
  }

  private placeHardware(h: HardwareBreakpoint): boolean {
    const slot = this.hardware.findIndex((x) => x === undefined);
    if (slot < 0) return false;
    this.hardware[slot] = h;
    return true;
  }

  private clearHardware(slot: number): boolean {
    if (slot < 0) return false;
    this.hardware[slot] = undefined;
    return true;
  }

  /** The breakpoint in debug register `n` (DR6 bit n says it fired); `standIn` for a software breakpoint placed there. */
  hardwareBreakpoint(n: number): Readonly<HardwareBreakpoint> | undefined {
    return this.hardware[n];
  }

  /**
   * Programs KVM_SET_GUEST_DEBUG on every vCPU for the breakpoints in place,
   * single-stepping vCPU `step` if given (with interrupts held off for the
   * step where KVM offers KVM_GUESTDBG_BLOCKIRQ), and forgets the last
   * debug stop. Call while paused, just before resuming.
   */
  arm(step?: number): void {
    const dr: bigint[] = [0n, 0n, 0n, 0n, 0n, 0n, 0n, 0n];
    let dr7 = 0n;
    this.hardware.forEach((h, n) => {
      if (!h) return;
      dr[n] = h.gva;
      dr7 |= (2n << BigInt(n * 2)) | (RW_BITS[h.kind] << BigInt(16 + n * 4)) | (LEN_BITS[h.length]! << BigInt(18 + n * 4));
    });
    if (dr7) dr[7] = dr7 | DR7_FIXED;
    const base =
      (this.software.size ? k('KVM_GUESTDBG_ENABLE') | k('KVM_GUESTDBG_USE_SW_BP') : 0) | (dr7 ? k('KVM_GUESTDBG_ENABLE') | k('KVM_GUESTDBG_USE_HW_BP') : 0);
    const blockIrq = this.d.guestDebugFlags & k('KVM_GUESTDBG_BLOCKIRQ');
    for (let i = 0; i < this.d.vcpus; i++) {
      const stepping = i === step ? k('KVM_GUESTDBG_ENABLE') | k('KVM_GUESTDBG_SINGLESTEP') | blockIrq : 0;
      if (this.d.control.fd(i) < 0) continue;
      this.vcpu(i).setGuestDebug(base | stepping, dr);
    }
    this.d.block.clearStop();
  }

  /** Removes every breakpoint and turns guest debugging off (a debugger detaching). */
  detach(): void {
    for (const gva of [...this.software.keys()]) this.removeSoftwareBreakpoint(gva);
    this.hardware.fill(undefined);
    this.arm();
  }
}
