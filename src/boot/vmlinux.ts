/**
 * Loads an uncompressed x86-64 Linux kernel (the ELF `vmlinux` at the top of
 * a kernel build tree) the way Firecracker-style VMMs do: each PT_LOAD
 * segment at its physical address (p_paddr), the bytes past p_filesz
 * zeroed, and the vCPU entered in 64-bit mode at `startup_64`
 * (arch/x86/kernel/head_64.S) with RSI pointing at boot_params.
 *
 * The ELF entry of an x86-64 vmlinux is already physical: vmlinux.lds.S says
 * ENTRY(phys_startup_64), i.e. startup_64 - __START_KERNEL_map. Linkers that
 * leave a virtual entry (0xffffffff8xxxxxxx) are handled by translating it
 * through the PT_LOAD segment that contains it.
 *
 * ELF layout: System V ABI gABI ch. 4 ("ELF Header", "Program Header").
 */
import { NodevisorError } from '../kvm/errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { hex } from './bytes.js';

const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46] as const;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_EXEC = 2;
const PT_INTERP = 3;
const ET_DYN = 3;
const EM_386 = 3;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const EM_RISCV = 243;
const PT_LOAD = 1;
const ELF64_EHDR_SIZE = 64;
const ELF64_PHDR_SIZE = 56;
const PN_XNUM = 0xffff;

export interface VmlinuxSegment {
  /** Physical load address (p_paddr). */
  readonly paddr: number;
  readonly vaddr: bigint;
  /** The file bytes (p_filesz of them); a view into the image. */
  readonly data: Uint8Array;
  /** Size in memory (p_memsz); bytes past `data` are zeroed (.bss, .brk). */
  readonly memsz: number;
}

export interface Vmlinux {
  /** Physical address of startup_64. */
  readonly entry: number;
  readonly segments: readonly VmlinuxSegment[];
  /** Lowest physical address a segment occupies. */
  readonly start: number;
  /** One past the highest physical address a segment occupies. */
  readonly end: number;
}

function fail(source: string, why: string): NodevisorError {
  return new NodevisorError('EKERNEL', `${source} ${why}`);
}

function machineName(machine: number): string {
  switch (machine) {
    case EM_386:
      return 'a 32-bit x86 (i386)';
    case EM_AARCH64:
      return 'an arm64';
    case EM_RISCV:
      return 'a RISC-V';
    default:
      return `a non-x86-64 (e_machine ${machine})`;
  }
}

/** True if `data` starts with the ELF magic. */
export function isElf(data: Uint8Array): boolean {
  return ELF_MAGIC.every((b, i) => data[i] === b);
}

/**
 * Parses an x86-64 vmlinux. Throws NodevisorError('EKERNEL') for anything
 * else: not ELF, 32-bit or big-endian ELF, another machine, no PT_LOAD
 * segments, segments past the end of the file or overlapping, or an entry
 * point outside every segment.
 */
export function parseVmlinux(data: Uint8Array, source = 'the kernel image'): Vmlinux {
  if (!isElf(data)) throw fail(source, 'is not an ELF file (no \\x7fELF signature)');
  if (data.length < ELF64_EHDR_SIZE) throw fail(source, `is truncated: ${data.length} bytes, shorter than an ELF64 header`);
  if (data[4] !== ELFCLASS64) throw fail(source, `is a ${data[4] === 1 ? '32-bit (ELFCLASS32)' : `class-${data[4]}`} ELF file; an x86-64 vmlinux is ELFCLASS64`);
  if (data[5] !== ELFDATA2LSB) throw fail(source, 'is a big-endian ELF file; an x86-64 vmlinux is little-endian');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const type = view.getUint16(16, true);
  const machine = view.getUint16(18, true);
  if (machine !== EM_X86_64) throw fail(source, `is ${machineName(machine)} ELF file, not x86-64`);
  if (type !== ET_EXEC && type !== ET_DYN) throw fail(source, `is an ELF file of type ${type} (not an executable): is it an object file or a module?`);
  const entryRaw = view.getBigUint64(24, true);
  const phoff = view.getBigUint64(32, true);
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phnum === PN_XNUM) throw fail(source, 'has more than 65534 program headers (PN_XNUM), which is not a vmlinux');
  if (phnum === 0) throw fail(source, 'has no program headers: nothing to load');
  if (phentsize < ELF64_PHDR_SIZE) throw fail(source, `has ${phentsize}-byte program headers; ELF64 needs ${ELF64_PHDR_SIZE}`);
  if (phoff + BigInt(phnum * phentsize) > BigInt(data.length)) throw fail(source, 'is truncated: its program headers run past the end of the file');

  // A program with an interpreter (ld.so) is user space, never a kernel.
  for (let i = 0; i < phnum; i++) {
    if (view.getUint32(Number(phoff) + i * phentsize, true) === PT_INTERP) {
      throw fail(source, 'is a user-space program (it names an ELF interpreter), not a Linux kernel');
    }
  }

  const segments: VmlinuxSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = Number(phoff) + i * phentsize;
    if (view.getUint32(at, true) !== PT_LOAD) continue;
    const offset = view.getBigUint64(at + 8, true);
    const vaddr = view.getBigUint64(at + 16, true);
    const paddr = view.getBigUint64(at + 24, true);
    const filesz = view.getBigUint64(at + 32, true);
    const memsz = view.getBigUint64(at + 40, true);
    if (memsz === 0n) continue;
    if (filesz > memsz) throw fail(source, `segment ${i} is corrupt: p_filesz ${hex(filesz)} exceeds p_memsz ${hex(memsz)}`);
    if (offset + filesz > BigInt(data.length)) throw fail(source, `is truncated: segment ${i} (${filesz} bytes at file offset ${hex(offset)}) runs past the end of the ${data.length}-byte file`);
    if (paddr + memsz > BigInt(Number.MAX_SAFE_INTEGER)) throw fail(source, `segment ${i} has an implausible physical address ${hex(paddr)}`);
    segments.push({ paddr: Number(paddr), vaddr, data: data.subarray(Number(offset), Number(offset + filesz)), memsz: Number(memsz) });
  }
  if (segments.length === 0) throw fail(source, 'has no PT_LOAD segments: nothing to load');
  const sorted = [...segments].sort((a, b) => a.paddr - b.paddr);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (sorted[i]!.paddr < prev.paddr + prev.memsz) {
      throw fail(source, `has overlapping PT_LOAD segments at physical ${hex(prev.paddr)} and ${hex(sorted[i]!.paddr)}`);
    }
  }
  const start = sorted[0]!.paddr;
  const last = sorted[sorted.length - 1]!;
  return { entry: physicalEntry(entryRaw, segments, source), segments: sorted, start, end: last.paddr + last.memsz };
}

function physicalEntry(entry: bigint, segments: readonly VmlinuxSegment[], source: string): number {
  // Physical first: that is what vmlinux.lds.S produces. (The per-CPU
  // segment has virtual address 0, so a virtual match on low addresses
  // would be wrong for a physical entry.)
  for (const s of segments) {
    if (entry >= BigInt(s.paddr) && entry < BigInt(s.paddr + s.memsz)) return Number(entry);
  }
  for (const s of segments) {
    if (entry >= s.vaddr && entry < s.vaddr + BigInt(s.memsz)) return s.paddr + Number(entry - s.vaddr);
  }
  throw fail(source, `has its entry point ${hex(entry)} outside every PT_LOAD segment`);
}

/**
 * Copies the segments into guest RAM at their physical addresses and zeroes
 * the rest of each (p_memsz - p_filesz). Throws NodevisorError('EMEMORY') if
 * a segment is not entirely RAM.
 */
export function loadVmlinux(mem: GuestMemory, vmlinux: Vmlinux): void {
  for (const s of vmlinux.segments) {
    if (!mem.contains(s.paddr, s.memsz)) {
      throw new NodevisorError('EMEMORY', `the kernel's segment at ${hex(s.paddr)}-${hex(s.paddr + s.memsz)} is not in guest RAM: give the VM more memory (--memory)`);
    }
    mem.write(s.paddr, s.data);
    mem.fill(s.paddr + s.data.length, s.memsz - s.data.length);
  }
}
