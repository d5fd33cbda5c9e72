import type { MemoryRegion } from '../memory/guest-memory.js';
import { PCI_MMIO_BASE } from '../devices/pci-mmio-window.js';
import { PCI_GSI_FIRST, PCI_GSI_LAST, type PciIntxRoute } from '../boot/irq-routing.js';
import { NodevisorError } from '../kvm/errors.js';
import type { VirtioContext, VirtioDeviceModel } from '../virtio/device.js';
import { VirtioPciTransport, VIRTIO_BAR_SIZE, type VirtioPciState } from '../virtio/pci-transport.js';
import { VirtioRng, VIRTIO_RNG_TYPE } from '../virtio/rng.js';
import { VirtioConsole, VIRTIO_CONSOLE_TYPE, allocateVirtioConsole, type VirtioConsoleState } from '../virtio/console.js';
import { VirtioBlk, allocateVirtioBlk, virtioBlkType, VIRTIO_BLK_MAX_QUEUES, type BlkAio, type VirtioBlkState } from '../virtio/blk.js';
import type { BlkIoPlan } from './threads/blk-io-pool.js';
import type { IrqchipState } from './irqchip.js';
import type { OpenDisk } from './disk-images.js';
import { allocateNotifyEventfds, type NotifyEventfdState } from '../virtio/notify-eventfds.js';
import { VirtioNet, allocateVirtioNet, virtioNetType, virtioNetQueueCount, type VirtioNetState } from '../virtio/net.js';
import type { NetBackendSpec, NetIoData } from './threads/net-io-worker.js';
import type { OpenNic } from './net-backends.js';

/**
 * The VM's virtio PCI functions: one per disk, then the entropy device,
 * then the console, then one per NIC, at
 * bus 0 devices 1, 2, ... Each gets its BAR 0 pre-programmed in the PCI
 * MMIO window and INTA# on its own IOAPIC pin (16, 17, ...), which the MP
 * table and the DSDT describe (`pciIntx`); hence at most 8 of them.
 */
export type VirtioModelSpec =
  | { readonly model: 'rng' }
  | { readonly model: 'console'; readonly console: VirtioConsoleState }
  | { readonly model: 'blk'; readonly blk: VirtioBlkState; readonly fd: number; readonly id: string; readonly path: string; readonly aio: BlkAio }
  | { readonly model: 'net'; readonly net: VirtioNetState; readonly backend: NetBackendSpec; readonly label: string };

export interface VirtioPciSpec {
  readonly kind: 'virtio-pci';
  /** PCI device number on bus 0. */
  readonly device: number;
  readonly transport: VirtioPciState;
  readonly spec: VirtioModelSpec;
}

export const VIRTIO_MAX_FUNCTIONS = PCI_GSI_LAST - PCI_GSI_FIRST + 1;
/** Default cap on virtio-blk queues: one per vCPU up to this. */
export const DEFAULT_BLK_QUEUES = 4;

export interface VirtioConfig {
  readonly disks: readonly OpenDisk[];
  readonly rng: boolean;
  readonly console: boolean;
  readonly nets: readonly OpenNic[];
  readonly vcpus: number;
  /** Makes `count` eventfds (the caller closes them with the VM): one per virtio-blk and virtio-net queue. */
  readonly eventfds: (count: number) => number[];
  /**
   * The length KVM_IOEVENTFD registrations match (0: any), or undefined
   * where the VM does not register the queues' eventfds with KVM (their
   * notifications then exit to userspace and the vCPU signals them).
   */
  readonly ioeventfdLen?: number;
}

export interface VirtioPlan {
  readonly specs: VirtioPciSpec[];
  readonly pciIntx: PciIntxRoute[];
}

export function planVirtioDevices(cfg: VirtioConfig): VirtioPlan {
  const count = cfg.disks.length + (cfg.rng ? 1 : 0) + (cfg.console ? 1 : 0) + cfg.nets.length;
  if (count > VIRTIO_MAX_FUNCTIONS) {
    throw new NodevisorError('EDISK', `${count} virtio devices requested, but nodevisor wires at most ${VIRTIO_MAX_FUNCTIONS} (one IOAPIC pin each, 16-23)`);
  }
  const specs: VirtioPciSpec[] = [];
  const pciIntx: PciIntxRoute[] = [];
  const place = (type: Parameters<typeof VirtioPciTransport.allocate>[0], spec: VirtioModelSpec, notify?: NotifyEventfdState): void => {
    const i = specs.length;
    const device = 1 + i;
    const gsi = PCI_GSI_FIRST + i;
    const placement = { bar0: PCI_MMIO_BASE + i * VIRTIO_BAR_SIZE, gsi, ...(notify ? { notify } : {}) };
    specs.push({ kind: 'virtio-pci', device, transport: VirtioPciTransport.allocate(type, placement), spec });
    pciIntx.push({ device, pin: 0, gsi });
  };
  const queues = Math.min(cfg.vcpus, DEFAULT_BLK_QUEUES, VIRTIO_BLK_MAX_QUEUES);
  for (const d of cfg.disks) {
    const eventfds = cfg.eventfds(queues);
    // Block queues are the busy ones: only they get ioeventfds.
    const notify = cfg.ioeventfdLen === undefined ? undefined : allocateNotifyEventfds(eventfds, cfg.ioeventfdLen);
    place(virtioBlkType(queues), { model: 'blk', blk: allocateVirtioBlk(d.size, d.readonly, eventfds), fd: d.fd, id: d.id, path: d.path, aio: d.aio }, notify);
  }
  if (cfg.rng) place(VIRTIO_RNG_TYPE, { model: 'rng' });
  if (cfg.console) place(VIRTIO_CONSOLE_TYPE, { model: 'console', console: allocateVirtioConsole() });
  for (const n of cfg.nets) {
    const eventfds = cfg.eventfds(virtioNetQueueCount(n.pairs));
    const notify = cfg.ioeventfdLen === undefined ? undefined : allocateNotifyEventfds(eventfds, cfg.ioeventfdLen);
    const net = allocateVirtioNet({ mac: n.mac, caps: n.caps, eventfds, ...(n.backend.kind === 'tap' ? { tapFds: n.backend.fds } : {}) });
    place(virtioNetType(n.pairs), { model: 'net', net, backend: n.backend, label: n.label }, notify);
  }
  return { specs, pciIntx };
}

/** This thread's device model for `spec`. */
export function virtioModel(spec: VirtioModelSpec, ctx: VirtioContext): VirtioDeviceModel {
  switch (spec.model) {
    case 'rng':
      return new VirtioRng(ctx);
    case 'console':
      return new VirtioConsole(spec.console, ctx);
    case 'blk':
      return new VirtioBlk(spec.blk, ctx);
    case 'net':
      return new VirtioNet(spec.net, ctx);
  }
}

/** What the virtio-blk I/O pool threads start with. */
export function blkIoPlan(
  specs: readonly VirtioPciSpec[],
  o: { memory: MemoryRegion[]; vcpus: number; vmFd: number; control: SharedArrayBuffer; clock: SharedArrayBuffer; irqchipState: IrqchipState; delayUs?: number; failAfter?: number; pollNs: number },
): BlkIoPlan {
  const disks = specs.flatMap((s) => (s.spec.model === 'blk' ? [{ transport: s.transport, blk: s.spec.blk, fd: s.spec.fd, id: s.spec.id, path: s.spec.path, aio: s.spec.aio }] : []));
  return { ...o, disks };
}

/** What the virtio-net I/O threads start with. */
export function netIoData(specs: readonly VirtioPciSpec[], o: { memory: MemoryRegion[]; vcpus: number; vmFd: number; control: SharedArrayBuffer; clock: SharedArrayBuffer; irqchipState: IrqchipState }): NetIoData {
  const nics = specs.flatMap((s) => (s.spec.model === 'net' ? [{ transport: s.transport, net: s.spec.net, backend: s.spec.backend }] : []));
  return { ...o, nics };
}
