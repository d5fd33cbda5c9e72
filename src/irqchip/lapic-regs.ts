/**
 * Register offsets, bit fields and the shared-memory layout of the local APIC
 * model (Intel SDM vol. 3, ch. 11). Kept apart from the behaviour so that the
 * run loop, the tests and the timer can name things without importing it.
 */

/** Physical address of the xAPIC register page after reset. */
export const LAPIC_DEFAULT_BASE = 0xfee00000;
/** Size of the xAPIC MMIO page. */
export const LAPIC_MMIO_SIZE = 0x1000;

/**
 * Version register: version 0x14 (an integrated xAPIC), max LVT entry 5 (six
 * entries: timer, thermal, perf, LINT0, LINT1, error; no CMCI), bit 24 clear
 * (no EOI-broadcast suppression, so the IOAPIC needs no EOI register).
 */
export const LAPIC_VERSION = 0x00050014;

/** xAPIC MMIO offsets (relative to the APIC base). x2APIC MSR = 0x800 + offset / 16. */
export const LapicReg = {
  ID: 0x020,
  VERSION: 0x030,
  TPR: 0x080,
  APR: 0x090,
  PPR: 0x0a0,
  EOI: 0x0b0,
  RRD: 0x0c0,
  LDR: 0x0d0,
  DFR: 0x0e0,
  SVR: 0x0f0,
  ISR: 0x100,
  TMR: 0x180,
  IRR: 0x200,
  ESR: 0x280,
  ICR_LO: 0x300,
  ICR_HI: 0x310,
  LVT_TIMER: 0x320,
  LVT_THERMAL: 0x330,
  LVT_PERF: 0x340,
  LVT_LINT0: 0x350,
  LVT_LINT1: 0x360,
  LVT_ERROR: 0x370,
  TIMER_INITIAL: 0x380,
  TIMER_CURRENT: 0x390,
  TIMER_DIVIDE: 0x3e0,
  /** x2APIC only (MSR 0x83F); unimplemented in the xAPIC page. */
  SELF_IPI: 0x3f0,
} as const;

export const MSR_IA32_APIC_BASE = 0x1b;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const MSR_X2APIC_FIRST = 0x800;
export const MSR_X2APIC_LAST = 0x8ff;

/** True for the MSRs `Lapic.readMsr`/`writeMsr` implement. */
export function isLapicMsr(index: number): boolean {
  return (
    index === MSR_IA32_APIC_BASE ||
    index === MSR_IA32_TSC_DEADLINE ||
    (index >= MSR_X2APIC_FIRST && index <= MSR_X2APIC_LAST)
  );
}

// IA32_APIC_BASE bits (SDM 11.4.4).
export const APIC_BASE_BSP = 1 << 8;
export const APIC_BASE_EXTD = 1 << 10;
export const APIC_BASE_EN = 1 << 11;
/** Bits 0-7 and 9 are reserved. */
export const APIC_BASE_RESERVED_LO = 0x2ff;

// Spurious-interrupt vector register.
export const SVR_VECTOR = 0xff;
export const SVR_ENABLE = 1 << 8;
export const SVR_FOCUS_DISABLE = 1 << 9;
export const SVR_WRITABLE = 0x3ff;

// LVT fields (SDM figure 11-8).
export const LVT_VECTOR = 0xff;
export const LVT_DELIVERY_MODE_SHIFT = 8;
export const LVT_DELIVERY_STATUS = 1 << 12;
export const LVT_POLARITY_LOW = 1 << 13;
export const LVT_REMOTE_IRR = 1 << 14;
export const LVT_LEVEL = 1 << 15;
export const LVT_MASKED = 1 << 16;
export const LVT_TIMER_MODE_SHIFT = 17;

export const TimerMode = { OneShot: 0, Periodic: 1, TscDeadline: 2 } as const;

/** LVT index = (offset - 0x320) / 16, also the order of the x2APIC MSRs 0x832-0x837. */
export const Lvt = { Timer: 0, Thermal: 1, Perf: 2, Lint0: 3, Lint1: 4, Error: 5 } as const;
export const LVT_COUNT = 6;

/** Writable bits per LVT (the timer's mode field is added per configuration). */
export const LVT_WRITABLE: readonly number[] = [
  LVT_VECTOR | LVT_MASKED, // timer (+ mode bits)
  LVT_VECTOR | 0x700 | LVT_MASKED, // thermal
  LVT_VECTOR | 0x700 | LVT_MASKED, // perf
  LVT_VECTOR | 0x700 | LVT_POLARITY_LOW | LVT_LEVEL | LVT_MASKED, // LINT0
  LVT_VECTOR | 0x700 | LVT_POLARITY_LOW | LVT_LEVEL | LVT_MASKED, // LINT1
  LVT_VECTOR | LVT_MASKED, // error
];

// Error status register bits (SDM 11.5.3). The P6/Pentium checksum and
// accept errors (bits 0-3) cannot happen on a message-passing model.
export const ESR_REDIRECTABLE_IPI = 1 << 4;
export const ESR_SEND_ILLEGAL_VECTOR = 1 << 5;
export const ESR_RECEIVE_ILLEGAL_VECTOR = 1 << 6;
export const ESR_ILLEGAL_REGISTER = 1 << 7;

// ICR fields (SDM figure 11-12).
export const ICR_VECTOR = 0xff;
export const ICR_LOGICAL = 1 << 11;
export const ICR_ASSERT = 1 << 14;
export const ICR_LEVEL = 1 << 15;
export const ICR_SHORTHAND_SHIFT = 18;
/** Writable bits of the low ICR word (delivery status, bit 12, always reads 0). */
export const ICR_LO_WRITABLE = 0x000ccfff;

/**
 * Bits of the pending-events word, set by any thread accepting a message and
 * taken by the owning vCPU with `Lapic.takeEvents()`.
 */
export const LapicEvent = {
  NMI: 1 << 0,
  INIT: 1 << 1,
  /** A StartUp IPI; its vector is `Lapic.sipiVector()`. */
  SIPI: 1 << 2,
  SMI: 1 << 3,
  /**
   * An ExtINT message arrived: the vector is to be read from the 8259 PIC.
   * Not returned by `takeEvents`; see `extIntPending`/`acknowledgeExtInt`.
   */
  EXTINT: 1 << 4,
} as const;

// ---------------------------------------------------------------------------
// Shared-memory layout. A header, then one 256-byte block per APIC (a whole
// number of cache lines, so APICs do not share lines).

/** Int32 words of the set header. */
export const HEADER_WORDS = 16;
export const H_MAGIC = 0;
export const H_COUNT = 1;
/** 0 = fresh, 1 = being initialised, 2 = ready. */
export const H_INIT = 2;
/** Rotating start for lowest-priority arbitration ties. */
export const H_ROUND_ROBIN = 3;
/** Set once any guest writes an xAPIC ID other than its initial one. */
export const H_IDS_CHANGED = 4;
export const LAPIC_MAGIC = 0x4c415043; // "LAPC"

export const BLOCK_WORDS = 64;
// Word offsets within a block. "any" = written by any thread with atomics;
// "owner" = written only by the owning vCPU, read by others with atomics.
export const W_IRR = 0; // 8 words, any
export const W_TMR = 8; // 8 words, any (set on acceptance)
export const W_ISR = 16; // 8 words, owner
export const W_EVENTS = 24; // any
export const W_SIPI = 25; // any
export const W_ESR_PENDING = 26; // any: errors since the last ESR write
export const W_ESR = 27; // owner: the value ESR reads
export const W_BASE_LO = 28; // owner: IA32_APIC_BASE[31:0]
export const W_BASE_HI = 29; // owner: IA32_APIC_BASE[63:32]
export const W_ID = 30; // owner: 32-bit APIC ID (xAPIC view = low 8 bits)
export const W_INITIAL_ID = 31; // fixed at initialisation
export const W_LDR = 32; // owner
export const W_DFR = 33; // owner
export const W_SVR = 34; // owner
export const W_TPR = 35; // owner
export const W_ISRV = 36; // owner: highest in-service vector, 0 if none
export const W_LVT = 37; // 6 words, owner (timer: under the timer lock)
export const W_LINT_PINS = 43; // any: input levels, bit n = LINTn high
export const W_LINT_REMOTE = 44; // any: remote IRR of level-triggered LINTn
export const W_TIMER_LOCK = 45;
export const W_TMICT = 46; // timer lock
export const W_TDCR = 47; // timer lock
export const W_ICR_LO = 48; // owner
export const W_ICR_HI = 49; // owner
/**
 * any: bumped on every change that can alter what this APIC delivers
 * (acceptances, events, LINT levels, the owner's register writes), so the
 * run loop can skip its interrupt checks while it has not moved.
 */
export const W_ATTN = 50;
/** Float64 slots start here (word 56 = byte 224, 8-byte aligned). */
export const W_F64 = 56;
// Float64 indices within a block's Float64 area (all under the timer lock).
export const F_START = 0; // ns: start of the current count-down
export const F_DEADLINE = 1; // ns: next expiry, Infinity when disarmed
export const F_TSC_DEADLINE = 2; // IA32_TSC_DEADLINE value
export const F64_PER_BLOCK = BLOCK_WORDS / 2;
