/**
 * Guest-virtual to guest-physical translation done in the VMM, for the
 * host-quirk fallbacks: they must reach an instruction's memory operand
 * without a vCPU ioctl (KVM_TRANSLATE costs ~10 us here and reports neither
 * the fault kind nor an error code).
 *
 * Implements the four paging modes of Intel SDM Vol. 3 chapter 4 (32-bit,
 * PAE, 4-level, 5-level) with their permission rules (4.6) and #PF error
 * codes (4.7). Page-table entries are read through the bounds-checked
 * GuestMemory: an entry outside RAM is reported as a fault, never read.
 * Not modelled: protection keys (CR4.PKE/PKS), shadow stacks, and PAE's
 * PDPTE caching (PDPTEs are re-read from memory on every walk).
 */
import { Cr0, Cr4, Efer } from '../../kvm/x86-bits.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { Sregs, SegmentName } from '../../kvm/structs.js';
import type { CpuMode } from './insn-decoder.js';

export type AccessKind = 'read' | 'write' | 'execute';

export interface WalkOptions {
  /** RFLAGS.AC, which lets explicit supervisor accesses reach user pages under SMAP. Default false. */
  ac?: boolean;
  /** Set the accessed bits of the entries used and the dirty bit of the final one on writes, as the CPU does. Default false. */
  setAccessedDirty?: boolean;
  /** The guest's MAXPHYADDR: physical-address bits above it in an entry are reserved. Default 52 (none beyond the architectural ones). */
  maxPhysAddr?: number;
}

export interface Translation {
  gpa: number;
  /** Size of the page that maps the address: 4 KiB, 2 MiB, 4 MiB or 1 GiB. */
  pageSize: number;
}

export type FaultKind = 'not-present' | 'reserved' | 'protection' | 'outside-ram' | 'non-canonical';

/**
 * Why an access cannot proceed. `not-present`, `reserved` and `protection` are
 * page faults (#PF with `errorCode`; CR2 = `address`); `non-canonical` is a
 * #GP(0) (#SS(0) for stack accesses), not a page fault (SDM Vol. 3 4.5); and
 * `outside-ram` means a paging-structure entry (level >= 1) or the data itself
 * (level 0) lies outside guest RAM, which the VMM cannot read.
 */
export interface WalkFault {
  fault: FaultKind;
  /** Paging level where the walk stopped: 5 = PML5E .. 1 = PTE; 0 = the final page (or no walk). */
  level: number;
  /** The #PF error code (SDM Vol. 3 4.7); 0 for non-canonical and outside-ram. */
  errorCode: number;
  /** The linear address of the access (what CR2 gets on a #PF). */
  address: bigint;
  /** For outside-ram: the guest-physical address that is not RAM. */
  gpa?: number;
}

/** #PF error-code bits (SDM Vol. 3 figure 4-12). */
export const PfError = { present: 1, write: 2, user: 4, reserved: 8, fetch: 16 } as const;


const P = 1n;
const RW = 2n;
const US = 4n;
const PS = 1n << 7n;
const XD = 1n << 63n;
const ADDR_MASK = 0x000f_ffff_ffff_f000n; // bits 51:12
const U64 = (1n << 64n) - 1n;

/** Bits lo..hi inclusive. */
const bits = (lo: number, hi: number): bigint => (hi < lo ? 0n : ((1n << BigInt(hi - lo + 1)) - 1n) << BigInt(lo));

export const isProtectedMode = (s: Sregs): boolean => (s.cr0 & Cr0.PE) !== 0n;
export const isLongMode = (s: Sregs): boolean => (s.efer & Efer.LMA) !== 0n;

/** The code size the CPU is executing in: 64-bit mode needs EFER.LMA and CS.L; otherwise CS.D/B decides. */
export function cpuModeOf(s: Sregs): CpuMode {
  if (isLongMode(s) && s.cs.l) return 64;
  return s.cs.db ? 32 : 16;
}

/**
 * Segment base + offset. In 64-bit mode only FS and GS have a base (SDM Vol. 3
 * 3.4.4) and addresses are 64 bits; elsewhere linear addresses wrap at 4 GiB.
 * Segment limits are not checked.
 */
export function linearAddress(sregs: Sregs, seg: SegmentName, offset: bigint): bigint {
  if (cpuModeOf(sregs) === 64) {
    const base = seg === 'fs' || seg === 'gs' ? sregs[seg].base : 0n;
    return (base + offset) & U64;
  }
  return (sregs[seg].base + offset) & 0xffff_ffffn;
}

interface Level {
  level: number;
  /** Bits of the linear address that index this table. */
  shift: number;
  /** Entry width in bytes. */
  entryBytes: 4 | 8;
  /** A leaf at this level maps a page of 2^shift bytes when PS=1 is honoured here. */
  psAllowed: boolean;
}

type PagingMode = '32-bit' | 'pae' | '4-level' | '5-level';

function pagingMode(s: Sregs): PagingMode | null {
  if ((s.cr0 & Cr0.PG) === 0n) return null;
  if ((s.cr4 & Cr4.PAE) === 0n) return '32-bit';
  if (!isLongMode(s)) return 'pae';
  return (s.cr4 & Cr4.LA57) !== 0n ? '5-level' : '4-level';
}

/**
 * Reserved bits of a present entry (SDM Vol. 3 tables 4-4 to 4-20). `leafPs`
 * says whether the entry has PS=1 at a level where that makes it a leaf.
 */
function reservedBits(mode: PagingMode, level: number, leafPs: boolean, nxe: boolean, maxPhys: number): bigint {
  if (mode === '32-bit') {
    // Only a 4-MiB PDE has reserved bits: 21, and 20:13 beyond MAXPHYADDR (PSE-36, at most 40 bits).
    return level === 2 && leafPs ? (1n << 21n) | bits(13 + Math.min(maxPhys, 40) - 32, 20) : 0n;
  }
  // PAE entries reserve bits 62:MAXPHYADDR; 4/5-level ones only 51:MAXPHYADDR (52-62 are ignored or PKEY).
  let r = mode === 'pae' ? bits(maxPhys, 62) : bits(maxPhys, 51);
  if (mode === 'pae' && level === 3) return r | XD | bits(1, 2) | bits(5, 8); // PDPTE (table 4-8)
  if (!nxe) r |= XD;
  if (level >= 4) r |= PS; // PML4E/PML5E: PS is reserved
  else if (leafPs && level === 3) r |= bits(13, 29); // 1-GiB page
  else if (leafPs && level === 2) r |= bits(13, 20); // 2-MiB page
  return r;
}

function levelsOf(mode: PagingMode, pse: boolean): Level[] {
  switch (mode) {
    case '32-bit':
      return [
        { level: 2, shift: 22, entryBytes: 4, psAllowed: pse },
        { level: 1, shift: 12, entryBytes: 4, psAllowed: false },
      ];
    case 'pae':
      return [
        { level: 3, shift: 30, entryBytes: 8, psAllowed: false },
        { level: 2, shift: 21, entryBytes: 8, psAllowed: true },
        { level: 1, shift: 12, entryBytes: 8, psAllowed: false },
      ];
    case '4-level':
    case '5-level': {
      const top = mode === '5-level' ? 5 : 4;
      const out: Level[] = [];
      for (let level = top; level >= 1; level--) {
        out.push({ level, shift: 12 + 9 * (level - 1), entryBytes: 8, psAllowed: level === 2 || level === 3 });
      }
      return out;
    }
  }
}

function readEntry(mem: GuestMemory, gpa: number, bytes: 4 | 8): bigint | null {
  if (!mem.contains(gpa, bytes)) return null;
  return bytes === 4 ? BigInt(mem.readU32(gpa)) : mem.readU64(gpa);
}

/** Sets `flag` (accessed or dirty, both in the low 32 bits) atomically: other vCPUs may be updating the same entry. */
function setFlag(mem: GuestMemory, gpa: number, flag: number): void {
  const v = mem.view(gpa, 4);
  if (v.byteOffset % 4 === 0) {
    Atomics.or(new Int32Array(v.buffer, v.byteOffset, 1), 0, flag);
  } else {
    mem.writeU32(gpa, mem.readU32(gpa) | flag);
  }
}

/**
 * Translates linear address `gva` for an access of kind `access` at privilege
 * `cpl` (3 = user; anything else is supervisor). Returns the guest-physical
 * address or why the access faults.
 */
export function translateVirtual(
  mem: GuestMemory,
  sregs: Sregs,
  cpl: number,
  gva: bigint,
  access: AccessKind,
  options: WalkOptions = {},
): Translation | WalkFault {
  const mode = pagingMode(sregs);
  if (mode === null) {
    // No paging: linear = physical, within the 32-bit space (SDM Vol. 3 4.1.1).
    return { gpa: Number(gva & 0xffff_ffffn), pageSize: 4096 };
  }
  const maxPhys = options.maxPhysAddr ?? 52;
  const nxe = mode !== '32-bit' && (sregs.efer & Efer.NXE) !== 0n;
  const user = cpl === 3;
  const write = access === 'write';
  const fetch = access === 'execute';
  const smep = (sregs.cr4 & Cr4.SMEP) !== 0n;
  const smap = (sregs.cr4 & Cr4.SMAP) !== 0n;

  let address = gva & U64;
  if (mode === '4-level' || mode === '5-level') {
    // Canonical: bits 63:47 (63:56 with LA57) all equal (SDM Vol. 3 4.5).
    const top = mode === '5-level' ? 56n : 47n;
    const upper = address >> top;
    if (upper !== 0n && upper !== (1n << (64n - top)) - 1n) {
      return { fault: 'non-canonical', level: 0, errorCode: 0, address };
    }
  } else address &= 0xffff_ffffn;

  // I/D is reported only when execute-disable or SMEP can make fetches fault (SDM Vol. 3 4.7).
  const baseCode = (write ? PfError.write : 0) | (user ? PfError.user : 0) | (fetch && (smep || nxe) ? PfError.fetch : 0);
  const pf = (fault: 'not-present' | 'reserved' | 'protection', level: number): WalkFault => ({
    fault,
    level,
    errorCode: baseCode | (fault === 'not-present' ? 0 : PfError.present) | (fault === 'reserved' ? PfError.reserved : 0),
    address,
  });

  // CR3 holds the first table's address: bits 31:12 (32-bit), 31:5 (PAE PDPT), or 51:12.
  let table = mode === '32-bit' ? sregs.cr3 & 0xffff_f000n : mode === 'pae' ? sregs.cr3 & 0xffff_ffe0n : sregs.cr3 & ADDR_MASK;
  let writable = true;
  let userPage = true;
  let noExec = false;
  const used: Array<{ gpa: number; entry: bigint; accessed: boolean }> = [];
  const pse = (sregs.cr4 & Cr4.PSE) !== 0n;

  for (const lv of levelsOf(mode, pse)) {
    // The PAE PDPT has 4 entries (bits 31:30), 32-bit tables 1024, the others 512.
    const indexBits = mode === 'pae' && lv.level === 3 ? 2n : mode === '32-bit' ? 10n : 9n;
    const index = (address >> BigInt(lv.shift)) & ((1n << indexBits) - 1n);
    const entryGpa = Number(table + index * BigInt(lv.entryBytes));
    const entry = readEntry(mem, entryGpa, lv.entryBytes);
    if (entry === null) return { fault: 'outside-ram', level: lv.level, errorCode: 0, address, gpa: entryGpa };
    if ((entry & P) === 0n) return pf('not-present', lv.level);
    const leafPs = lv.psAllowed && (entry & PS) !== 0n;
    if ((entry & reservedBits(mode, lv.level, leafPs, nxe, maxPhys)) !== 0n) return pf('reserved', lv.level);

    // PAE PDPTEs carry no access rights and no accessed flag (SDM Vol. 3 table 4-8).
    const isPdpte = mode === 'pae' && lv.level === 3;
    if (!isPdpte) {
      writable &&= (entry & RW) !== 0n;
      userPage &&= (entry & US) !== 0n;
      if (nxe && (entry & XD) !== 0n) noExec = true;
      used.push({ gpa: entryGpa, entry, accessed: (entry & 0x20n) !== 0n });
    }

    if (lv.level === 1 || leafPs) {
      const pageSize = 2 ** lv.shift;
      let frame: bigint;
      if (mode === '32-bit' && leafPs) {
        // 4-MiB page: bits 31:22 from the PDE, 39:32 from its bits 20:13 (PSE-36).
        frame = (entry & 0xffc0_0000n) | (((entry >> 13n) & 0xffn) << 32n);
      } else {
        frame = entry & ADDR_MASK & ~BigInt(pageSize - 1);
      }
      if (mode === '32-bit') frame &= (1n << 40n) - 1n;
      const wp = (sregs.cr0 & Cr0.WP) !== 0n;
      if (rightsForbid({ user, write, fetch, writable, userPage, noExec, smep, smap, wp, ac: options.ac ?? false })) {
        return pf('protection', lv.level);
      }
      if (options.setAccessedDirty) {
        for (const u of used) if (!u.accessed) setFlag(mem, u.gpa, 0x20);
        const leaf = used[used.length - 1]!;
        if (write && (leaf.entry & 0x40n) === 0n) setFlag(mem, leaf.gpa, 0x40);
      }
      return { gpa: Number(frame | (address & BigInt(pageSize - 1))), pageSize };
    }
    table = entry & (mode === '32-bit' ? 0xffff_f000n : ADDR_MASK);
  }
  throw new Error('internal: page walk fell off the last level');
}

interface Rights {
  user: boolean;
  write: boolean;
  fetch: boolean;
  /** R/W, U/S set at every level; XD set at some level (with EFER.NXE). */
  writable: boolean;
  userPage: boolean;
  noExec: boolean;
  smep: boolean;
  smap: boolean;
  wp: boolean;
  ac: boolean;
}

/** SDM Vol. 3 4.6: true if the combined access rights forbid this access. */
function rightsForbid(r: Rights): boolean {
  if (r.user) return !r.userPage || (r.write && !r.writable) || (r.fetch && r.noExec);
  if (r.fetch) return r.noExec || (r.smep && r.userPage);
  // CR0.WP=0 lets supervisor writes ignore R/W; SMAP blocks explicit supervisor
  // data accesses to user pages unless RFLAGS.AC is set.
  if (r.write && !r.writable && r.wp) return true;
  return r.smap && r.userPage && !r.ac;
}

/**
 * Reads `length` bytes at linear address `gva` as an access at `cpl` would,
 * page by page (each page translated on its own, so a read may straddle pages
 * with different mappings). The whole read fails on the first fault.
 */
export function readVirtual(
  mem: GuestMemory,
  sregs: Sregs,
  cpl: number,
  gva: bigint,
  length: number,
  options: WalkOptions & { access?: 'read' | 'execute' } = {},
): { bytes: Uint8Array } | WalkFault {
  const out = new Uint8Array(length);
  const wrap = pagingMode(sregs) === '4-level' || pagingMode(sregs) === '5-level' ? U64 : 0xffff_ffffn;
  let done = 0;
  while (done < length) {
    const at = (gva + BigInt(done)) & wrap;
    const t = translateVirtual(mem, sregs, cpl, at, options.access ?? 'read', options);
    if ('fault' in t) return t;
    const chunk = Math.min(length - done, 4096 - Number(at & 0xfffn));
    if (!mem.contains(t.gpa, chunk)) return { fault: 'outside-ram', level: 0, errorCode: 0, address: at, gpa: t.gpa };
    out.set(mem.view(t.gpa, chunk), done);
    done += chunk;
  }
  return { bytes: out };
}
