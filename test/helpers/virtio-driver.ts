import { GuestMemory } from '../../src/memory/guest-memory.js';
import { GuestRanges } from '../../src/virtio/guest-ranges.js';
import { VirtioPciTransport } from '../../src/virtio/pci-transport.js';
import { VirtioBar } from '../../src/virtio/pci-transport.js';
import { VirtioStatus, VirtqDesc } from '../../src/virtio/constants.js';
import type { VirtioContext, VirtioDeviceModel, VirtioDeviceType } from '../../src/virtio/device.js';
import { PCI_MMIO_BASE } from '../../src/devices/pci-mmio-window.js';
import type { IoEventfdRegistrar, NotifyEventfdState } from '../../src/virtio/notify-eventfds.js';

/**
 * A virtio PCI function over 128 KiB of fake guest RAM, and the driver
 * side of it written out by hand: status bring-up, 8-entry rings for each
 * queue (queue q's descriptor table, avail and used rings at ring(q)),
 * buffers offered one descriptor at a time. INTx levels, MSI messages and
 * logs are recorded.
 */
export const RAM = 0x20000;
export const GSI = 16;
const RING_SIZE = 8;

export function ring(q: number): { desc: number; avail: number; used: number } {
  const base = 0x1000 + q * 0x3000;
  return { desc: base, avail: base + 0x1000, used: base + 0x2000 };
}

export function fakeVirtioFunction<M extends VirtioDeviceModel>(
  type: VirtioDeviceType,
  model: (ctx: VirtioContext) => M,
  eventfds?: { notify: NotifyEventfdState; ioeventfd: IoEventfdRegistrar },
) {
  const mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(RAM) }]);
  const ram = new GuestRanges(mem);
  const levels: Array<[number, boolean]> = [];
  const msis: Array<[number, number, number]> = [];
  const logs: string[] = [];
  const state = VirtioPciTransport.allocate(type, { bar0: PCI_MMIO_BASE, gsi: GSI, ...(eventfds ? { notify: eventfds.notify } : {}) });
  const t = new VirtioPciTransport(
    state,
    {
      ram,
      irq: { setLevel: (g, h) => levels.push([g, h]) },
      msi: { signal: (lo, hi, d) => msis.push([lo, hi, d]) },
      vm: { requestStop() {}, log: (_l, m) => logs.push(m) },
      ...(eventfds ? { ioeventfd: eventfds.ioeventfd } : {}),
    },
    model,
  );
  const bar = t.bar;
  const w32 = (o: number, v: number): void => bar.write(o, 4, v, 0);
  const w16 = (o: number, v: number): void => bar.write(o, 2, v, 0);
  const w8 = (o: number, v: number): void => bar.write(o, 1, v, 0);
  const r = (o: number, s: 1 | 2 | 4 = 4): number => bar.read(o, s, 0);
  /** The driver's bring-up (3.1.1) with the given feature bits, enabling `queues`. */
  const bringUp = (features: { lo: number; hi: number }, queues: readonly number[] = [0]): void => {
    w8(0x14, VirtioStatus.Acknowledge | VirtioStatus.Driver);
    w32(0x08, 0);
    w32(0x0c, features.lo);
    w32(0x08, 1);
    w32(0x0c, features.hi);
    w8(0x14, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk);
    for (const q of queues) {
      const at = ring(q);
      w16(0x16, q);
      w16(0x18, RING_SIZE);
      w32(0x20, at.desc);
      w32(0x28, at.avail);
      w32(0x30, at.used);
      w16(0x1c, 1);
    }
    w8(0x14, VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk);
  };
  const availIdx = new Map<number, number>();
  /** Makes one single-descriptor buffer available on `queue` and notifies. */
  const offer = (head: number, addr: number, len: number, flags: number = VirtqDesc.Write, queue = 0): void => {
    const at = ring(queue);
    const idx = availIdx.get(queue) ?? 0;
    mem.writeU64(at.desc + 16 * head, BigInt(addr));
    mem.writeU32(at.desc + 16 * head + 8, len);
    mem.writeU16(at.desc + 16 * head + 12, flags);
    mem.writeU16(at.desc + 16 * head + 14, head);
    mem.writeU16(at.avail + 4 + 2 * (idx % RING_SIZE), head);
    mem.writeU16(at.avail + 2, idx + 1);
    availIdx.set(queue, idx + 1);
    w16(VirtioBar.Notify + 4 * queue, queue);
  };
  /** Used ring element `i` of `queue`: [id, len]. */
  const used = (queue: number, i: number): [number, number] => [mem.readU32(ring(queue).used + 4 + 8 * i), mem.readU32(ring(queue).used + 8 + 8 * i)];
  const usedIdx = (queue: number): number => mem.readU16(ring(queue).used + 2);
  return { mem, state, t, levels, msis, logs, w32, w16, w8, r, bringUp, offer, used, usedIdx };
}
