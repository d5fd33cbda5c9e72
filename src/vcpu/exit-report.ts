import type { GuestMemory } from '../memory/guest-memory.js';
import { decodeRegs, type Regs, type Sregs } from '../kvm/structs.js';
import { translate, type KvmVcpu } from '../kvm/vcpu-fd.js';
import { RunOff, type RunPage } from './run-page.js';

const hex = (v: bigint | number, w = 16): string => v.toString(16).padStart(w, '0');

/** General registers as KVM_CAP_SYNC_REGS left them in the run page at the last exit. */
export function syncedRegs(run: RunPage): Regs {
  return decodeRegs(run.view, RunOff.syncRegs);
}

/** The guest-physical address of RIP (CS base + RIP, through the guest's page tables), or null if it is not mapped. */
export function fetchAddress(vcpu: KvmVcpu, regs: Regs, sregs: Sregs): bigint | null {
  const linear = sregs.cs.base + regs.rip;
  const paging = (sregs.cr0 & (1n << 31n)) !== 0n;
  return paging ? translate(vcpu, linear) : linear & 0xffffffffn;
}

/** Reads up to 15 instruction bytes at the guest's RIP, or [] if RIP is not in RAM. */
export function instructionBytes(vcpu: KvmVcpu, mem: GuestMemory, regs: Regs, sregs: Sregs): Uint8Array {
  try {
    const phys = fetchAddress(vcpu, regs, sregs);
    if (phys === null) return new Uint8Array();
    const at = Number(phys);
    let n = 15;
    while (n > 0 && !mem.contains(at, n)) n--;
    return n > 0 ? mem.read(at, n) : new Uint8Array();
  } catch {
    return new Uint8Array();
  }
}

/**
 * Where RIP points when that is not RAM (MMIO, the APIC pages, a hole):
 * "0x80000000" or "0xffffffff80000000 (guest-physical 0x80000000)"; null
 * when it is RAM or cannot be told. KVM cannot fetch instructions there and
 * reports an emulation failure, which would say nothing useful.
 */
export function fetchOutsideRam(vcpu: KvmVcpu, mem: GuestMemory, regs: Regs): string | null {
  let phys: bigint | null;
  let linear: bigint;
  try {
    const sregs = vcpu.getSregs();
    linear = sregs.cs.base + regs.rip;
    phys = fetchAddress(vcpu, regs, sregs);
  } catch {
    return null;
  }
  if (phys === null || mem.contains(Number(phys), 1)) return null;
  return linear === phys ? `0x${phys.toString(16)}` : `0x${linear.toString(16)} (guest-physical 0x${phys.toString(16)})`;
}

/** A multi-line register dump in the layout kernel oopses use. */
export function formatRegisters(regs: Regs, sregs?: Sregs): string {
  const r = regs;
  const lines = [
    `RIP: ${hex(r.rip)} RFLAGS: ${hex(r.rflags, 8)}`,
    `RAX: ${hex(r.rax)} RBX: ${hex(r.rbx)} RCX: ${hex(r.rcx)}`,
    `RDX: ${hex(r.rdx)} RSI: ${hex(r.rsi)} RDI: ${hex(r.rdi)}`,
    `RBP: ${hex(r.rbp)} RSP: ${hex(r.rsp)} R8:  ${hex(r.r8)}`,
    `R9:  ${hex(r.r9)} R10: ${hex(r.r10)} R11: ${hex(r.r11)}`,
    `R12: ${hex(r.r12)} R13: ${hex(r.r13)} R14: ${hex(r.r14)}`,
    `R15: ${hex(r.r15)}`,
  ];
  if (sregs) {
    const s = sregs;
    lines.push(
      `CS: ${hex(s.cs.selector, 4)} (base ${hex(s.cs.base)} l=${s.cs.l} db=${s.cs.db}) SS: ${hex(s.ss.selector, 4)} DS: ${hex(s.ds.selector, 4)}`,
      `CR0: ${hex(s.cr0)} CR2: ${hex(s.cr2)} CR3: ${hex(s.cr3)}`,
      `CR4: ${hex(s.cr4)} EFER: ${hex(s.efer)} GDT: ${hex(s.gdt.base)}+${s.gdt.limit} IDT: ${hex(s.idt.base)}+${s.idt.limit}`,
    );
  }
  return lines.join('\n');
}

export const formatBytes = (b: Uint8Array): string => (b.length ? Array.from(b, (x) => hex(x, 2)).join(' ') : '(not readable)');
