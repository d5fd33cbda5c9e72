import { native } from '../kvm/addon.js';
import { monotonicClock } from '../sync/clock.js';
import { pollUntil, type PollWindow } from '../sync/poll-window.js';
import { serveQueue, type QueueOwner } from './serve-queue.js';

/**
 * How an I/O thread that has run out of requests waits for more: it polls
 * its queues' avail rings for a while, with the driver told not to notify
 * (so a request published meanwhile costs the guest no exit and the thread
 * no wake-up), and only then asks for notifications again, looks once
 * more, and sleeps in poll(2) - QEMU's iothread polling, with KVM's
 * halt-poll window deciding how long (sync/poll-window.ts), so a thread
 * whose queues idle stops polling.
 */
export interface QueuePollerOptions {
  readonly owner: QueueOwner;
  /** The queues this thread serves; their eventfds come first in the fds given to `wait`, in this order. */
  readonly queues: readonly number[];
  readonly window: PollWindow;
  /** True while the VM is paused: its queues are not served then, so they must not look like work. */
  readonly paused: () => boolean;
  /** A wait that polling or the last look before sleeping ended: no sleep. */
  readonly onCaught?: () => void;
}

export class QueuePoller {
  /**
   * What the driver was last told about notifications. It starts unknown:
   * a restored VM's rings may still say "do not notify" from the poller
   * that ran before, and the first sleep must not trust them.
   */
  private told: 'quiet' | 'notify' | 'unknown' = 'unknown';

  constructor(private readonly o: QueuePollerOptions) {}

  /** Whether a `pop` should ask for the next notification (false while this thread polls instead). */
  get arming(): boolean {
    return this.told !== 'quiet';
  }

  /**
   * Waits until there is something to do and returns poll(2)'s readiness
   * bits over `fds` (the queues' eventfds first). `mayPoll` false (work in
   * flight that only poll(2) reports) sleeps at once. A queue found with
   * chains reports its bit, with whatever else is readable by then.
   */
  wait(fds: readonly number[], mayPoll: boolean): number {
    const { window, paused } = this.o;
    const t0 = monotonicClock.nowNs();
    let found = 0;
    if (mayPoll && window.windowNs > 0 && !paused()) {
      if (this.told !== 'quiet') this.setNotifications(false);
      found = this.poll(t0 + window.windowNs);
    }
    // A paused VM's guest RAM changes no more; resume() notifies every queue, so the sleep below ends then.
    if (!found && this.told !== 'notify' && !paused()) found = this.setNotifications(true);
    let ready: number;
    if (found) {
      this.o.onCaught?.();
      ready = found | native.pollReadable(fds, 0);
    } else {
      ready = native.pollReadable(fds, -1);
    }
    window.afterIdle(monotonicClock.nowNs() - t0);
    return ready;
  }

  /**
   * Watches the queues until `untilNs`: the bits of those with chains, or
   * 0. A pause that comes meanwhile needs no check here: its chains are not
   * taken (the serving loops look), and the next wait sleeps.
   */
  private poll(untilNs: number): number {
    const { owner, queues } = this.o;
    return pollUntil(untilNs, () => {
      let found = 0;
      for (let i = 0; i < queues.length; i++) if (owner.queues[queues[i]!]?.peekAvailable()) found |= 1 << i;
      return found;
    });
  }

  /** Tells the driver, queue by queue; enabling returns the bits of queues that had chains by then. */
  private setNotifications(enabled: boolean): number {
    const { owner, queues } = this.o;
    let found = 0;
    for (let i = 0; i < queues.length; i++) {
      serveQueue(owner, queues[i]!, (q) => {
        if (q.setNotifications(enabled)) found |= 1 << i;
        return 0;
      });
    }
    this.told = enabled ? 'notify' : 'quiet';
    return found;
  }
}
