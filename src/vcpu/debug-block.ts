/**
 * What a debugger (the gdb stub) shares with the vCPU threads: the linear
 * addresses of its software breakpoints, so a vCPU that meets an `int3`
 * there stops the VM instead of handing the guest a #BP, and which vCPU
 * reported the current debug stop. The main thread changes the breakpoint
 * list only while the VM is paused; the vCPUs read it on debug exits and
 * emulation failures, never on the common exit path.
 */

/** Most software breakpoints at once (gdb rarely places more than a few dozen). */
export const MAX_SW_BREAKPOINTS = 256;

const W_STOP_CLAIM = 0; // vCPU index + 1 of the vCPU whose stop is being reported; 0: none
const W_COUNT = 1; // software breakpoints in the list
const HEADER_WORDS = 4;

export class DebugBlock {
  private readonly words: Int32Array;
  private readonly addresses: BigUint64Array;

  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(HEADER_WORDS * 4 + MAX_SW_BREAKPOINTS * 8);
  }

  constructor(readonly buffer: SharedArrayBuffer) {
    this.words = new Int32Array(buffer, 0, HEADER_WORDS);
    this.addresses = new BigUint64Array(buffer, HEADER_WORDS * 4, MAX_SW_BREAKPOINTS);
  }

  /** Replaces the software breakpoint list (main thread, VM paused). */
  setBreakpoints(linear: readonly bigint[]): void {
    if (linear.length > MAX_SW_BREAKPOINTS) throw new RangeError(`at most ${MAX_SW_BREAKPOINTS} software breakpoints`);
    linear.forEach((a, i) => (this.addresses[i] = BigInt.asUintN(64, a)));
    Atomics.store(this.words, W_COUNT, linear.length);
  }

  /** True if `linear` is one of the debugger's software breakpoints. */
  hasBreakpoint(linear: bigint): boolean {
    const n = Atomics.load(this.words, W_COUNT);
    const a = BigInt.asUintN(64, linear);
    for (let i = 0; i < n; i++) if (this.addresses[i] === a) return true;
    return false;
  }

  get breakpointCount(): number {
    return Atomics.load(this.words, W_COUNT);
  }

  /**
   * Called by a vCPU that hit a debug event: true for the first since the
   * last `clearStop`, whose event is the one reported. Later ones are
   * dropped; breakpoints re-trigger when their vCPU runs again.
   */
  claimStop(vcpu: number): boolean {
    return Atomics.compareExchange(this.words, W_STOP_CLAIM, 0, vcpu + 1) === 0;
  }

  /** Before the VM runs again after a debug stop (main thread). */
  clearStop(): void {
    Atomics.store(this.words, W_STOP_CLAIM, 0);
  }
}
