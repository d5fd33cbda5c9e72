/**
 * What to do when KVM's instruction emulator gives up on an instruction
 * (KVM_EXIT_INTERNAL_ERROR, suberror KVM_INTERNAL_ERROR_EMULATION). On the
 * software-virtualising kvm_pvm hosts (shared/notes/host-kvm.md) guest ring 0
 * runs through that emulator, which cannot execute int3, int n, ud1,
 * cmpxchg16b, popcnt, fwait and more. The few a Linux kernel needs are done
 * here: a pure function from the instruction bytes and the vCPU state to an
 * action the run loop applies. Nothing here issues an ioctl; the only side
 * effects are the ones the instruction itself has on guest memory
 * (cmpxchg16b's compare-and-swap, and the accessed/dirty bits of the page
 * walk, both as the CPU would make them).
 *
 * How the run loop applies each action (see also the comments on the types):
 * - 'emulated': write `regs` into the run page's sync_regs (KVM_CAP_SYNC_REGS)
 *   and set KVM_SYNC_X86_REGS in kvm_dirty_regs before the next KVM_RUN
 *   (or KVM_SET_REGS with the merged registers).
 * - 'inject-exception', soft=true (int3, int n, into): KVM_SET_VCPU_EVENTS has
 *   no instruction-length field ("The API doesn't provide the instruction
 *   length for software exceptions", arch/x86/kvm/x86.c). For a soft event
 *   KVM supplies one itself: VMX writes vcpu->arch.event_exit_inst_len, the
 *   length recorded at some earlier exit, into VM_ENTRY_INSTRUCTION_LEN; SVM
 *   re-decodes the instruction at RIP. After an emulation failure neither
 *   gives the right return address. So: set RIP to `rip` (the next
 *   instruction) through sync_regs, then inject `vector` as an event KVM does
 *   not adjust: interrupt.injected=1, interrupt.nr=vector, interrupt.soft=0
 *   (not exception.nr=3/4: KVM always treats #BP/#OF as soft). The CPU then
 *   pushes exactly `rip`. The gate-DPL check that only software events get
 *   (SDM Vol. 3 6.12.1.1) is done here before returning, so delivering the
 *   event as a plain interrupt changes nothing the guest can see (short of
 *   the EXT bit in the error code should delivery itself fault).
 * - 'inject-exception', soft=false (faults: #UD, #GP, #PF, #NM, #SS, #AC):
 *   RIP stays at the faulting instruction (`rip` equals the current RIP);
 *   exception.injected=1, exception.nr=vector, has_error_code/error_code from
 *   `errorCode`. For #PF set CR2 = `cr2` first (KVM_SET_SREGS, or sync_sregs
 *   with KVM_SYNC_X86_SREGS), or with KVM_CAP_EXCEPTION_PAYLOAD enabled use
 *   exception.pending=1, exception_has_payload=1, exception_payload=cr2 and
 *   KVM_VCPUEVENT_VALID_PAYLOAD in flags.
 * In both injection cases start from KVM_GET_VCPU_EVENTS (or sync_events,
 * written back with KVM_SYNC_X86_EVENTS in kvm_dirty_regs) and change only
 * those fields: KVM_SET_VCPU_EVENTS also rewrites the NMI state from the
 * struct. If an event is already injected there, deliver that one first
 * (resume without acting; the instruction fails again afterwards).
 */
import { native } from '../../kvm/addon.js';
import type { RegName, Regs, SegmentName, Sregs } from '../../kvm/structs.js';
import { GuestMemoryError, type GuestMemory } from '../../memory/guest-memory.js';
import { decodeInstruction, InstructionDecodeError, type CpuMode, type DecodedInstruction } from './insn-decoder.js';
import { cpuModeOf, isLongMode, isProtectedMode, linearAddress, readVirtual, translateVirtual, type WalkFault } from './page-walk.js';
import { formatInstruction } from './disasm.js';
import { Cr0 } from '../../kvm/x86-bits.js';
import { protectedModeIret } from './iret.js';

/** Exception vectors used here (SDM Vol. 3 table 6-1). */
export const Vector = { BP: 3, OF: 4, UD: 6, NM: 7, SS: 12, GP: 13, PF: 14, AC: 17 } as const;

/** Deliver an exception or software interrupt to the guest. */
export interface InjectException {
  kind: 'inject-exception';
  vector: number;
  /** Pushed by the exception (#GP, #PF, #SS, #AC); absent for the others. */
  errorCode?: number;
  /** For #PF: the faulting linear address, to put in CR2 before delivery. */
  cr2?: bigint;
  /** Length of the instruction at RIP, prefixes included. */
  instructionLength: number;
  /**
   * True for software events (int3, int n, into): trap-like, the handler returns
   * to the next instruction. False for faults: the handler sees the faulting RIP.
   */
  soft: boolean;
  /** The RIP the guest must have when the event is delivered, i.e. the return address it pushes. */
  rip: bigint;
  /** e.g. "int3", "#PF on popcnt rax, qword ptr [rdi]". */
  description: string;
}

/** The instruction was carried out; apply `regs` and resume. */
export interface Emulated {
  kind: 'emulated';
  /** New register values: always rip and rflags, plus any general register written. */
  regs: Partial<Regs>;
  /** Segment registers the instruction loaded (a far return), if any. */
  sregs?: Partial<Sregs>;
  instructionLength: number;
  description: string;
}

/** No fallback applies; the VM should stop with this report. */
export interface Unhandled {
  kind: 'unhandled';
  reason: string;
  /** "f3 0f b8 07: popcnt eax, dword ptr [rdi]"-style text for the report. */
  disassembly: string;
}

export type QuirkAction = InjectException | Emulated | Unhandled;

/** General registers in ModRM/REX encoding order (SDM Vol. 2 table 2-2), unlike struct kvm_regs' order. */
const GPR: readonly RegName[] = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];

/** RFLAGS bits (SDM Vol. 1 figure 3-8). */
const F = { CF: 1n, PF: 4n, AF: 16n, ZF: 64n, SF: 128n, OF: 2048n, RF: 1n << 16n, VM: 1n << 17n, AC: 1n << 18n } as const;
const IOPL_SHIFT = 12n;

const hexBytes = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

/** Everything the handlers need about the failing instruction. */
interface Ctx {
  d: DecodedInstruction;
  regs: Regs;
  sregs: Sregs;
  mem: GuestMemory;
  cpl: number;
  mode: CpuMode;
  /** Address of the next instruction (RIP wraps at the code size). */
  nextRip: bigint;
  text: string;
  bytes: Uint8Array;
}

/**
 * Decides how to get past the instruction KVM could not emulate. `bytes` are
 * the instruction bytes at RIP (KVM reports 15; fewer are fine if the
 * instruction fits), `regs`/`sregs` the vCPU state at the exit, `cpl` the
 * current privilege level: sregs.ss.dpl, which is how KVM defines it
 * (CS.DPL differs in conforming code segments), and 0 when CR0.PE is clear.
 */
export function handleEmulationFailure(bytes: Uint8Array, regs: Regs, sregs: Sregs, mem: GuestMemory, cpl: number): QuirkAction {
  const mode = cpuModeOf(sregs);
  let d: DecodedInstruction;
  try {
    d = decodeInstruction(bytes, mode);
  } catch (e) {
    if (!(e instanceof InstructionDecodeError)) throw e;
    return { kind: 'unhandled', reason: e.message, disassembly: `${hexBytes(bytes.subarray(0, 15))}: (undecodable)` };
  }
  const ipMask = mode === 64 ? (1n << 64n) - 1n : mode === 32 ? 0xffff_ffffn : 0xffffn;
  const c: Ctx = {
    d,
    regs,
    sregs,
    mem,
    cpl,
    mode,
    nextRip: (regs.rip + BigInt(d.length)) & ipMask,
    text: formatInstruction(d, regs.rip),
    bytes: bytes.subarray(0, d.length),
  };
  try {
    return dispatch(c);
  } catch (e) {
    // Every guest-physical access goes through checked paths; this is the backstop.
    if (e instanceof GuestMemoryError) return unhandled(c, `${c.text} touches memory outside guest RAM (${e.message})`);
    throw e;
  }
}

/**
 * Up to 15 instruction bytes at CS:RIP read through the guest's page tables,
 * for when KVM did not supply them (KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES
 * clear). Stops at the first page that cannot be fetched from; empty if RIP's
 * own page cannot.
 */
export function fetchInstructionBytes(mem: GuestMemory, sregs: Sregs, rip: bigint, cpl: number): Uint8Array {
  const linear = linearAddress(sregs, 'cs', rip);
  const first = Math.min(15, 4096 - Number(linear & 0xfffn));
  const head = readVirtual(mem, sregs, cpl, linear, first, { access: 'execute' });
  if ('fault' in head) return new Uint8Array();
  if (first === 15) return head.bytes;
  const tail = readVirtual(mem, sregs, cpl, linear + BigInt(first), 15 - first, { access: 'execute' });
  if ('fault' in tail) return head.bytes;
  const out = new Uint8Array(15);
  out.set(head.bytes);
  out.set(tail.bytes, first);
  return out;
}

function dispatch(c: Ctx): QuirkAction {
  const { d } = c;
  const isCmpxchg16b = d.map === '0f' && d.opcode === 0xc7 && d.modrm?.reg === 1 && d.rex?.w === true && d.mode === 64;
  const primary = d.map === 'primary' && !d.vex;
  const twoByte = d.map === '0f' && !d.vex;
  // UD0/UD1/UD2 exist to raise #UD (SDM Vol. 2, UD).
  if (twoByte && (d.opcode === 0x0b || d.opcode === 0xb9 || d.opcode === 0xff)) return fault(c, Vector.UD);
  const known = (primary && [0xcc, 0xcd, 0xce, 0x9b, 0xcf].includes(d.opcode)) || (twoByte && d.opcode === 0xb8 && d.prefixes.lastRep === 0xf3) || isCmpxchg16b;
  // LOCK on anything but a locked read-modify-write of memory raises #UD (SDM Vol. 2, LOCK).
  if (known && d.prefixes.lock && !(isCmpxchg16b && d.addressMode?.kind === 'mem')) return fault(c, Vector.UD);
  if (primary) {
    switch (d.opcode) {
      case 0xcc:
        return softEvent(c, Vector.BP);
      case 0xcd:
        return softEvent(c, Number(d.immediate!.value));
      case 0xce: // INTO (not encodable in 64-bit mode): #OF only when OF=1
        return (c.regs.rflags & F.OF) !== 0n ? softEvent(c, Vector.OF) : emulated(c, {});
      case 0x9b:
        return fwait(c);
      case 0xcf:
        return iret(c);
    }
  }
  if (twoByte && d.opcode === 0xb8 && d.prefixes.lastRep === 0xf3) return popcnt(c);
  if (isCmpxchg16b) return cmpxchg16b(c);
  return unhandled(c, `no fallback for ${c.text}`);
}

function unhandled(c: Ctx, reason: string): Unhandled {
  return { kind: 'unhandled', reason, disassembly: `${hexBytes(c.bytes)}: ${c.text}` };
}

function fault(c: Ctx, vector: number, errorCode?: number, cr2?: bigint): InjectException {
  const names: Record<number, string> = { 6: '#UD', 7: '#NM', 12: '#SS', 13: '#GP', 14: '#PF', 17: '#AC' };
  const out: InjectException = {
    kind: 'inject-exception',
    vector,
    instructionLength: c.d.length,
    soft: false,
    rip: c.regs.rip,
    description: `${names[vector] ?? `vector ${vector}`} on ${c.text}`,
  };
  if (errorCode !== undefined) out.errorCode = errorCode;
  if (cr2 !== undefined) out.cr2 = cr2;
  return out;
}

/** Completes the instruction: RIP advanced, RF cleared (the CPU clears it after each completed instruction, SDM Vol. 3 18.3.1.1). */
function emulated(c: Ctx, regs: Partial<Regs>): Emulated {
  const rflags = (regs.rflags ?? c.regs.rflags) & ~F.RF;
  return { kind: 'emulated', regs: { ...regs, rip: c.nextRip, rflags }, instructionLength: c.d.length, description: c.text };
}

/**
 * INT3, INT n, INTO. The handler must see the next instruction's address, so
 * the event is returned with `rip` = next RIP. Checks the CPU makes only for
 * software events are done here (SDM Vol. 3 6.12.1.1, 20.3.3).
 */
function softEvent(c: Ctx, vector: number): InjectException {
  const { regs, sregs, cpl } = c;
  const iopl = Number((regs.rflags >> IOPL_SHIFT) & 3n);
  if (c.d.opcode === 0xcd && (regs.rflags & F.VM) !== 0n && iopl < 3) return fault(c, Vector.GP, 0);
  if (isProtectedMode(sregs) && cpl > 0) {
    const dpl = gateDpl(c, vector);
    // Beyond the IDT limit, or a gate more privileged than the caller: #GP(vector*8+2) (IDT bit set).
    if (dpl === 'beyond-limit' || (dpl !== null && cpl > dpl)) return fault(c, Vector.GP, vector * 8 + 2);
  }
  return {
    kind: 'inject-exception',
    vector,
    instructionLength: c.d.length,
    soft: true,
    rip: c.nextRip,
    description: c.text,
  };
}

/** The DPL of IDT gate `vector`; null if the gate cannot be read (delivery will report that itself). */
function gateDpl(c: Ctx, vector: number): number | 'beyond-limit' | null {
  const size = isLongMode(c.sregs) ? 16 : 8;
  if (vector * size + size - 1 > c.sregs.idt.limit) return 'beyond-limit';
  // IDT reads are implicit supervisor accesses (SDM Vol. 3 4.6): walk them as CPL 0.
  const r = readVirtual(c.mem, c.sregs, 0, c.sregs.idt.base + BigInt(vector * size), 8, { ac: true });
  if ('fault' in r) return null;
  return (r.bytes[5]! >> 5) & 3;
}

/** IRET outside 64-bit and real mode (see iret.ts); the emulator handles those itself. */
function iret(c: Ctx): QuirkAction {
  if (c.mode === 64 || !isProtectedMode(c.sregs) || c.d.operandSize === 64) return unhandled(c, `no fallback for ${c.text} in this mode`);
  const r = protectedModeIret(c.regs, c.sregs, c.mem, c.cpl, c.d.operandSize === 16 ? 16 : 32);
  switch (r.kind) {
    case 'done':
      // Not emulated(): RIP and RFLAGS come from the frame.
      return { kind: 'emulated', regs: r.regs, sregs: r.sregs, instructionLength: c.d.length, description: c.text };
    case 'fault':
      return fault(c, r.vector, r.errorCode);
    case 'refused':
      return unhandled(c, `${c.text}: ${r.reason}`);
  }
}

/** WAIT/FWAIT: only checks for pending x87 state; #NM when CR0.MP and CR0.TS are both set (SDM Vol. 2, WAIT/FWAIT). */
function fwait(c: Ctx): QuirkAction {
  if ((c.sregs.cr0 & Cr0.MP) !== 0n && (c.sregs.cr0 & Cr0.TS) !== 0n) return fault(c, Vector.NM);
  // A pending unmasked x87 exception would raise #MF; the FPU state is not visible here,
  // and the kernel code that trips this (fwait after fnclex/fninit) has none pending.
  return emulated(c, {});
}

/** The ModRM memory operand's segment and offset (SDM Vol. 2 2.1.5), RIP-relative from the next instruction. */
function effectiveAddress(c: Ctx): { seg: SegmentName; offset: bigint } {
  const a = c.d.addressMode;
  if (a?.kind !== 'mem') throw new Error('internal: effectiveAddress on a register operand');
  let ea = a.disp;
  if (a.base === 'rip') ea += c.nextRip;
  else if (a.base !== null) ea += c.regs[GPR[a.base]!];
  if (a.index !== null) ea += c.regs[GPR[a.index]!] * BigInt(a.scale);
  return { seg: a.segment, offset: BigInt.asUintN(a.addressSize, ea) };
}

/** A failed page walk as the CPU reports it: #PF, #GP/#SS for non-canonical addresses, or a VMM limit. */
function walkFailure(c: Ctx, f: WalkFault, seg: SegmentName): QuirkAction {
  switch (f.fault) {
    case 'outside-ram': {
      const where = f.level === 0 ? 'the operand' : `the level-${f.level} page-table entry`;
      return unhandled(c, `${c.text}: ${where} for linear address ${hex(f.address)} is at guest-physical ${hex(f.gpa ?? 0)}, outside guest RAM`);
    }
    case 'non-canonical':
      return fault(c, seg === 'ss' ? Vector.SS : Vector.GP, 0);
    default:
      return fault(c, Vector.PF, f.errorCode, f.address);
  }
}

/** POPCNT r, r/m (F3 0F B8 /r): ZF = (source == 0); CF, OF, SF, AF, PF cleared (SDM Vol. 2, POPCNT). */
function popcnt(c: Ctx): QuirkAction {
  const { d, regs } = c;
  if (d.prefixes.repne) return unhandled(c, `${c.text}: both F2 and F3 prefixes`);
  const size = d.operandSize;
  const a = d.addressMode!;
  let src: bigint;
  if (a.kind === 'reg') src = BigInt.asUintN(size, regs[GPR[a.reg]!]);
  else {
    const { seg, offset } = effectiveAddress(c);
    const linear = linearAddress(c.sregs, seg, offset);
    // Alignment checking: user-mode misaligned accesses fault when CR0.AM and RFLAGS.AC are set (SDM Vol. 3 6.15, #AC).
    const alignCheck = c.cpl === 3 && (c.sregs.cr0 & Cr0.AM) !== 0n && (regs.rflags & F.AC) !== 0n;
    if (alignCheck && linear % BigInt(size / 8) !== 0n) return fault(c, Vector.AC, 0);
    const r = readVirtual(c.mem, c.sregs, c.cpl, linear, size / 8, { ac: (regs.rflags & F.AC) !== 0n, setAccessedDirty: true });
    if ('fault' in r) return walkFailure(c, r, seg);
    src = r.bytes.reduceRight((v, b) => (v << 8n) | BigInt(b), 0n);
  }
  let count = 0n;
  for (let v = src; v !== 0n; v &= v - 1n) count++;
  const dest = GPR[d.modrm!.reg | (d.rex?.r ? 8 : 0)]!;
  // A 16-bit destination keeps bits 63:16; 32-bit results zero-extend (SDM Vol. 1 3.4.1.1).
  const value = size === 16 ? (regs[dest] & ~0xffffn) | count : count;
  const rflags = (regs.rflags & ~(F.CF | F.PF | F.AF | F.ZF | F.SF | F.OF)) | (src === 0n ? F.ZF : 0n);
  return emulated(c, { [dest]: value, rflags });
}

/**
 * CMPXCHG16B m128 (REX.W 0F C7 /1): compare RDX:RAX with the 16 bytes at m128;
 * if equal, ZF=1 and RCX:RBX is stored, else ZF=0 and RDX:RAX gets the memory
 * value. Done as one host `lock cmpxchg16b` on the guest's RAM so other vCPUs
 * see it atomic. m128 must be 16-byte aligned, else #GP(0) (SDM Vol. 2, CMPXCHG8B/CMPXCHG16B).
 */
function cmpxchg16b(c: Ctx): QuirkAction {
  const { d, regs } = c;
  if (d.addressMode!.kind === 'reg') return fault(c, Vector.UD);
  if (d.prefixes.rep || d.prefixes.repne) return unhandled(c, `${c.text}: F2/F3 prefix on cmpxchg16b`);
  const { seg, offset } = effectiveAddress(c);
  const linear = linearAddress(c.sregs, seg, offset);
  if ((linear & 15n) !== 0n) return fault(c, Vector.GP, 0);
  // The instruction always writes (the old value back on failure), so it needs a writable page either way.
  const t = translateVirtual(c.mem, c.sregs, c.cpl, linear, 'write', { ac: (regs.rflags & F.AC) !== 0n, setAccessedDirty: true });
  if ('fault' in t) return walkFailure(c, t, seg);
  if (!c.mem.contains(t.gpa, 16)) {
    return unhandled(c, `${c.text}: operand at guest-physical ${hex(t.gpa)} is not guest RAM (device memory cannot be compare-and-swapped)`);
  }
  const view = c.mem.view(t.gpa, 16);
  // The addon needs the host address itself 16-byte aligned; guest RAM is mapped page-aligned, so an aligned GPA is.
  if (native.addressOf(view) % 16n !== 0n) {
    return unhandled(c, `${c.text}: guest-physical ${hex(t.gpa)} is not 16-byte aligned in the host mapping`);
  }
  const expected = new BigUint64Array([regs.rax, regs.rdx]);
  const replacement = new BigUint64Array([regs.rbx, regs.rcx]);
  const swapped = native.cmpxchg16b(view, 0, expected, replacement);
  const rflags = swapped ? regs.rflags | F.ZF : regs.rflags & ~F.ZF;
  return emulated(c, swapped ? { rflags } : { rax: expected[0]!, rdx: expected[1]!, rflags });
}
