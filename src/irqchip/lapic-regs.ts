import { block, defineLayout, f64, i32, mutex, type Migration, type SavedRecord } from '../sync/state-layout.js';
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
/**
 * KVM's paravirtual EOI MSR (Documentation/virt/kvm/x86/msr.rst): bit 0
 * enables, bits 63:2 are the guest-physical address of a 4-byte-aligned
 * word whose bit 0 the hypervisor sets when the guest may skip the EOI.
 */
export const MSR_KVM_PV_EOI_EN = 0x4b564d04;
/** MSR_KVM_PV_EOI_EN bit 0. */
export const PV_EOI_MSR_ENABLED = 1;
/** Bit 0 of the guest's word: "this EOI may be skipped". */
export const PV_EOI_PENDING_BIT = 1;

/** True for the MSRs `Lapic.readMsr`/`writeMsr` implement. */
export function isLapicMsr(index: number): boolean {
  return (
    index === MSR_IA32_APIC_BASE ||
    index === MSR_IA32_TSC_DEADLINE ||
    index === MSR_KVM_PV_EOI_EN ||
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

export const LAPIC_MAGIC = 0x4c415043; // "LAPC"

/**
 * The set's state for `count` APICs. "any" = written by any thread with
 * atomics; "owner" = written only by the owning vCPU, read by others with
 * atomics.
 */
export function lapicSetLayout(count: number) {
  return defineLayout('lapic-set', 2, {
    magic: i32(),
    count: i32(),
    /** 0 = fresh, 1 = being initialised, 2 = ready. */
    init: i32(),
    /** Rotating start for lowest-priority arbitration ties. */
    roundRobin: i32(),
    /** Set once any guest writes an xAPIC ID other than its initial one. */
    idsChanged: i32(),
    headerReserved: i32(11),
    apic: block(
      count,
      {
        irr: i32(8), // any
        tmr: i32(8), // any (set on acceptance)
        isr: i32(8), // owner
        events: i32(), // any
        sipi: i32(), // any
        esrPending: i32(), // any: errors since the last ESR write
        esr: i32(), // owner: the value ESR reads
        baseLo: i32(), // owner: IA32_APIC_BASE[31:0]
        baseHi: i32(), // owner: IA32_APIC_BASE[63:32]
        id: i32(), // owner: 32-bit APIC ID (xAPIC view = low 8 bits)
        initialId: i32(), // fixed at initialisation
        ldr: i32(), // owner
        dfr: i32(), // owner
        svr: i32(), // owner
        tpr: i32(), // owner
        isrv: i32(), // owner: highest in-service vector, 0 if none
        lvt: i32(6), // owner (timer: under the timer lock)
        lintPins: i32(), // any: input levels, bit n = LINTn high
        lintRemote: i32(), // any: remote IRR of level-triggered LINTn
        timerLock: mutex(),
        tmict: i32(), // timer lock
        tdcr: i32(), // timer lock
        icrLo: i32(), // owner
        icrHi: i32(), // owner
        /**
         * any: bumped on every change that can alter what this APIC delivers
         * (acceptances, events, LINT levels, the owner's register writes), so
         * the run loop can skip its interrupt checks while it has not moved.
         */
        attn: i32(),
        pvEoiLo: i32(), // owner: MSR_KVM_PV_EOI_EN[31:0] (enable bit, address)
        pvEoiHi: i32(), // owner: MSR_KVM_PV_EOI_EN[63:32]
        /** owner: 1 while the guest's PV EOI word has the bit we set (KVM's KVM_APIC_PV_EOI_PENDING). */
        pvEoiArmed: i32(),
        reserved: i32(2),
        // Float64 values, all under the timer lock.
        start: f64(), // ns: start of the current count-down
        deadline: f64(), // ns: next expiry, Infinity when disarmed
        tscDeadline: f64(), // IA32_TSC_DEADLINE value
      },
      256,
    ),
  });
}

/**
 * Saved lapic-set states of older layouts, brought forward: version 2 took
 * three of the five reserved words of each APIC for paravirtual EOI
 * (disabled in an older snapshot, since its nodevisor never offered it).
 */
export const LAPIC_SET_MIGRATIONS: Readonly<Record<number, Migration>> = {
  1: (fields) => {
    const apic = fields.apic;
    if (!Array.isArray(apic)) return fields;
    const upgraded = (apic as SavedRecord[]).map((rec) => {
      if (typeof rec !== 'object' || rec === null) return rec;
      return { ...rec, pvEoiLo: 0, pvEoiHi: 0, pvEoiArmed: 0, reserved: [0, 0] };
    });
    return { ...fields, apic: upgraded };
  },
};

// Word offsets, as the models index the set's Int32Array and Float64Array:
// a header, then one 256-byte block per APIC (a whole number of cache
// lines, so APICs do not share lines).
const L = lapicSetLayout(1);
const A = L.at.apic.fields;
/** Int32 words of the set header. */
export const HEADER_WORDS = L.at.apic.base / 4;
export const { magic: H_MAGIC, count: H_COUNT, init: H_INIT, roundRobin: H_ROUND_ROBIN, idsChanged: H_IDS_CHANGED } = L.at;
export const BLOCK_WORDS = L.at.apic.stride / 4;
export const W_IRR = A.irr / 4;
export const W_TMR = A.tmr / 4;
export const W_ISR = A.isr / 4;
export const W_EVENTS = A.events / 4;
export const W_SIPI = A.sipi / 4;
export const W_ESR_PENDING = A.esrPending / 4;
export const W_ESR = A.esr / 4;
export const W_BASE_LO = A.baseLo / 4;
export const W_BASE_HI = A.baseHi / 4;
export const W_ID = A.id / 4;
export const W_INITIAL_ID = A.initialId / 4;
export const W_LDR = A.ldr / 4;
export const W_DFR = A.dfr / 4;
export const W_SVR = A.svr / 4;
export const W_TPR = A.tpr / 4;
export const W_ISRV = A.isrv / 4;
export const W_LVT = A.lvt / 4;
export const W_LINT_PINS = A.lintPins / 4;
export const W_LINT_REMOTE = A.lintRemote / 4;
export const W_TIMER_LOCK = A.timerLock / 4;
export const W_TMICT = A.tmict / 4;
export const W_TDCR = A.tdcr / 4;
export const W_ICR_LO = A.icrLo / 4;
export const W_ICR_HI = A.icrHi / 4;
export const W_ATTN = A.attn / 4;
export const W_PV_EOI_LO = A.pvEoiLo / 4;
export const W_PV_EOI_HI = A.pvEoiHi / 4;
export const W_PV_EOI_ARMED = A.pvEoiArmed / 4;
/** Float64 slots start here (8-byte aligned). */
export const W_F64 = A.start / 4;
// Float64 indices within a block's Float64 area (all under the timer lock).
export const F_START = 0;
export const F_DEADLINE = (A.deadline - A.start) / 8;
export const F_TSC_DEADLINE = (A.tscDeadline - A.start) / 8;
export const F64_PER_BLOCK = BLOCK_WORDS / 2;
