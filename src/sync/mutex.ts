/**
 * A futex-style mutex over one Int32 word of shared memory (Drepper's
 * "Futexes Are Tricky", mutex 2): 0 = unlocked, 1 = locked, 2 = locked with
 * waiters. Uncontended lock/unlock are one atomic each; waiters park on
 * `Atomics.wait`, so the holder's unlock wakes exactly one of them.
 *
 * Node allows `Atomics.wait` on the main thread too, so every thread can use it.
 */
export class Mutex {
  /** Int32 words a mutex occupies. */
  static readonly WORDS = 1;
  private static readonly SPINS = 64;

  constructor(
    private readonly words: Int32Array,
    private readonly index: number,
  ) {}

  tryLock(): boolean {
    return Atomics.compareExchange(this.words, this.index, 0, 1) === 0;
  }

  lock(): void {
    const a = this.words;
    const i = this.index;
    let c = Atomics.compareExchange(a, i, 0, 1);
    if (c === 0) return;
    // A short spin first: critical sections here are a few register updates,
    // usually shorter than a futex sleep/wake round trip.
    for (let n = 0; n < Mutex.SPINS && c === 1; n++) {
      c = Atomics.load(a, i);
      if (c === 0) {
        c = Atomics.compareExchange(a, i, 0, 1);
        if (c === 0) return;
      }
    }
    if (c !== 2) c = Atomics.exchange(a, i, 2);
    while (c !== 0) {
      Atomics.wait(a, i, 2);
      c = Atomics.exchange(a, i, 2);
    }
  }

  unlock(): void {
    const a = this.words;
    const i = this.index;
    if (Atomics.sub(a, i, 1) !== 1) {
      Atomics.store(a, i, 0);
      Atomics.notify(a, i, 1);
    }
  }

  /** Runs `fn` with the lock held. */
  with<T>(fn: () => T): T {
    this.lock();
    try {
      return fn();
    } finally {
      this.unlock();
    }
  }
}
