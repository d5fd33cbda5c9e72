import type { MessagePort } from 'node:worker_threads';
import { GuestMemory, type MemoryRegion } from '../../memory/guest-memory.js';
import type { VmControlBlock } from '../../vcpu/control.js';
import type { IrqchipViews } from '../irqchip.js';
import { GuestRanges } from '../../virtio/guest-ranges.js';
import type { VirtioPciHost } from '../../virtio/pci-transport.js';
import { threadContext, threadVmControl, type SharedThreadData } from './thread-control.js';

/**
 * What an I/O thread (blk-io-worker.ts, net-io-worker.ts) builds from its
 * workerData to drive virtio functions on its own: guest RAM views and
 * irqchip views, so it completes requests and raises their interrupts
 * without the main thread.
 */
export interface IoThreadData extends SharedThreadData {
  readonly memory: MemoryRegion[];
  readonly vcpus: number;
}

export interface IoThreadViews {
  readonly ram: GuestRanges;
  readonly control: VmControlBlock;
  readonly irqchip: IrqchipViews;
}

export function ioThreadViews(data: IoThreadData): IoThreadViews {
  const t = threadContext(data, data.vcpus);
  return { ram: new GuestRanges(new GuestMemory(data.memory)), control: t.control, irqchip: t.irqchipViews() };
}

/** The transport host of a serving task: its logs and stop requests go to the main thread over `port`. */
export function ioThreadHost(views: IoThreadViews, port: MessagePort): VirtioPciHost {
  return { ram: views.ram, irq: views.irqchip.lines, msi: views.irqchip.msi, vm: threadVmControl((m) => port.postMessage(m)) };
}
