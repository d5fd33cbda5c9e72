/**
 * Paravirtual EOI for one local APIC: the guest-visible interface of KVM's
 * KVM_FEATURE_PV_EOI (Documentation/virt/kvm/x86/msr.rst, MSR_KVM_PV_EOI_EN).
 *
 * The guest names a 4-byte word of its RAM with MSR_KVM_PV_EOI_EN. Before
 * an entry, when the EOI of the vector in service has no effect beyond
 * retiring it, the hypervisor sets bit 0 of that word ("armed"); the
 * guest's EOI routine then clears the bit instead of writing the EOI
 * register, which saves an exit. At the next exit the hypervisor sees the
 * bit cleared and retires the vector itself. An EOI matters beyond its
 * vector - and the bit stays clear - when something waits in IRR (the EOI
 * may unblock it, and with no exit nobody would notice) or the vector is
 * level-triggered (the EOI must reach the IOAPIC or a LINT's remote IRR).
 *
 * Only the owning vCPU's thread touches the word and the armed flag, and
 * only while its vCPU is out of KVM_RUN, so the guest never races with us.
 * Both live where a snapshot finds them (guest RAM, the LAPIC's shared
 * state), so a snapshot taken while armed resumes armed.
 */
import type { GuestRam } from './types.js';
import { PV_EOI_MSR_ENABLED, PV_EOI_PENDING_BIT, W_PV_EOI_ARMED, W_PV_EOI_HI, W_PV_EOI_LO } from './lapic-regs.js';

export class LapicPvEoi {
  /** The guest's word, as an Int32Array of one element, for the address `wordGpa`. */
  private word: Int32Array | null = null;
  private wordGpa = -1;

  constructor(
    private readonly s: Int32Array,
    private readonly b: number,
    private readonly ram: GuestRam | undefined,
    /** Retires the highest in-service vector (the LAPIC's EOI). */
    private readonly eoi: () => void,
  ) {}

  /** The interface exists on this thread (it was given guest RAM). */
  get available(): boolean {
    return this.ram !== undefined;
  }

  /** MSR_KVM_PV_EOI_EN as last written. */
  msr(): bigint {
    return (BigInt(Atomics.load(this.s, this.b + W_PV_EOI_HI) >>> 0) << 32n) | BigInt(Atomics.load(this.s, this.b + W_PV_EOI_LO) >>> 0);
  }

  enabled(): boolean {
    return (Atomics.load(this.s, this.b + W_PV_EOI_LO) & PV_EOI_MSR_ENABLED) !== 0;
  }

  armed(): boolean {
    return Atomics.load(this.s, this.b + W_PV_EOI_ARMED) !== 0;
  }

  /**
   * WRMSR MSR_KVM_PV_EOI_EN; false means #GP. As KVM: the address must be
   * 4-byte aligned (bit 1 is not an address bit), and when enabling, the
   * word must be guest RAM. Disabling keeps whatever address is written.
   * A bit we had set is taken back first (an EOI the guest already did
   * through it is completed), so a moved or disabled word never skips one.
   */
  writeMsr(value: bigint): boolean {
    if (!this.ram) return false;
    const v = BigInt.asUintN(64, value);
    const addr = v & ~BigInt(PV_EOI_MSR_ENABLED);
    if (addr & 3n) return false;
    if (v & BigInt(PV_EOI_MSR_ENABLED)) {
      if (addr > BigInt(Number.MAX_SAFE_INTEGER) || !this.ram.contains(Number(addr), 4)) return false;
    }
    this.disarm();
    Atomics.store(this.s, this.b + W_PV_EOI_HI, Number(v >> 32n) | 0);
    Atomics.store(this.s, this.b + W_PV_EOI_LO, Number(v & 0xffffffffn) | 0);
    return true;
  }

  /**
   * After every exit (owner): if the guest cleared the bit we set, it has
   * done its EOI; carry it out. True if it did. A bit still set stays armed:
   * nothing the guest could have changed without an exit invalidates it.
   */
  afterExit(): boolean {
    if (Atomics.load(this.s, this.b + W_PV_EOI_ARMED) === 0) return false;
    const w = this.view();
    if (w === null || Atomics.load(w, 0) & PV_EOI_PENDING_BIT) return false;
    Atomics.store(this.s, this.b + W_PV_EOI_ARMED, 0);
    this.eoi();
    return true;
  }

  /**
   * Before an entry (owner), once the interrupt decisions are made:
   * `skippable` says whether the next EOI may go without an exit (asked
   * only when the answer matters). Arms the word if so, takes the bit back
   * if not.
   */
  beforeEntry(skippable: () => boolean): void {
    if (Atomics.load(this.s, this.b + W_PV_EOI_ARMED) !== 0) {
      if (!skippable()) this.disarm();
      return;
    }
    // Asked last: it scans IRR and ISR, on every entry of a guest that never enabled PV EOI otherwise.
    if (!this.enabled() || !skippable()) return;
    const w = this.view();
    if (w === null) return;
    Atomics.or(w, 0, PV_EOI_PENDING_BIT);
    Atomics.store(this.s, this.b + W_PV_EOI_ARMED, 1);
  }

  /** INIT or RESET: the interface is off again (KVM's kvm_lapic_reset); a bit we set is taken back. */
  reset(): void {
    if (Atomics.load(this.s, this.b + W_PV_EOI_ARMED) !== 0) {
      const w = this.view();
      if (w !== null) Atomics.and(w, 0, ~PV_EOI_PENDING_BIT);
      Atomics.store(this.s, this.b + W_PV_EOI_ARMED, 0);
    }
    Atomics.store(this.s, this.b + W_PV_EOI_LO, 0);
    Atomics.store(this.s, this.b + W_PV_EOI_HI, 0);
  }

  /** Takes our bit back; if the guest had already cleared it, completes the EOI it stands for. */
  private disarm(): void {
    if (Atomics.load(this.s, this.b + W_PV_EOI_ARMED) === 0) return;
    Atomics.store(this.s, this.b + W_PV_EOI_ARMED, 0);
    const w = this.view();
    if (w !== null && (Atomics.and(w, 0, ~PV_EOI_PENDING_BIT) & PV_EOI_PENDING_BIT) === 0) this.eoi();
  }

  /** The word the MSR names, or null where this thread has no RAM or it is not RAM (checked when enabled). */
  private view(): Int32Array | null {
    if (!this.ram) return null;
    const gpa = (Atomics.load(this.s, this.b + W_PV_EOI_HI) >>> 0) * 0x100000000 + ((Atomics.load(this.s, this.b + W_PV_EOI_LO) & ~3) >>> 0);
    if (gpa === this.wordGpa) return this.word;
    this.wordGpa = gpa;
    this.word = null;
    if (this.ram.contains(gpa, 4)) {
      const bytes = this.ram.view(gpa, 4);
      // Regions start on page boundaries, so an aligned address is an aligned offset.
      if (bytes.byteOffset % 4 === 0) this.word = new Int32Array(bytes.buffer, bytes.byteOffset, 1);
    }
    return this.word;
  }
}
