/**
 * A wait/notify word: a sequence number that a waiter samples, re-checks its
 * condition against, then sleeps on until someone bumps it. Bumping before
 * notifying means a wake that happens between the waiter's check and its
 * sleep is never lost (the sleep returns "not-equal" at once).
 */
export class WakeWord {
  static readonly WORDS = 1;

  constructor(
    private readonly words: Int32Array,
    private readonly index: number,
  ) {}

  /** The current sequence; pass it to `wait` after checking the condition. */
  snapshot(): number {
    return Atomics.load(this.words, this.index);
  }

  /**
   * Sleeps while the sequence still equals `seen`, at most `timeoutMs`
   * (Infinity for no limit). Returns true if woken or already changed.
   */
  wait(seen: number, timeoutMs = Infinity): boolean {
    return Atomics.wait(this.words, this.index, seen, timeoutMs) !== 'timed-out';
  }

  /** Async variant for the main thread's event loop. */
  async waitAsync(seen: number, timeoutMs = Infinity): Promise<boolean> {
    const r = Atomics.waitAsync(this.words, this.index, seen, timeoutMs);
    const v = r.async ? await r.value : r.value;
    return v !== 'timed-out';
  }

  notify(count = Infinity): void {
    Atomics.add(this.words, this.index, 1);
    Atomics.notify(this.words, this.index, count);
  }
}
