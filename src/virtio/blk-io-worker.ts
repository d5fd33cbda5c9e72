import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'piscina';
import { native } from '../kvm/addon.js';
import { GuestMemory, type MemoryRegion } from '../memory/guest-memory.js';
import { monotonicClock } from '../sync/clock.js';
import { VmControlBlock } from '../vcpu/control.js';
import { IrqchipViews, type IrqchipState } from '../vm/irqchip.js';
import { GuestRanges } from './guest-ranges.js';
import { executeBlkRequest, type BlkDisk } from './blk-request.js';
import { VirtioBlk, type VirtioBlkState } from './blk.js';
import { VirtioPciTransport, type VirtioPciState } from './pci-transport.js';
import { VirtqueueError, type DescriptorChain } from './queue.js';

/**
 * An I/O thread (a piscina worker) of the virtio-blk devices. Its one task
 * serves a group of one disk's queues until the VM stops: it blocks in
 * poll(2) on the queues' notification eventfds, takes each queue's
 * available chains (validated), carries out every request directly between
 * the image file and the shared guest RAM, completes it into the used ring
 * under the queue's lock and raises the queue's interrupt (MSI-X vector or
 * INTx) through this thread's own irqchip views. No request passes through
 * another thread: a notification costs one wake-up of this one.
 */

export interface BlkIoDisk {
  readonly transport: VirtioPciState;
  readonly blk: VirtioBlkState;
  /** The image file, opened by the main thread (descriptors are process-wide). */
  readonly fd: number;
  readonly id: string;
}

export interface BlkIoData {
  readonly memory: MemoryRegion[];
  readonly disks: BlkIoDisk[];
  readonly vcpus: number;
  readonly vmFd: number;
  readonly control: SharedArrayBuffer;
  readonly irqchipState: IrqchipState;
}

export interface BlkServeTask {
  readonly disk: number;
  /** The queues this thread serves. */
  readonly queues: readonly number[];
  /** Readable once the pool is closing (never read here, so every thread sees it). */
  readonly stopFd: number;
  /** Where warnings go (the device's log is the main thread's). */
  readonly log: MessagePort;
}

const data = workerData as BlkIoData;
const ram = new GuestRanges(new GuestMemory(data.memory));
const control = new VmControlBlock(data.control, data.vcpus);
const irqchip = new IrqchipViews(data.irqchipState, { vmFd: data.vmFd, clock: monotonicClock, wake: (i) => control.wake(i) });

/** Serves `task` until the stop eventfd becomes readable. */
export default function serve(task: BlkServeTask): void {
  const d = data.disks[task.disk]!;
  const vm = { requestStop(): void {}, log: (level: 'info' | 'warn' | 'error', message: string) => task.log.postMessage({ level, message }) };
  const transport = new VirtioPciTransport(d.transport, { ram, irq: irqchip.lines, msi: irqchip.msi, vm }, (ctx) => new VirtioBlk(d.blk, ctx));
  const disk: BlkDisk = { fd: d.fd, size: d.blk.size, readonly: d.blk.readonly, id: d.id };
  const fds = [...task.queues.map((q) => d.blk.eventfds[q]!), task.stopFd];
  const stopBit = 1 << task.queues.length;
  try {
    for (;;) {
      const ready = native.pollReadable(fds, -1);
      if (ready & stopBit) return;
      task.queues.forEach((q, i) => {
        if (!(ready & (1 << i))) return;
        transport.countEventfdNotifications(native.eventfdRead(fds[i]!));
        // The exit path checks this before signalling; KVM cannot.
        if (transport.accepting(q)) serveQueue(transport, disk, q);
      });
    }
  } finally {
    task.log.close();
  }
}

/** Takes and carries out what queue `index` has available, until it has none. */
function serveQueue(transport: VirtioPciTransport, disk: BlkDisk, index: number): void {
  const q = transport.queues[index]!;
  for (;;) {
    const chains: DescriptorChain[] = [];
    let epoch = 0;
    try {
      q.withLock(() => {
        epoch = q.epoch;
        for (let chain = q.pop(); chain; chain = q.pop()) chains.push(chain);
      });
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      transport.fail(e.message);
    }
    if (!chains.length) return;
    for (const chain of chains) {
      const written = executeBlkRequest(ram, disk, chain);
      // Complete each as it finishes: the driver may go on at once. A reset since the pop drops it.
      const interrupt = q.withLock(() => {
        if (q.epoch !== epoch || !q.ready) return false;
        q.push(chain.head, written);
        return q.needsInterrupt();
      });
      if (interrupt) transport.interruptQueue(index);
    }
  }
}
