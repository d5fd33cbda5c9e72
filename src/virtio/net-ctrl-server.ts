import type { GuestRanges } from './guest-ranges.js';
import { executeNetCtrl } from './net-ctrl.js';
import { VirtioNetFeature, has } from './net-features.js';
import type { VirtioNet } from './net.js';
import type { VirtioPciTransport } from './pci-transport.js';
import { VirtqueueError, type DescriptorChain } from './queue.js';

/** The control queue as the I/O thread of pair 0 serves it: every command in the queue, then one interrupt if wanted. */
export class NetCtrlServer {
  /** The control queue follows the queue pairs. */
  readonly queue: number;

  constructor(
    private readonly transport: VirtioPciTransport,
    private readonly net: VirtioNet,
    private readonly ram: GuestRanges,
  ) {
    this.queue = 2 * net.pairs;
  }

  serve(): void {
    if (!this.transport.accepting(this.queue)) return;
    const q = this.transport.queues[this.queue]!;
    const mq = has(this.net.acceptedFeatures(), VirtioNetFeature.Mq);
    let pushed = 0;
    try {
      for (;;) {
        let epoch = 0;
        const chain = q.withLock((): DescriptorChain | null => {
          epoch = q.epoch;
          return q.pop();
        });
        if (!chain) break;
        const used = executeNetCtrl(this.ram, chain, (pairs) => mq && this.net.setActivePairs(pairs));
        const ok = q.withLock(() => {
          if (q.epoch !== epoch || !q.ready) return false;
          q.push(chain.head, used);
          return true;
        });
        if (ok) pushed++;
      }
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      this.transport.fail(e.message);
      return;
    }
    const interrupt = pushed > 0 && q.withLock(() => q.needsInterrupt());
    if (interrupt) this.transport.interruptQueue(this.queue);
  }
}
