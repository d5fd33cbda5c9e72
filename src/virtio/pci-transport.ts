import { defineLayout, i32, loadState, mutex, required, saveState, StateLayoutError, type SavedState } from '../sync/state-layout.js';
import type { AccessSize, BusDevice, IrqLines, VmControl } from '../devices/device.js';
import type { MsiSink } from '../devices/msi-sink.js';
import { PciCfg, PciCommand, PciConfigSpace, PCI_CAPABILITIES_START, type PciCapability, type PciConfigSpaceState, type PciFunction } from '../devices/pci-config.js';
import { MsixTable, MSIX_ENTRY_SIZE, type MsixState } from '../devices/pci-msix.js';
import { Mutex } from '../sync/mutex.js';
import { VirtioFeature, VirtioStatus, VIRTIO_MSI_NO_VECTOR, featureBit } from './constants.js';
import type { VirtioContext, VirtioDeviceModel, VirtioDeviceType } from './device.js';
import type { GuestRanges } from './guest-ranges.js';
import { SplitVirtqueue, VirtqueueError, type QueueRegister, type VirtqueueState } from './queue.js';
import { NotifyEventfds, type IoEventfdRegistrar, type NotifyEventfdState } from './notify-eventfds.js';

/**
 * The virtio 1.x "modern" PCI transport (VIRTIO 1.2, 4.1): a PCI function
 * with vendor 0x1AF4, device 0x1040 + the virtio device ID, one 32 KiB
 * memory BAR holding the common configuration, ISR, device configuration
 * and notification regions (each described by a vendor-specific
 * capability), and the MSI-X table and PBA. Without MSI-X (a guest that
 * does not enable it) interrupts go out on INTA#, level-triggered, through
 * the IRQ line the firmware tables name, and reading the ISR lowers it.
 *
 * State is shared: every thread builds a transport over the same state,
 * with its own device model instance.
 */

export const VIRTIO_PCI_VENDOR = 0x1af4;
export const VIRTIO_PCI_DEVICE_BASE = 0x1040;
export const VIRTIO_BAR_SIZE = 0x8000;

/** BAR 0 layout. */
export const VirtioBar = {
  Common: 0x0000,
  CommonLength: 0x38,
  Isr: 0x1000,
  Device: 0x2000,
  DeviceLength: 0x1000,
  Notify: 0x3000,
  /** Bytes between queue notification addresses (notify_off_multiplier). */
  NotifyMultiplier: 4,
  MsixTable: 0x4000,
  MsixPba: 0x6000,
} as const;

/** virtio_pci_cap.cfg_type (4.1.4). */
export const VirtioPciCap = { Common: 1, Notify: 2, Isr: 3, Device: 4 } as const;
const PCI_CAP_ID_VENDOR = 0x09;

/** The features every device here offers besides its own. */
export const TRANSPORT_FEATURES = featureBit(VirtioFeature.Version1) | featureBit(VirtioFeature.RingIndirectDesc) | featureBit(VirtioFeature.RingEventIdx);

/** Shared state of one virtio PCI function; structured-cloneable. */
export interface VirtioPciState {
  readonly type: VirtioDeviceType;
  readonly config: PciConfigSpaceState;
  readonly msix: MsixState;
  /** Offset of the MSI-X capability in configuration space. */
  readonly msixCap: number;
  readonly regs: SharedArrayBuffer;
  readonly queues: readonly VirtqueueState[];
  /** The IOAPIC input INTA# drives. */
  readonly gsi: number;
  /** ioeventfds for the queues' notify registers, if the VM uses them for this function. */
  readonly notify?: NotifyEventfdState;
}

export interface VirtioPciPlacement {
  /** Where the VMM pre-programs BAR 0. */
  readonly bar0: number;
  /** The GSI INTA# is wired to (written to the Interrupt Line register too). */
  readonly gsi: number;
  readonly notify?: NotifyEventfdState;
}

export const VIRTIO_PCI_LAYOUT = defineLayout('virtio-pci', 1, {
  lock: mutex(),
  intLock: mutex(),
  deviceFeatureSelect: i32(),
  driverFeatureSelect: i32(),
  driverFeaturesLo: i32(),
  driverFeaturesHi: i32(),
  configVector: i32(),
  status: i32(),
  generation: i32(),
  queueSelect: i32(),
  isr: i32(),
  /** The INTx level last driven, so the line is only touched on a change. */
  intxLevel: i32(),
  /** Queue notifications that reached us as MMIO exits, and that I/O threads read from the queues' eventfds (both paths). */
  notifyExits: i32(),
  notifyEventfd: i32(),
  /** Times the device failed (DEVICE_NEEDS_RESET), resets included. */
  failures: i32(),
  reserved: i32(),
});
/** Int32 word of each field of `regs`. */
const V = VIRTIO_PCI_LAYOUT.at;

/** The 64 feature bits the driver wrote. */
const driverFeatures = (w: Int32Array): bigint => BigInt(Atomics.load(w, V.driverFeaturesLo) >>> 0) | (BigInt(Atomics.load(w, V.driverFeaturesHi) >>> 0) << 32n);

/** Failures of one device that are logged: a guest that breaks and resets its device in a loop must not flood the host's log. */
export const LOGGED_FAILURES = 8;

const IsrBit = { Queue: 1, Config: 2 } as const;

/** Thread-local dependencies of a transport view. */
export interface VirtioPciHost {
  readonly ram: GuestRanges;
  readonly irq: IrqLines;
  readonly msi?: MsiSink;
  readonly vm: VmControl;
  /** Present in threads that may move BAR 0 (vCPUs) or place it first (the main thread). */
  readonly ioeventfd?: IoEventfdRegistrar;
}

type CommonField = { off: number; size: 1 | 2 | 4; get: () => number; set?: (v: number) => void };

export class VirtioPciTransport implements PciFunction {
  readonly config: PciConfigSpace;
  readonly msix: MsixTable;
  readonly queues: SplitVirtqueue[];
  readonly model: VirtioDeviceModel;
  /** BAR 0's registers, for the MMIO window. */
  readonly bar: BusDevice;
  private readonly words: Int32Array;
  private readonly lock: Mutex;
  private readonly intLock: Mutex;
  private readonly fields: CommonField[];
  private readonly offered: bigint;
  private readonly notifyFds?: NotifyEventfds;

  static allocate(type: VirtioDeviceType, placement: VirtioPciPlacement): VirtioPciState {
    const vectors = type.queueSizes.length + 1;
    const capabilities: PciCapability[] = [
      MsixTable.capability(vectors, { tableBar: 0, tableOffset: VirtioBar.MsixTable, pbaBar: 0, pbaOffset: VirtioBar.MsixPba }),
      virtioCap(VirtioPciCap.Common, VirtioBar.Common, VirtioBar.CommonLength),
      virtioCap(VirtioPciCap.Isr, VirtioBar.Isr, 4),
      virtioCap(VirtioPciCap.Device, VirtioBar.Device, VirtioBar.DeviceLength),
      virtioCap(VirtioPciCap.Notify, VirtioBar.Notify, VirtioBar.NotifyMultiplier * type.queueSizes.length, VirtioBar.NotifyMultiplier),
    ];
    const config = PciConfigSpace.allocate({
      vendorId: VIRTIO_PCI_VENDOR,
      deviceId: VIRTIO_PCI_DEVICE_BASE + type.deviceId,
      // 4.1.2.1: non-transitional devices have revision 1 or more.
      revision: 1,
      classCode: type.classCode,
      subsystemVendorId: VIRTIO_PCI_VENDOR,
      subsystemId: 0x40 + type.deviceId,
      bars: [{ kind: 'memory', size: VIRTIO_BAR_SIZE }],
      interruptPin: 1,
      command: PciCommand.Memory | PciCommand.BusMaster,
      capabilities,
    });
    const view = new PciConfigSpace(config);
    view.configWrite(PciCfg.Bar0, 4, placement.bar0);
    view.configWrite(PciCfg.InterruptLine, 1, placement.gsi);
    const regs = VIRTIO_PCI_LAYOUT.allocate();
    new Int32Array(regs)[V.configVector] = VIRTIO_MSI_NO_VECTOR;
    return {
      type,
      config,
      msix: MsixTable.allocate(vectors),
      msixCap: PCI_CAPABILITIES_START, // the first capability
      regs,
      queues: type.queueSizes.map((n) => SplitVirtqueue.allocate(n)),
      gsi: placement.gsi,
      ...(placement.notify ? { notify: placement.notify } : {}),
    };
  }

  /**
   * The function's state by name: transport registers, configuration
   * space, MSI-X table and every queue (positions included). Taken with
   * the device quiesced: no request between taken and completed.
   */
  static save(state: VirtioPciState): Record<string, SavedState> {
    const out: Record<string, SavedState> = {
      regs: saveState(VIRTIO_PCI_LAYOUT, state.regs),
      config: PciConfigSpace.save(state.config),
      msix: MsixTable.save(state.msix),
    };
    state.queues.forEach((q, i) => (out[`queue${i}`] = SplitVirtqueue.save(q)));
    return out;
  }

  static load(state: VirtioPciState, saved: Record<string, SavedState>): void {
    const queues = Object.keys(saved).filter((k) => k.startsWith('queue')).length;
    if (queues !== state.queues.length) throw new StateLayoutError(`the saved virtio device (ID ${state.type.deviceId}) has ${queues} queues, this one ${state.queues.length}`);
    loadState(VIRTIO_PCI_LAYOUT, state.regs, required(saved, 'regs'));
    PciConfigSpace.load(state.config, required(saved, 'config'));
    MsixTable.load(state.msix, required(saved, 'msix'));
    state.queues.forEach((q, i) => SplitVirtqueue.load(q, required(saved, `queue${i}`)));
  }

  /** The features the driver accepted, or null before FEATURES_OK (read from the state, no view needed: a restore's back ends use it). */
  static acceptedFeatures(state: VirtioPciState): bigint | null {
    const w = new Int32Array(state.regs);
    return Atomics.load(w, V.status) & VirtioStatus.FeaturesOk ? driverFeatures(w) : null;
  }

  constructor(
    private readonly state: VirtioPciState,
    private readonly host: VirtioPciHost,
    makeModel: (ctx: VirtioContext) => VirtioDeviceModel,
  ) {
    this.words = new Int32Array(state.regs);
    this.lock = new Mutex(this.words, V.lock);
    this.intLock = new Mutex(this.words, V.intLock);
    this.queues = state.queues.map((q) => new SplitVirtqueue(q, host.ram));
    this.model = makeModel(this.context());
    this.config = new PciConfigSpace(state.config, this.model.name);
    this.msix = new MsixTable(state.msix, this.config, state.msixCap, host.msi);
    this.offered = this.model.features | TRANSPORT_FEATURES;
    this.fields = this.commonFields();
    this.bar = { name: `${this.model.name}-bar0`, read: (o, s) => this.barRead(o, s), write: (o, s, v) => this.barWrite(o, s, v) };
    if (state.notify && host.ioeventfd) {
      this.notifyFds = new NotifyEventfds(state.notify, (q) => VirtioBar.Notify + VirtioBar.NotifyMultiplier * q, host.ioeventfd, (m) => host.vm.log('warn', `${this.model.name}: ${m}`));
    }
  }

  /** Queue `index`'s notification eventfd, if notifications arrive through one. */
  notifyEventfd(index: number): number | undefined {
    return this.state.notify?.fds[index];
  }

  /**
   * How queue notifications arrived so far: as MMIO exits, or signalled by
   * KVM through ioeventfds without an exit (eventfd reads less exits).
   */
  notifications(): { exits: number; ioeventfd: number } {
    const exits = Atomics.load(this.words, V.notifyExits);
    return { exits, ioeventfd: Math.max(0, Atomics.load(this.words, V.notifyEventfd) - exits) };
  }

  /** Counts `n` notifications read from the queues' eventfds, however they were signalled (the reading thread calls this). */
  countEventfdNotifications(n: number): void {
    Atomics.add(this.words, V.notifyEventfd, n);
  }

  /** Whether a notification of queue `index` is to be served: the device is live and the queue enabled. */
  accepting(index: number): boolean {
    return this.context().live() && (this.queues[index]?.ready ?? false);
  }

  /** Puts the notify ioeventfds where BAR 0 decodes now (nowhere while memory decoding is off). */
  placeNotifyEventfds(): void {
    if (!this.notifyFds) return;
    const decoding = (this.config.command() & PciCommand.Memory) !== 0;
    this.notifyFds.place(decoding ? (this.config.barAddress(0) ?? 0) : 0);
  }

  get name(): string {
    return this.model.name;
  }

  configRead(offset: number, size: AccessSize): number {
    return this.config.configRead(offset, size);
  }

  configWrite(offset: number, size: AccessSize, value: number): void {
    this.config.configWrite(offset, size, value);
    // Unmasking or enabling MSI-X may release pending vectors; Interrupt Disable gates INTx.
    if (offset + size > this.state.msixCap && offset < this.state.msixCap + 12) this.msix.deliverPending();
    const command = offset <= PciCfg.Command + 1 && offset + size > PciCfg.Command;
    if (command) this.updateIntx();
    if (command || (offset < PciCfg.Bar0 + 4 && offset + size > PciCfg.Bar0)) this.placeNotifyEventfds();
  }

  /** The device status register. */
  status(): number {
    return Atomics.load(this.words, V.status);
  }

  private context(): VirtioContext {
    return {
      ram: this.host.ram,
      queues: this.queues,
      interruptQueue: (i) => this.interruptQueue(i),
      fail: (reason) => this.fail(reason),
      live: () => (this.status() & (VirtioStatus.DriverOk | VirtioStatus.DeviceNeedsReset | VirtioStatus.Failed)) === VirtioStatus.DriverOk,
      driverFeatures: () => driverFeatures(this.words),
      configChanged: () => {
        Atomics.add(this.words, V.generation, 1);
        this.interruptConfig();
      },
    };
  }

  /** Signals "used buffer" on queue `index`: its MSI-X vector, or ISR bit 0 and INTx. Call without the queue lock. */
  interruptQueue(index: number): void {
    if (this.msix.enabled()) {
      const vector = this.queues[index]?.vector ?? VIRTIO_MSI_NO_VECTOR;
      if (vector !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(vector);
      return;
    }
    Atomics.or(this.words, V.isr, IsrBit.Queue);
    this.updateIntx();
  }

  private interruptConfig(): void {
    if (this.msix.enabled()) {
      const vector = Atomics.load(this.words, V.configVector);
      if (vector !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(vector);
      return;
    }
    Atomics.or(this.words, V.isr, IsrBit.Config);
    this.updateIntx();
  }

  /** Marks the device broken (DEVICE_NEEDS_RESET), says why (the first LOGGED_FAILURES times) and signals a configuration change. */
  fail(reason: string): void {
    const before = Atomics.or(this.words, V.status, VirtioStatus.DeviceNeedsReset);
    if (before & VirtioStatus.DeviceNeedsReset) return;
    const n = Atomics.add(this.words, V.failures, 1);
    if (n < LOGGED_FAILURES) {
      const last = n === LOGGED_FAILURES - 1 ? ` (failure ${LOGGED_FAILURES}: later ones of this device are not logged)` : '';
      this.host.vm.log('warn', `${this.model.name}: ${reason}; the device needs a reset${last}`);
    }
    this.interruptConfig();
  }

  /** Drives INTA# from the ISR (when MSI-X is off and Interrupt Disable clear), under the interrupt lock. */
  private updateIntx(): void {
    this.intLock.with(() => {
      const high = Atomics.load(this.words, V.isr) !== 0 && !this.msix.enabled() && !(this.config.command() & PciCommand.InterruptDisable);
      this.config.setInterruptStatus(Atomics.load(this.words, V.isr) !== 0);
      if ((this.words[V.intxLevel] !== 0) === high) return;
      this.words[V.intxLevel] = high ? 1 : 0;
      this.host.irq.setLevel(this.state.gsi, high);
    });
  }

  private barRead(offset: number, size: AccessSize): number {
    if (offset < VirtioBar.Common + VirtioBar.CommonLength) return this.lock.with(() => this.commonRead(offset, size));
    if (offset >= VirtioBar.Isr && offset < VirtioBar.Isr + 4) {
      if (offset !== VirtioBar.Isr) return 0;
      // 4.1.4.5: reading the ISR clears it (and so lowers INTx).
      const isr = Atomics.exchange(this.words, V.isr, 0);
      this.updateIntx();
      return isr & 0xff;
    }
    if (offset >= VirtioBar.Device && offset < VirtioBar.Device + VirtioBar.DeviceLength) {
      const at = offset - VirtioBar.Device;
      return at + size <= this.model.configSize ? this.model.configRead(at, size) : 0;
    }
    if (offset >= VirtioBar.MsixTable && offset < VirtioBar.MsixTable + this.msix.vectors * MSIX_ENTRY_SIZE) return this.msix.tableRead(offset - VirtioBar.MsixTable, size);
    if (offset >= VirtioBar.MsixPba && offset < VirtioBar.MsixPba + 0x1000) return this.msix.pbaRead(offset - VirtioBar.MsixPba, size);
    return 0;
  }

  private barWrite(offset: number, size: AccessSize, value: number): void {
    if (offset < VirtioBar.Common + VirtioBar.CommonLength) {
      this.lock.with(() => this.commonWrite(offset, size, value));
      return;
    }
    if (offset >= VirtioBar.Notify && offset < VirtioBar.Notify + VirtioBar.NotifyMultiplier * this.queues.length) {
      const index = Math.floor((offset - VirtioBar.Notify) / VirtioBar.NotifyMultiplier);
      Atomics.add(this.words, V.notifyExits, 1);
      if (this.accepting(index)) this.model.notify(index);
      return;
    }
    if (offset >= VirtioBar.Device && offset < VirtioBar.Device + VirtioBar.DeviceLength) {
      const at = offset - VirtioBar.Device;
      if (at + size <= this.model.configSize) this.model.configWrite(at, size, value);
      return;
    }
    if (offset >= VirtioBar.MsixTable && offset < VirtioBar.MsixTable + this.msix.vectors * MSIX_ENTRY_SIZE) this.msix.tableWrite(offset - VirtioBar.MsixTable, size, value);
  }

  /** Byte-wise over the common configuration's fields, so any access width and alignment works. */
  private commonRead(offset: number, size: number): number {
    let value = 0;
    for (let i = size - 1; i >= 0; i--) {
      const at = offset + i;
      const f = this.fields.find((x) => at >= x.off && at < x.off + x.size);
      value = value * 256 + (f ? (f.get() >>> (8 * (at - f.off))) & 0xff : 0);
    }
    return value;
  }

  private commonWrite(offset: number, size: number, value: number): void {
    for (const f of this.fields) {
      if (!f.set || offset >= f.off + f.size || offset + size <= f.off) continue;
      let v = f.get();
      for (let i = 0; i < size; i++) {
        const at = offset + i - f.off;
        if (at < 0 || at >= f.size) continue;
        const byte = (value >>> (8 * i)) & 0xff;
        v = (v & ~(0xff << (8 * at))) | (byte << (8 * at));
      }
      f.set(v >>> 0);
    }
  }

  private selected(): SplitVirtqueue | undefined {
    return this.queues[this.words[V.queueSelect]!];
  }

  private commonFields(): CommonField[] {
    const w = this.words;
    const q = (reg: QueueRegister): Pick<CommonField, 'get' | 'set'> => ({
      get: () => this.selected()?.register(reg) ?? 0,
      set: (v) => {
        try {
          this.selected()?.setRegister(reg, v);
        } catch (e) {
          // Rings that are not sound at enable: the queue stays off and the device needs a reset.
          if (!(e instanceof VirtqueueError)) throw e;
          this.fail(`queue ${w[V.queueSelect]}: ${e.message}`);
        }
      },
    });
    // A select is any 32-bit value the guest wrote; only words 0 and 1 exist
    // (64 feature bits). Others read 0 and ignore writes (4.1.4.3), and never
    // index anything: the select registers hold the guest's value, not a word number.
    const featureWord = (select: number): 0 | 1 | undefined => {
      const s = w[select]! >>> 0;
      return s === 0 || s === 1 ? s : undefined;
    };
    return [
      { off: 0x00, size: 4, get: () => w[V.deviceFeatureSelect]!, set: (v) => (w[V.deviceFeatureSelect] = v) },
      {
        off: 0x04,
        size: 4,
        get: () => {
          const word = featureWord(V.deviceFeatureSelect);
          return word === undefined ? 0 : Number((this.offered >> BigInt(32 * word)) & 0xffffffffn);
        },
      },
      { off: 0x08, size: 4, get: () => w[V.driverFeatureSelect]!, set: (v) => (w[V.driverFeatureSelect] = v) },
      {
        off: 0x0c,
        size: 4,
        get: () => {
          const word = featureWord(V.driverFeatureSelect);
          return word === undefined ? 0 : w[V.driverFeaturesLo + word]! >>> 0;
        },
        set: (v) => {
          const word = featureWord(V.driverFeatureSelect);
          // Features are fixed once FEATURES_OK is set (3.1.1).
          if (word !== undefined && !(w[V.status]! & VirtioStatus.FeaturesOk)) Atomics.store(w, V.driverFeaturesLo + word, v | 0);
        },
      },
      { off: 0x10, size: 2, get: () => w[V.configVector]!, set: (v) => Atomics.store(w, V.configVector, v < this.msix.vectors ? v : VIRTIO_MSI_NO_VECTOR) },
      { off: 0x12, size: 2, get: () => this.queues.length },
      { off: 0x14, size: 1, get: () => w[V.status]!, set: (v) => this.setStatus(v) },
      { off: 0x15, size: 1, get: () => w[V.generation]! },
      { off: 0x16, size: 2, get: () => w[V.queueSelect]!, set: (v) => (w[V.queueSelect] = v) },
      { off: 0x18, size: 2, ...q('size') },
      {
        off: 0x1a,
        size: 2,
        get: () => this.selected()?.vector ?? VIRTIO_MSI_NO_VECTOR,
        // 4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR.
        set: (v) => this.selected()?.setVector(v < this.msix.vectors ? v : VIRTIO_MSI_NO_VECTOR),
      },
      { off: 0x1c, size: 2, ...q('ready') },
      { off: 0x1e, size: 2, get: () => (this.selected() ? w[V.queueSelect]! : 0) },
      { off: 0x20, size: 4, ...q('descLo') },
      { off: 0x24, size: 4, ...q('descHi') },
      { off: 0x28, size: 4, ...q('driverLo') },
      { off: 0x2c, size: 4, ...q('driverHi') },
      { off: 0x30, size: 4, ...q('deviceLo') },
      { off: 0x34, size: 4, ...q('deviceHi') },
    ];
  }

  private setStatus(value: number): void {
    const w = this.words;
    if ((value & 0xff) === 0) {
      this.reset();
      return;
    }
    let next = (value & 0xff & ~VirtioStatus.DeviceNeedsReset) | (w[V.status]! & VirtioStatus.DeviceNeedsReset);
    if (next & VirtioStatus.FeaturesOk && !(w[V.status]! & VirtioStatus.FeaturesOk)) {
      const accepted = this.context().driverFeatures();
      // 3.1.1: FEATURES_OK stays clear if the driver took what was not offered, or a legacy interface.
      if ((accepted & ~this.offered) !== 0n || !(accepted & featureBit(VirtioFeature.Version1))) next &= ~VirtioStatus.FeaturesOk;
      else {
        const ring = { indirect: (accepted & featureBit(VirtioFeature.RingIndirectDesc)) !== 0n, eventIdx: (accepted & featureBit(VirtioFeature.RingEventIdx)) !== 0n };
        for (const q of this.queues) q.setFeatures(ring);
        this.model.featuresAccepted?.(accepted);
      }
    }
    Atomics.store(w, V.status, next);
  }

  /** Device reset (status 0): queues, features, vectors, ISR and the model's own state. */
  private reset(): void {
    const w = this.words;
    for (const q of this.queues) q.reset();
    Atomics.store(w, V.driverFeaturesLo, 0);
    Atomics.store(w, V.driverFeaturesHi, 0);
    w[V.deviceFeatureSelect] = 0;
    w[V.driverFeatureSelect] = 0;
    w[V.queueSelect] = 0;
    Atomics.store(w, V.configVector, VIRTIO_MSI_NO_VECTOR);
    Atomics.store(w, V.isr, 0);
    Atomics.store(w, V.status, 0);
    this.updateIntx();
    this.model.reset();
  }
}

/** A virtio_pci_cap (4.1.4) for BAR 0: cap_len, cfg_type, bar, id, padding, offset, length [, notify_off_multiplier]. */
function virtioCap(cfgType: number, offset: number, length: number, multiplier?: number): PciCapability {
  const le = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  const body = [multiplier === undefined ? 16 : 20, cfgType, 0, 0, 0, 0, ...le(offset), ...le(length), ...(multiplier === undefined ? [] : le(multiplier))];
  return { id: PCI_CAP_ID_VENDOR, body };
}
