import { Mutex } from '../sync/mutex.js';

/**
 * ioeventfds for a virtio PCI function's queue notifications: KVM signals
 * queue q's eventfd when the guest writes that queue's notify address, and
 * the guest goes on without an exit to userspace. The addresses follow
 * BAR 0: when the guest moves it or turns memory decoding off (as Linux
 * does while sizing BARs), the thread that made the change moves or drops
 * the registrations, so a stale one never swallows writes meant for
 * whatever is mapped there next. Without them (no KVM support, or a
 * failed registration) notifications take the MMIO exit path as before.
 */

/** Registers (`assign`) or removes an ioeventfd; throws the ioctl's error. */
export type IoEventfdRegistrar = (addr: number, len: number, fd: number, assign: boolean) => void;

export interface NotifyEventfdState {
  /** One eventfd per queue (process-wide descriptors). */
  readonly fds: readonly number[];
  /** The access length to match (0: any, where KVM supports that). */
  readonly len: number;
  /** Int32 words: [lock, BAR 0 address the eventfds are registered at (0: none)]. */
  readonly regs: SharedArrayBuffer;
}

const W = { Lock: 0, Base: 1 } as const;

export function allocateNotifyEventfds(fds: readonly number[], len: number): NotifyEventfdState {
  return { fds, len, regs: new SharedArrayBuffer(8) };
}

export class NotifyEventfds {
  private readonly words: Int32Array;
  private readonly lock: Mutex;

  constructor(
    private readonly state: NotifyEventfdState,
    /** Where queue q's notify register sits in BAR 0. */
    private readonly notifyOffset: (queue: number) => number,
    private readonly registrar: IoEventfdRegistrar,
    private readonly log: (message: string) => void,
  ) {
    this.words = new Int32Array(state.regs);
    this.lock = new Mutex(this.words, W.Lock);
  }

  /** BAR 0 address the eventfds are registered at, 0 if none. */
  get base(): number {
    return Atomics.load(this.words, W.Base) >>> 0;
  }

  /** Registers the eventfds for BAR 0 at `base` (0: nowhere), moving them from where they were. */
  place(base: number): void {
    this.lock.with(() => {
      const now = this.words[W.Base]! >>> 0;
      if (now === base) return;
      this.words[W.Base] = 0;
      const { fds, len } = this.state;
      if (now) fds.forEach((fd, q) => this.registrar(now + this.notifyOffset(q), len, fd, false));
      if (!base) return;
      const done: number[] = [];
      try {
        fds.forEach((fd, q) => {
          this.registrar(base + this.notifyOffset(q), len, fd, true);
          done.push(q);
        });
        this.words[W.Base] = base | 0;
      } catch (e) {
        for (const q of done) this.registrar(base + this.notifyOffset(q), len, fds[q]!, false);
        this.log(`ioeventfd at 0x${base.toString(16)} refused (${(e as Error).message}); queue notifications exit to userspace instead`);
      }
    });
  }
}
