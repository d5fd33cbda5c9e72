import { workerData } from 'piscina';
import { GuestMemory, type MemoryRegion } from '../memory/guest-memory.js';
import { monotonicClock } from '../sync/clock.js';
import { VmControlBlock } from '../vcpu/control.js';
import { IrqchipViews, type IrqchipState } from '../vm/irqchip.js';
import { GuestRanges } from './guest-ranges.js';
import { executeBlkRequest } from './blk-request.js';
import { VirtioBlk, type VirtioBlkState } from './blk.js';
import { VirtioPciTransport, type VirtioPciState } from './pci-transport.js';
import { VirtqueueError, type DescriptorChain } from './queue.js';

/**
 * An I/O pool thread (piscina) of the virtio-blk devices: carries out one
 * request directly between the image file and the shared guest RAM,
 * completes it into the used ring under the queue's lock, and raises the
 * queue's interrupt (MSI-X vector or INTx) through this thread's own
 * irqchip views. Nothing goes back through the main thread but the result.
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

export interface BlkTask {
  readonly disk: number;
  readonly queue: number;
  /** The queue's epoch when the chain was taken: a reset since then drops the completion. */
  readonly epoch: number;
  readonly chain: DescriptorChain;
}

/** null when done; otherwise why the device must be marked broken. */
export type BlkTaskResult = string | null;

const data = workerData as BlkIoData;
const ram = new GuestRanges(new GuestMemory(data.memory));
const control = new VmControlBlock(data.control, data.vcpus);
const irqchip = new IrqchipViews(data.irqchipState, { vmFd: data.vmFd, clock: monotonicClock, wake: (i) => control.wake(i) });
const vm = { requestStop(): void {}, log(): void {} };
const disks = data.disks.map((d) => ({
  transport: new VirtioPciTransport(d.transport, { ram, irq: irqchip.lines, msi: irqchip.msi, vm }, (ctx) => new VirtioBlk(d.blk, ctx)),
  disk: { fd: d.fd, size: d.blk.size, readonly: d.blk.readonly, id: d.id },
}));

export default function run(task: BlkTask): BlkTaskResult {
  const d = disks[task.disk]!;
  const q = d.transport.queues[task.queue]!;
  const written = executeBlkRequest(ram, d.disk, task.chain);
  try {
    const notify = q.withLock(() => {
      if (q.epoch !== task.epoch || !q.ready) return false;
      q.push(task.chain.head, written);
      return q.needsInterrupt();
    });
    if (notify) d.transport.interruptQueue(task.queue);
  } catch (e) {
    if (e instanceof VirtqueueError) return e.message;
    throw e;
  }
  return null;
}
