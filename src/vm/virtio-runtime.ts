import { native, k } from '../kvm/addon.js';
import { setIoeventfd, type KvmVm } from '../kvm/vm-fd.js';
import type { StopReason } from '../devices/device.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { TestKnobs } from '../vcpu/test-knobs.js';
import { GuestRanges } from '../virtio/guest-ranges.js';
import { VirtioPciTransport } from '../virtio/pci-transport.js';
import { VirtioConsole } from '../virtio/console.js';
import { IoStat, engineName, type BlkAio } from '../virtio/blk.js';
import { BlkIoPool } from './threads/blk-io-pool.js';
import type { IrqchipState, IrqchipViews } from './irqchip.js';
import type { OpenDisk } from './disk-images.js';
import type { GuestConsole } from './guest-console.js';
import { planVirtioDevices, virtioModel, blkIoPlan, netIoData, type VirtioModelSpec, type VirtioPlan } from './virtio-devices.js';
import { VirtioNet } from '../virtio/net.js';
import { NetIoPool } from './threads/net-io-pool.js';
import { netStats, type NetStats } from '../virtio/net-stats.js';
import type { OpenNic } from './net-backends.js';

/** What `vm.stats().virtio` says of each function. */
export interface VirtioFunctionStats {
  name: string;
  device: number;
  /** The device status register (VIRTIO 1.2, 2.1). */
  status: number;
  /** Whether the driver enabled MSI-X or uses INTx. */
  interrupts: 'msix' | 'intx';
  /** Queue notifications that came as MMIO exits, and through ioeventfds (no exit). */
  notifications: { exits: number; ioeventfd: number };
  /**
   * virtio-blk: requests completed, the most that were being carried out
   * at once, and how they reach the image: through io_uring, or
   * synchronously (aio=sync, or io_uring unavailable); 'io_uring+sync' if
   * some I/O thread could not open its ring.
   */
  /** pollWakes: idle spells of the I/O threads that a request ended while they polled (VmOptions ioPollNs). */
  requests?: { completed: number; maxInFlight: number; aio: BlkAio | 'io_uring+sync'; pollWakes: number };
  /** virtio-net: the back end, MAC, link, queue pairs, and packets, notifications and interrupts each way. */
  net?: NetStats & { backend: string };
}

export interface VirtioStartContext {
  readonly memory: GuestMemory;
  readonly irqchipViews: IrqchipViews;
  readonly irqchipState: IrqchipState;
  readonly control: SharedArrayBuffer;
  /** The VM clock (sync/vm-clock.ts). */
  readonly clock: SharedArrayBuffer;
  readonly vcpus: number;
  readonly console: GuestConsole;
  readonly ioThreads: number;
  /** The longest an idle I/O thread polls its queues before sleeping, in ns. */
  readonly ioPollNs: number;
  /** The disks as opened, for the log line that says how each one's requests go. */
  readonly disks: readonly OpenDisk[];
  readonly testKnobs?: TestKnobs;
  readonly requestStop: (reason: StopReason) => void;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
}

/**
 * A VM's virtio PCI functions over their life: the plan (with one eventfd
 * per virtio-blk queue, registered with KVM_IOEVENTFD where allowed), then
 * the main thread's views (placing the ioeventfds, the console pump,
 * stats) and the virtio-blk I/O pool, then shutdown.
 */
export class VirtioRuntime {
  readonly plan: VirtioPlan;
  private readonly eventfds: number[] = [];
  private views: Array<{ device: number; spec: VirtioModelSpec; transport: VirtioPciTransport; io?: Int32Array; aio?: BlkAio }> = [];
  private pool?: BlkIoPool;
  private netPool?: NetIoPool;

  constructor(
    private readonly vm: KvmVm,
    private readonly cfg: { disks: readonly OpenDisk[]; rng: boolean; console: boolean; nets: readonly OpenNic[]; vcpus: number; ioeventfd: boolean },
  ) {
    this.plan = planVirtioDevices({ ...cfg, eventfds: (count) => this.createEventfds(count), ioeventfdLen: this.ioeventfdLen(cfg.ioeventfd) });
  }

  /** Before the vCPUs run: builds the main thread's views and starts the I/O threads. */
  start(c: VirtioStartContext): void {
    const vmFd = this.vm.fd;
    const host = {
      ram: new GuestRanges(c.memory),
      irq: c.irqchipViews.lines,
      msi: c.irqchipViews.msi,
      vm: { requestStop: c.requestStop, log: c.log },
      ioeventfd: (addr: number, len: number, fd: number, assign: boolean) => setIoeventfd(vmFd, addr, len, fd, assign),
    };
    this.views = this.plan.specs.map((s) => ({
      device: s.device,
      spec: s.spec,
      transport: new VirtioPciTransport(s.transport, host, (ctx) => virtioModel(s.spec, ctx)),
      ...(s.spec.model === 'blk' ? { io: new Int32Array(s.spec.blk.io), aio: s.spec.aio } : {}),
    }));
    // Where the VMM placed BAR 0; from here on, the vCPU that moves a BAR moves them.
    for (const v of this.views) v.transport.placeNotifyEventfds();
    for (const v of this.views) if (v.transport.model instanceof VirtioConsole) c.console.attachVirtio(v.transport.model);
    this.startNets(c);
    const disks = this.plan.specs.filter((s) => s.spec.model === 'blk');
    if (!disks.length) return;
    for (const d of c.disks) {
      c.log('info', `virtio-blk ${d.path}: ${d.aio === 'io_uring' ? 'requests through io_uring' : `synchronous requests (${d.aioReason ?? 'aio=sync'})`}, ${c.ioThreads} I/O thread${c.ioThreads === 1 ? '' : 's'}`);
    }
    const plan = blkIoPlan(disks, {
      memory: c.memory.descriptors(),
      vcpus: c.vcpus,
      vmFd,
      control: c.control,
      clock: c.clock,
      irqchipState: c.irqchipState,
      delayUs: c.testKnobs?.blkDelayUs,
      failAfter: c.testKnobs?.blkFailAfter,
      pollNs: c.ioPollNs,
    });
    this.pool = new BlkIoPool({
      plan,
      threadsPerDisk: c.ioThreads,
      log: c.log,
      requestStop: c.requestStop,
      // A thread that throws is a nodevisor bug: its queues would go unserved, so stop rather than hang the guest.
      failed: (e) => c.requestStop({ kind: 'error', vcpu: -1, detail: `virtio-blk I/O thread failed: ${e.stack ?? e.message}` }),
    });
  }

  /** The virtio-net I/O threads, and passt exits turned into a link going down. */
  private startNets(c: VirtioStartContext): void {
    const nets = this.views.filter((v) => v.transport.model instanceof VirtioNet);
    if (!nets.length) return;
    nets.forEach((v, i) => {
      const model = v.transport.model as VirtioNet;
      this.cfg.nets[i]?.passt?.watch((why) => {
        c.log('warn', `virtio-net (user): ${why}; the link is down`);
        model.setLink(false);
      });
    });
    const data = netIoData(this.plan.specs, { memory: c.memory.descriptors(), vcpus: c.vcpus, vmFd: this.vm.fd, control: c.control, clock: c.clock, irqchipState: c.irqchipState });
    this.netPool = new NetIoPool({
      data,
      log: c.log,
      requestStop: c.requestStop,
      failed: (e) => c.requestStop({ kind: 'error', vcpu: -1, detail: `virtio-net I/O thread failed: ${e.stack ?? e.message}` }),
    });
  }

  /**
   * After a restore: a NIC whose link was down in the snapshot (its passt
   * had gone) runs on a new back end, so its link comes up, and the driver
   * hears of it through a configuration change as it heard of the loss.
   */
  raiseRestoredLinks(log: (level: 'info', message: string) => void): void {
    for (const v of this.views) {
      if (v.spec.model !== 'net' || !(v.transport.model instanceof VirtioNet) || v.transport.model.linkUp) continue;
      v.transport.model.setLink(true);
      log('info', `virtio-net (${v.spec.label}): the link, down in the snapshot, is up on the new back end`);
    }
  }

  stats(): VirtioFunctionStats[] {
    return this.views.map((v) => ({
      name: v.transport.name,
      device: v.device,
      status: v.transport.status(),
      interrupts: v.transport.msix.enabled() ? 'msix' : 'intx',
      notifications: v.transport.notifications(),
      ...(v.io ? { requests: { completed: Atomics.load(v.io, IoStat.Completed), maxInFlight: Atomics.load(v.io, IoStat.MaxInFlight), aio: engineName(Atomics.load(v.io, IoStat.Engines)) ?? v.aio!, pollWakes: Atomics.load(v.io, IoStat.PollWakes) } } : {}),
      ...this.netStats(v.spec, v.transport),
    }));
  }

  private netStats(spec: VirtioModelSpec, t: VirtioPciTransport): { net?: NetStats & { backend: string } } {
    if (spec.model !== 'net' || !(t.model instanceof VirtioNet)) return {};
    return { net: { backend: spec.label, ...netStats(spec.net, t.model) } };
  }

  /**
   * For a snapshot of a paused VM: waits until no queue has a chain in
   * service (taken by an I/O thread, not yet completed) and takes every
   * queue's lock, so nothing touches the rings or guest RAM until the
   * returned release is called. Throws if requests do not complete within
   * `timeoutMs` (a disk that hangs).
   */
  async quiesce(timeoutMs = 30_000): Promise<() => void> {
    const queues = this.views.flatMap((v) => v.transport.queues);
    const held: typeof queues = [];
    const release = (): void => {
      for (const q of held.splice(0)) q.unlockAfterSnapshot();
    };
    const deadline = Date.now() + timeoutMs;
    for (const q of queues) {
      while (!q.lockIfIdle()) {
        if (Date.now() > deadline) {
          release();
          throw new Error(`virtio requests did not complete within ${timeoutMs / 1000} s: cannot take a consistent snapshot`);
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      held.push(q);
    }
    return release;
  }

  /**
   * I/O threads look at a queue only when notified, and leave buffers
   * made available while the VM was paused (or before its snapshot) where
   * they are: each queue gets one notification when the VM runs again.
   * `net`: virtio-net's queues too - after a restore, whose threads start
   * without the chains their predecessors held (given back to the ring by
   * the snapshot), and whose driver may have been told not to notify.
   */
  kickQueues(o: { net?: boolean } = {}): void {
    for (const s of this.plan.specs) {
      const fds = s.spec.model === 'blk' ? s.spec.blk.eventfds : s.spec.model === 'net' && o.net ? s.spec.net.eventfds : [];
      for (const fd of fds) native.eventfdWrite(fd, 1);
    }
  }

  /** Ends the I/O threads (each finishes the request in hand); call once the vCPUs are gone. */
  async stop(): Promise<void> {
    const pools = [this.pool, this.netPool];
    this.pool = undefined;
    this.netPool = undefined;
    await Promise.all(pools.map((p) => p?.close()));
  }

  /** Closes the eventfds; after `stop` and before the VM fd is closed. */
  release(): void {
    for (const fd of this.eventfds.splice(0)) native.close(fd);
  }

  private createEventfds(count: number): number[] {
    const fds = Array.from({ length: count }, () => native.eventfd(0, k('EFD_NONBLOCK') | k('EFD_CLOEXEC')));
    this.eventfds.push(...fds);
    return fds;
  }

  /** The access length notify ioeventfds match, or undefined where the options or KVM rule them out. */
  private ioeventfdLen(wanted: boolean): number | undefined {
    if (!wanted || this.vm.check('KVM_CAP_IOEVENTFD') <= 0) return undefined;
    // Linux writes notify registers 16 bits wide; other widths still work, through an exit.
    return this.vm.check('KVM_CAP_IOEVENTFD_ANY_LENGTH') > 0 ? 0 : 2;
  }
}
