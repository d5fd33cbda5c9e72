import { native } from '../kvm/addon.js';

/**
 * The VM's shared control block: run/stop flags and, per vCPU, the addon
 * slot, the run state and a wake word. Every thread holds a view; it is how
 * any thread makes any vCPU notice new work without postMessage.
 */

const CTL_STOP = 0; // non-zero once a stop has been requested
const CTL_GO = 1; // workers wait for this before the first KVM_RUN
const CTL_PAUSE = 2; // non-zero while the VM is (being) paused
const CTL_PAUSED = 3; // vCPUs parked for the pause
const VM_WORDS = 16;
const V_SLOT = 0;
const V_STATE = 1;
const V_WAKE = 2;
const V_SETUP = 3; // who owns the vCPU's KVM set-up: Setup.*
const V_FD = 4; // the vCPU fd + 1, for ioctls from the main thread while the VM is paused (0: none)
const V_WORDS = 8;

/** V_SETUP values: a start that is stopped early cancels the workers that have not claimed theirs. */
const Setup = { Open: 0, Claimed: 1, Cancelled: 2 } as const;

/** Where a vCPU thread is; read by wakers to choose between notify and kick. */
export const VcpuState = {
  Created: 0,
  InVmm: 1,
  InGuest: 2,
  Halted: 3,
  Exited: 4,
  /** Parked outside KVM_RUN because the VM is paused. */
  Paused: 5,
} as const;
export type VcpuState = (typeof VcpuState)[keyof typeof VcpuState];

export class VmControlBlock {
  readonly words: Int32Array;

  static allocate(vcpus: number): SharedArrayBuffer {
    return new SharedArrayBuffer((VM_WORDS + vcpus * V_WORDS) * 4);
  }

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly vcpus: number,
  ) {
    this.words = new Int32Array(buffer);
    if (this.words.length < VM_WORDS + vcpus * V_WORDS) throw new RangeError('control block too small');
  }

  private at(vcpu: number, field: number): number {
    return VM_WORDS + vcpu * V_WORDS + field;
  }

  get stopRequested(): boolean {
    return Atomics.load(this.words, CTL_STOP) !== 0;
  }

  /** Sets the stop flag (which also ends any pause); returns true for the first caller only. */
  claimStop(): boolean {
    const first = Atomics.compareExchange(this.words, CTL_STOP, 0, 1) === 0;
    Atomics.notify(this.words, CTL_PAUSE);
    return first;
  }

  /** Releases workers waiting in `waitForGo`. */
  go(): void {
    Atomics.store(this.words, CTL_GO, 1);
    Atomics.notify(this.words, CTL_GO);
  }

  /**
   * The vCPU's worker takes charge of creating (and later closing) its
   * KVM vCPU; false if the VM stopped before it could, and then the worker
   * must touch nothing (the main thread may terminate it at any moment).
   */
  claimSetup(vcpu: number): boolean {
    return Atomics.compareExchange(this.words, this.at(vcpu, V_SETUP), Setup.Open, Setup.Claimed) === Setup.Open;
  }

  /**
   * Main thread, stopping a start: true if `vcpu`'s worker has not claimed
   * its set-up and now never will, so it holds no KVM resource and may be
   * terminated wherever it is.
   */
  cancelSetup(vcpu: number): boolean {
    return Atomics.compareExchange(this.words, this.at(vcpu, V_SETUP), Setup.Open, Setup.Cancelled) !== Setup.Claimed;
  }

  waitForGo(): void {
    while (Atomics.load(this.words, CTL_GO) === 0 && !this.stopRequested) Atomics.wait(this.words, CTL_GO, 0, 100);
  }

  get pauseRequested(): boolean {
    return Atomics.load(this.words, CTL_PAUSE) !== 0;
  }

  /**
   * Asks every vCPU to leave the guest and park; the caller then waits for
   * `pausedCount()` to reach the vCPU count (see `waitForPausedAsync`).
   */
  requestPause(): void {
    Atomics.store(this.words, CTL_PAUSE, 1);
    this.wakeAll();
  }

  /** Releases vCPUs parked by a pause. */
  release(): void {
    Atomics.store(this.words, CTL_PAUSE, 0);
    Atomics.notify(this.words, CTL_PAUSE);
  }

  pausedCount(): number {
    return Atomics.load(this.words, CTL_PAUSED);
  }

  /** Resolves once `count` vCPUs are parked for the pause, or the VM is stopping. */
  async waitForPausedAsync(count: number): Promise<void> {
    for (;;) {
      const n = Atomics.load(this.words, CTL_PAUSED);
      if (n >= count || this.stopRequested) return;
      await Atomics.waitAsync(this.words, CTL_PAUSED, n, 50).value;
    }
  }

  /**
   * Called by vCPU `vcpu` (and other threads that must hold still) when
   * it sees a pause: parks until released or the VM stops.
   */
  parkWhilePaused(vcpu: number): void {
    if (vcpu >= 0) this.setState(vcpu, VcpuState.Paused);
    Atomics.add(this.words, CTL_PAUSED, 1);
    Atomics.notify(this.words, CTL_PAUSED);
    while (Atomics.load(this.words, CTL_PAUSE) !== 0 && !this.stopRequested) Atomics.wait(this.words, CTL_PAUSE, 1, 100);
    Atomics.sub(this.words, CTL_PAUSED, 1);
    if (vcpu >= 0) this.setState(vcpu, VcpuState.InVmm);
  }

  /** Blocks a non-vCPU thread (the device timer) while the VM is paused, without counting it. */
  waitWhilePaused(): void {
    while (Atomics.load(this.words, CTL_PAUSE) !== 0 && !this.stopRequested) Atomics.wait(this.words, CTL_PAUSE, 1, 100);
  }

  /** Publishes vCPU `vcpu`'s fd (-1: closed), so the main thread can issue vCPU ioctls while the VM is paused. */
  setFd(vcpu: number, fd: number): void {
    Atomics.store(this.words, this.at(vcpu, V_FD), fd + 1);
  }

  /** The vCPU's fd, or -1 before it exists and after it is closed. */
  fd(vcpu: number): number {
    return Atomics.load(this.words, this.at(vcpu, V_FD)) - 1;
  }

  setSlot(vcpu: number, slot: number): void {
    Atomics.store(this.words, this.at(vcpu, V_SLOT), slot + 1);
  }

  state(vcpu: number): VcpuState {
    return Atomics.load(this.words, this.at(vcpu, V_STATE)) as VcpuState;
  }

  setState(vcpu: number, s: VcpuState): void {
    Atomics.store(this.words, this.at(vcpu, V_STATE), s);
  }

  wakeSnapshot(vcpu: number): number {
    return Atomics.load(this.words, this.at(vcpu, V_WAKE));
  }

  /** Parks the calling vCPU until woken or `timeoutMs` passes. */
  park(vcpu: number, seen: number, timeoutMs: number): void {
    Atomics.wait(this.words, this.at(vcpu, V_WAKE), seen, timeoutMs);
  }

  /**
   * Makes `vcpu` re-check its pending work. The caller must have published
   * that work (with Atomics) first; the vCPU publishes its state before it
   * checks for work, so one of the two always sees the other.
   */
  wake(vcpu: number): void {
    const s = Atomics.load(this.words, this.at(vcpu, V_STATE));
    if (s === VcpuState.InGuest) {
      const slot = Atomics.load(this.words, this.at(vcpu, V_SLOT)) - 1;
      if (slot >= 0) native.kick(slot);
    } else if (s === VcpuState.Halted || s === VcpuState.Created) {
      const i = this.at(vcpu, V_WAKE);
      Atomics.add(this.words, i, 1);
      Atomics.notify(this.words, i);
    }
  }

  /** Wakes every vCPU (used when stopping), including workers still waiting for `go`. */
  wakeAll(): void {
    Atomics.notify(this.words, CTL_GO);
    for (let i = 0; i < this.vcpus; i++) {
      // A stop must reach vCPUs in any state, including between checks.
      const w = this.at(i, V_WAKE);
      Atomics.add(this.words, w, 1);
      Atomics.notify(this.words, w);
      const slot = Atomics.load(this.words, this.at(i, V_SLOT)) - 1;
      if (slot >= 0 && Atomics.load(this.words, this.at(i, V_STATE)) !== VcpuState.Exited) native.kick(slot);
    }
  }
}

/** Per-vCPU statistics, a Float64Array row per vCPU, readable by any thread at any time. */
export const Stat = {
  GuestNs: 0, // written by the addon around KVM_RUN
  Runs: 1, // written by the addon
  Tid: 2,
  HaltNs: 3,
  StartNs: 4,
  EndNs: 5,
  Exits: 6,
  Injections: 7,
  /** Emulation failures the quirk layer carried out itself. */
  QuirkFixes: 8,
  /** Seconds held outside the guest by a pause. */
  PausedNs: 9,
  /** IPIs this vCPU sent, one per destination vCPU (written by this vCPU's thread). */
  IpisSent: 10,
  /**
   * IPIs other vCPUs sent here. Several senders add to it at once, so it is
   * an Int32 counter in this word's first 4 bytes, changed with Atomics
   * (see `countIpi` and `ipisReceived`), not a float.
   */
  IpisReceived: 11,
  /** When the current halt began (0: not halted), so readers count a halt still in progress. */
  HaltSinceNs: 12,
  /** When the current pause began (0: not paused). */
  PausedSinceNs: 13,
  /** 1 while the vCPU waits for INIT-SIPI (userspace irqchip), as of its last pause: for snapshots. */
  WaitingForSipi: 14,
  /** EOIs the guest did through its paravirtual EOI word, which the VMM then completed (userspace irqchip). */
  PvEois: 15,
  /** Nanoseconds halted vCPUs spent polling for a wake-up before sleeping (sync/poll-window.ts). */
  HaltPollNs: 16,
  /** Halts that a wake-up ended while the vCPU polled, so that it never slept. */
  HaltPollWakes: 17,
  /** Exits by KVM exit reason: ExitBase + reason. */
  ExitBase: 18,
} as const;
export const STAT_WORDS = 64;

/**
 * Counts an IPI from vCPU `from` to vCPU `to` in the stats rows of `stats`
 * (the whole per-VM stats buffer). Runs on the sender's thread, on the
 * ICR-write path only.
 */
export function ipiCounter(stats: SharedArrayBuffer): (from: number, to: number) => void {
  const f64 = new Float64Array(stats);
  const i32 = new Int32Array(stats);
  return (from, to) => {
    f64[from * STAT_WORDS + Stat.IpisSent]! += 1;
    Atomics.add(i32, (to * STAT_WORDS + Stat.IpisReceived) * 2, 1);
  };
}

/** IPIs received by the vCPU whose stats row is `row` (see Stat.IpisReceived). */
export function ipisReceived(row: Float64Array): number {
  return Atomics.load(new Int32Array(row.buffer, row.byteOffset + Stat.IpisReceived * 8, 1), 0);
}
