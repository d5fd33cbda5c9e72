import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { native, k } from '../kvm/addon.js';
import { Kvm, kvmRunSize } from '../kvm/kvm.js';
import { KvmVm } from '../kvm/vm-fd.js';
import { NodevisorError, errnoCode } from '../kvm/errors.js';
import type { CpuidEntry } from '../kvm/structs.js';
import type { StopReason, DeviceHost } from '../devices/device.js';
import { Uart16550 } from '../devices/uart16550.js';
import { AcpiPm } from '../devices/acpi-pm.js';
import { allocateGuestRam, type AllocatedMemory } from '../memory/allocate.js';
import { GuestMemory } from '../memory/guest-memory.js';
import { VmClock } from '../sync/vm-clock.js';
import { VmControlBlock, STAT_WORDS } from '../vcpu/control.js';
import { DebugBlock } from '../vcpu/debug-block.js';
import type { DebugStopEvent } from '../vcpu/debug-exit.js';
import { vcpuCpuid } from '../vcpu/cpuid.js';
import { checkApicIds, type Topology } from '../vcpu/topology.js';
import type { VcpuWorkerData, WorkerMessage } from './threads/vcpu-worker-data.js';
import { resolveVmConfig, type VmConfig } from './vm-config.js';
import { VcpuSet } from './vcpu-set.js';
import { readBootSource, placeBootSource, RESTORE_PLAN, FIRMWARE_PLAN, type BootPlan } from './boot-plan.js';
import { platformDevices, platformDescription } from './platform.js';
import type { PlatformDescription } from '../boot/acpi/tables.js';
import { TimerWake } from './timer-wake.js';
import type { DeviceTimerData } from './threads/device-timer.js';
import { threadEntry, type ThreadName } from './threads/entry.js';
import { irqchipViews, loadIrqchip, type IrqchipState, type IrqchipViews } from './irqchip.js';
import { routeMsrsToUserspace, PV_EOI_MSR_RANGE } from './msr-filter.js';
import { allocateExitProfile, readExitProfile, type ExitProfileEntry } from '../vcpu/exit-profile.js';
import type { DeviceSpec } from './device-specs.js';
import type { VmOptions } from './options.js';
import { exitStatusOf, describeStop } from './stop-reason.js';
import { openDiskImages, closeDiskImages, type OpenDisk } from './disk-images.js';
import { WORKER_STDIO, forwardWorkerStdio } from './worker-stdio.js';
import { GuestConsole, type ConsoleKind } from './guest-console.js';
import { VirtioRuntime } from './virtio-runtime.js';
import { TextTail, panicMessage, firmwareBootFailure } from './console-tail.js';
import type { FirmwareImage } from '../boot/firmware.js';
import { planFirmwareBoot, type FirmwareBoot } from './firmware-boot.js';
import { cpus } from 'node:os';
import { VERSION } from '../version.js';
import { mapGuestRamFile } from '../memory/ram-file.js';
import { diskChange, missingCpuFeatures, SnapshotError } from './snapshot-manifest.js';
import { takeSnapshot, type SnapshotInfo } from './snapshot.js';
import { loadDeviceStates } from './device-specs.js';
import { StateLayoutError } from '../sync/state-layout.js';
import { ArchStateError } from '../vcpu/arch-state.js';
import { readVcpuStats, type VmStats } from './vcpu-stats.js';
import { VmDebug, guestDebugFlags } from './vm-debug.js';

export type { VcpuStats, VmStats } from './vcpu-stats.js';
import { openNics, closeNics, describeNic, type OpenNic } from './net-backends.js';


export interface VmResult {
  reason: StopReason;
  /** The process exit status this outcome maps to (see ExitStatus). */
  exitStatus: number;
  /** Human-readable: why the guest stopped. */
  message: string;
}

type State = 'new' | 'starting' | 'running' | 'stopped';

/** glibc malloc arenas the process keeps once a VM starts threads (see spawnVcpus). */
const MALLOC_ARENAS = 2;


/**
 * A virtual machine: guest RAM, devices, one worker thread per vCPU.
 * Events: 'console' (Buffer of guest serial output), 'log' (level, message),
 * 'debug-output' (Buffer: a line the guest wrote to the debug console, port
 * 0x402), 'stop' (VmResult), 'pause', 'resume', 'debug-stop' (DebugStopEvent: a
 * breakpoint or single-step stopped the VM, which is now paused).
 */
export class Vm extends EventEmitter {
  readonly vcpus: number;
  /** Sockets, cores per socket, threads per core. */
  readonly topology: Topology;
  readonly memorySize: number;
  readonly irqchip: NonNullable<VmOptions['irqchip']>;
  /** The device that is the guest's console (input goes there; output of both is shown). */
  readonly consoleKind: ConsoleKind;
  /** I/O threads per virtio-blk disk. */
  readonly ioThreads: number;
  private state: State = 'new';
  private kvm?: Kvm;
  private vmFd?: KvmVm;
  private ram?: AllocatedMemory;
  private guestMemory?: GuestMemory;
  private control?: VmControlBlock;
  private statsBuffer?: SharedArrayBuffer;
  private exitProfileBuffer?: SharedArrayBuffer;
  private readonly config: VmConfig;
  private readonly vcpuSet: VcpuSet;
  private finishing?: Promise<void>;
  private stopReason?: StopReason;
  private acpi?: AcpiPm;
  private result?: Promise<VmResult>;
  private irqchipState?: IrqchipState;
  private irqchipViews?: IrqchipViews;
  private x2apic = false;
  /** The userspace LAPIC offers paravirtual EOI: its MSR's writes reach us. */
  private pvEoi = false;
  private readonly timerWake = TimerWake.allocate();
  private readonly clockBuffer = VmClock.allocate();
  /** The guest's clock for our device models: held while the VM is paused. */
  private readonly clock = new VmClock(this.clockBuffer);
  private paused = false;
  /** kvmclock where the pause stopped it, restored on resume. */
  private pausedKvmclock?: bigint;
  /** Serialises pause() and resume(). */
  private transition: Promise<void> = Promise.resolve();
  private timerWorker?: Worker;
  private timerExited?: Promise<void>;
  private resolveResult?: (r: VmResult) => void;
  private console?: GuestConsole;
  private readonly earlyInput: Buffer[] = [];
  /** The guest's last console output, for stop messages (a panic's reason). */
  private readonly consoleTail = new TextTail(16 * 1024);
  private disks: OpenDisk[] = [];
  private nics: OpenNic[] = [];
  private virtio?: VirtioRuntime;
  private firmware?: FirmwareBoot;
  private devices: DeviceSpec[] = [];
  /** Each vCPU's CPUID, as the guest sees it (a snapshot records it). */
  private cpuids: CpuidEntry[][] = [];
  private debugBlock?: DebugBlock;
  private vmDebug?: VmDebug;
  private guestDebugFlags = 0;
  private readonly reportedEntries = new Set<ThreadName>();

  constructor(private readonly options: VmOptions = {}) {
    super();
    this.config = resolveVmConfig(options);
    ({ vcpus: this.vcpus, topology: this.topology, memorySize: this.memorySize, irqchip: this.irqchip, consoleKind: this.consoleKind, ioThreads: this.ioThreads } = this.config);
    this.vcpuSet = new VcpuSet({
      url: () => this.threadUrl('vcpu-worker'),
      log: (level, message) => this.emit('log', level, message),
      stopped: (reason) => (this.stopReason ??= reason),
      requestStop: (reason) => this.requestStop(reason),
      debugOutput: (bytes) => this.emit('debug-output', bytes),
      debugStop: (e) => void this.debugStopped(e),
      stopping: () => this.stopReason !== undefined,
    });
  }

  /** Guest RAM (available once started, and after the VM stops). */
  get memory(): GuestMemory {
    if (!this.guestMemory) throw new Error('guest memory exists once start() has been called');
    return this.guestMemory;
  }

  /**
   * Creates the VM, loads the guest and starts every vCPU. A `stop()`
   * meanwhile (or a signal handler calling it) cuts the start short: no
   * more vCPU threads are spawned, the ones still booting are terminated,
   * and this rejects with NodevisorError('ESTOPPED').
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`start() called on a VM that is ${this.state}`);
    this.state = 'starting';
    this.result = new Promise((resolve) => (this.resolveResult = resolve));
    try {
      const restoring = this.config.restoring;
      const source = readBootSource(this.config);
      if (restoring) {
        for (const d of restoring.manifest.vm.disks) {
          const why = diskChange(d);
          if (why) throw new SnapshotError(`cannot restore ${this.options.restore}: ${why}`);
        }
      }
      // A restore takes its disks from the snapshot; how their requests go (aio) is this run's choice.
      this.disks = openDiskImages(restoring ? restoring.manifest.vm.disks.map((d, i) => ({ path: d.path, readonly: d.readonly, aio: this.options.disks?.[i]?.aio })) : (this.options.disks ?? []));
      // So are its NICs, each on a back end of the same kind (this run may name another tap or other forwards).
      this.nics = await openNics(this.config.nets, this.vcpus);
      for (const n of this.nics) this.emit('log', 'info', `virtio-net: ${describeNic(n)}`);
      this.kvm = Kvm.open(this.options.kvmPath);
      const max = this.kvm.maxVcpus;
      if (this.vcpus > max) throw new NodevisorError('EVCPUS', `${this.vcpus} vCPUs requested but this host's KVM allows at most ${max}`);
      this.vmFd = this.kvm.createVm();
      this.virtio = new VirtioRuntime(this.vmFd, {
        disks: this.disks,
        rng: restoring?.manifest.vm.rng ?? this.options.rng ?? false,
        console: this.consoleKind === 'virtio',
        nets: this.nics,
        vcpus: this.vcpus,
        ioeventfd: this.options.ioeventfd !== false,
      });
      this.setUpIrqchip(this.vmFd);
      checkApicIds(this.config.cpus, { maxVcpuId: this.kvm.maxVcpuId, x2apic: !this.config.irqchipMode.userLapic || this.x2apic, x2apicMissing: 'the userspace LAPIC offers it only where KVM passes APIC MSR reads to the VMM' });
      this.setUpMemory(this.vmFd, source.kind === 'firmware' ? source.image : source.kind === 'restore' ? (source.firmware ?? null) : null);
      const plan = source.kind === 'restore' ? RESTORE_PLAN : source.kind === 'firmware' ? FIRMWARE_PLAN : placeBootSource(this.config, source, { memory: this.memory, pciIntx: this.virtio.plan.pciIntx, platform: this.platformDescription() });
      const devices = this.createDevices();
      await this.spawnVcpus(plan, devices);
      if (restoring?.manifest.clock.kvmclock !== undefined && this.vmFd.check('KVM_CAP_ADJUST_CLOCK')) this.vmFd.setClock(BigInt(restoring.manifest.clock.kvmclock));
      this.startDeviceTimer(devices);
      this.virtio.start({
        memory: this.memory,
        irqchipViews: this.irqchipViews!,
        irqchipState: this.irqchipState!,
        control: this.control!.buffer,
        clock: this.clockBuffer,
        vcpus: this.vcpus,
        console: this.console!,
        ioThreads: this.ioThreads,
        ioPollNs: this.config.ioPollNs,
        disks: this.disks,
        testKnobs: this.options.testKnobs,
        requestStop: (r) => this.requestStop(r),
        log: (level, m) => this.emit('log', level, m),
      });
      if (restoring) {
        this.irqchipViews!.afterRestore();
        this.virtio.kickQueues({ net: true });
        this.virtio.raiseRestoredLinks((level, m) => this.emit('log', level, m));
        this.clock.thaw();
      }
      this.state = 'running';
      // Held before the first instruction (a debugger attaches first): the
      // vCPUs see the pause before their first KVM_RUN.
      if (this.options.startPaused) this.control!.requestPause();
      this.control!.go();
      // Input typed before the vCPUs existed: a device's interrupt then had nowhere to go.
      for (const b of this.earlyInput.splice(0)) this.console!.send(b);
      if (this.options.startPaused) await this.pause();
    } catch (e) {
      this.stopReason ??= { kind: 'error', vcpu: -1, detail: `the VM could not start: ${(e as Error).message}` };
      await this.abortStart();
      throw e;
    }
    void this.vcpuSet.exited().then(() => this.finish());
  }

  /** Resolves when the VM has stopped, with why. */
  wait(): Promise<VmResult> {
    if (!this.result) throw new Error('wait() called before start()');
    return this.result;
  }

  /** Stops every vCPU and resolves once they have all left the guest. */
  async stop(): Promise<VmResult> {
    this.requestStop({ kind: 'stopped' });
    return this.wait();
  }

  /** True while the VM is paused (between pause() and resume()). */
  get isPaused(): boolean {
    return this.paused;
  }

  /**
   * Stops every vCPU outside KVM_RUN and holds the VM's clocks: our device
   * and LAPIC timers do not fire, kvmclock (and, where KVM allows, each
   * vCPU's TSC) does not advance, so the guest sees no jump in time when
   * resumed. Resolves once every vCPU is parked. Disk I/O already in
   * flight may still complete. A no-op on a paused VM.
   */
  pause(): Promise<void> {
    const step = this.transition.then(async () => {
      if (this.state !== 'running') throw new NodevisorError('ESTATE', `cannot pause a VM that is ${this.state}`);
      if (this.paused) return;
      const control = this.control!;
      control.requestPause();
      new TimerWake(this.timerWake).notify();
      await control.waitForPausedAsync(this.vcpus);
      if (control.stopRequested) return;
      this.clock.freeze();
      this.pausedKvmclock = this.kvmclockOrUndefined();
      this.paused = true;
      this.emit('pause');
    });
    this.transition = step.catch(() => undefined);
    return step;
  }

  /** Lets a paused VM run on from where it stopped. A no-op on a running VM. */
  resume(): Promise<void> {
    const step = this.transition.then(() => {
      if (this.state !== 'running') throw new NodevisorError('ESTATE', `cannot resume a VM that is ${this.state}`);
      if (!this.paused) return;
      if (this.pausedKvmclock !== undefined) this.vmFd!.setClock(this.pausedKvmclock);
      this.clock.thaw();
      this.paused = false;
      this.control!.release();
      this.virtio?.kickQueues();
      new TimerWake(this.timerWake).notify();
      this.emit('resume');
    });
    this.transition = step.catch(() => undefined);
    return step;
  }

  /**
   * A vCPU hit a breakpoint or finished a single-step: it has asked every
   * vCPU to park; complete the pause, then tell the debugger ('debug-stop').
   */
  private async debugStopped(e: DebugStopEvent): Promise<void> {
    try {
      await this.pause();
    } catch {
      return; // stopping: nobody to tell
    }
    if (this.state === 'running') this.emit('debug-stop', e);
  }

  /** kvmclock now, where KVM has one for this VM (KVM_CAP_ADJUST_CLOCK). */
  private kvmclockOrUndefined(): bigint | undefined {
    try {
      return this.vmFd!.check('KVM_CAP_ADJUST_CLOCK') ? this.vmFd!.getClock() : undefined;
    } catch {
      return undefined;
    }
  }

  /** Asks an ACPI guest to shut down, as pressing the power button does. */
  powerButton(): void {
    this.acpi?.pressPowerButton();
  }

  /**
   * Types bytes into the guest's console (the UART, or virtio-console with
   * `console: 'virtio'`). What the device cannot take yet is held and fed
   * in as the guest reads, never dropped.
   */
  sendConsoleInput(bytes: Uint8Array): void {
    // Before the vCPUs run, a device's interrupt would have nowhere to go: typed in once they do.
    if (this.console && this.state === 'running') this.console.send(bytes);
    else if (bytes.length) this.earlyInput.push(Buffer.from(bytes));
  }

  /** The last 16 KiB the guest printed on its consoles. */
  consoleText(): string {
    return this.consoleTail.text();
  }

  /**
   * Exits by port, MMIO address and other reason over the VM's life so far,
   * with the VMM time spent on the port and MMIO ones, all vCPUs merged;
   * null unless the VM was created with `exitProfile: true`.
   */
  exitProfile(): ExitProfileEntry[] | null {
    return this.exitProfileBuffer ? readExitProfile(this.exitProfileBuffer, this.vcpus) : null;
  }

  stats(): VmStats {
    const vcpus = this.statsBuffer ? readVcpuStats(this.statsBuffer, this.vcpus, this.control) : [];
    return { irqchip: this.irqchip, vcpus, console: this.console?.stats() ?? { bytesOut: 0, bytesIn: 0 }, virtio: this.virtio?.stats() ?? [] };
  }

  /** Where the VM is in its life: 'paused' between pause() and resume(). */
  get runState(): 'new' | 'starting' | 'running' | 'paused' | 'stopped' {
    return this.state === 'running' && this.paused ? 'paused' : this.state;
  }

  /**
   * Register, memory and breakpoint access for a debugger (the gdb stub);
   * usable while the VM is paused. Exists once start() has been called.
   */
  get debug(): VmDebug {
    if (!this.control || !this.debugBlock || !this.guestMemory) throw new Error('the debug interface exists once start() has been called');
    this.vmDebug ??= new VmDebug({ control: this.control, block: this.debugBlock, memory: this.guestMemory, vcpus: this.vcpus, isPaused: () => this.paused && this.state === 'running', guestDebugFlags: this.guestDebugFlags });
    return this.vmDebug;
  }


  private setUpIrqchip(vm: KvmVm): void {
    this.irqchipState = this.config.irqchipMode.allocate(this.vcpus, this.config.cpus.apicIds());
    this.config.irqchipMode.createInKvm(vm);
    if (this.config.restoring) this.fromSnapshot(() => loadIrqchip(this.irqchipState!, vm, this.config.restoring!.irqchip));
    // x2APIC would need the guest's x2APIC MSR accesses to reach our LAPIC,
    // but KVM never filters MSRs 0x800-0x8ff (kvm_msr_allowed), and on
    // software-virtualising hosts RDMSR does not exit at all (host-kvm
    // notes): `x2apic` stays false, and KVM keeps the APIC base and
    // TSC-deadline MSRs. Paravirtual EOI needs only the guest's WRMSR of its
    // MSR (Linux never reads it back), which a filter does route to us.
    this.pvEoi = this.config.irqchipMode.userLapic && this.options.pvEoi !== false && routeMsrsToUserspace(vm, [PV_EOI_MSR_RANGE]);
    if (vm.check('KVM_CAP_SET_TSS_ADDR')) vm.setTssAddr(0xfffbd000);
  }

  private setUpMemory(vm: KvmVm, bios: FirmwareImage | null): void {
    this.ram = this.config.restoring ? mapGuestRamFile(this.config.restoring.ramPath, this.memorySize) : allocateGuestRam(this.memorySize);
    // The guest's time stands still until its vCPUs run again (see start()).
    if (this.config.restoring) {
      this.clock.setReading(this.config.restoring.manifest.clock.vmNs);
      this.clock.freeze();
    }
    if (bios) {
      // A restore gives the firmware what it had: its boot settings from the snapshot, the RAM beneath its PAM area as saved.
      const saved = this.config.restoring?.manifest.vm.firmware;
      const bootOrder = saved ? saved.bootOrder : this.options.bootOrder;
      const bootFailWaitMs = saved ? saved.bootFailWaitMs : this.options.bootFailWaitMs;
      this.firmware = planFirmwareBoot({ image: bios, vm, ram: this.ram, vcpus: this.vcpus, apicIds: this.config.cpus.apicIds(), virtio: this.virtio!.plan, platform: this.platformDescription(), bootOrder, bootFailWaitMs, restored: saved !== undefined });
    } else {
      this.ram.regions.forEach((r, slot) => vm.setUserMemoryRegion(slot, r.gpa, r.size, r.hostAddress));
    }
    this.guestMemory = new GuestMemory(this.ram.regions);
  }




  /** What the firmware tables say of this VM's platform devices. */
  private platformDescription(): PlatformDescription {
    return platformDescription({ ramSize: this.memorySize, vcpus: this.vcpus });
  }

  private createDevices(): DeviceSpec[] {
    const specs: DeviceSpec[] = [...platformDevices({ ramSize: this.memorySize, vcpus: this.vcpus, firmware: this.firmware?.platform }), ...this.virtio!.plan.specs];
    // Restored state goes in before any thread builds a view over it.
    if (this.config.restoring) this.fromSnapshot(() => loadDeviceStates(specs, this.config.restoring!.devices));
    this.devices = specs;
    // The main thread's own views: it drains console output, types input and
    // presses the power button.
    this.irqchipViews = irqchipViews(this.irqchipState!, { vmFd: this.vmFd!.fd, clock: this.clock, wake: (i) => this.control?.wake(i) });
    const host: DeviceHost = {
      irq: this.irqchipViews.lines,
      vm: { requestStop: (r) => this.requestStop(r), log: (level, message) => this.emit('log', level, message) },
      clock: this.clock,
    };
    this.console = new GuestConsole({
      kind: this.consoleKind,
      output: this.options.consoleOutput,
      input: this.options.consoleInput,
      emit: (chunk) => {
        this.consoleTail.push(chunk);
        this.emit('console', chunk);
      },
      outputFailed: (e) => {
        const gone = errnoCode(e) === 'EPIPE' ? ' (its reader went away)' : '';
        this.emit('log', 'error', `console output failed: ${e.message}${gone}; stopping the VM`);
        this.requestStop({ kind: 'stopped' });
      },
    });
    for (const spec of specs) {
      if (spec.kind === 'uart16550') this.console.attachUart(new Uart16550(spec.state, host, { irq: spec.irq }));
      if (spec.kind === 'acpi-pm') this.acpi = new AcpiPm(spec.state, host, { sciIrq: spec.sciIrq, s5SlpTyp: spec.s5SlpTyp });
    }
    return specs;
  }

  /** Where a thread of this VM starts; says once (at info level) when a stale or missing bundle leaves the threads on the compiled modules. */
  private threadUrl(name: ThreadName): URL {
    const entry = threadEntry(name);
    if (entry.reason && !this.reportedEntries.has(name)) {
      this.reportedEntries.add(name);
      this.emit('log', 'info', `${name} threads load the compiled modules: ${entry.reason}`);
    }
    return entry.url;
  }

  /** The thread that fires PIT and RTC interrupts on time (see threads/device-timer.ts). */
  private startDeviceTimer(devices: DeviceSpec[]): void {
    const data: DeviceTimerData = {
      vcpus: this.vcpus,
      vmFd: this.vmFd!.fd,
      control: this.control!.buffer,
      wake: this.timerWake,
      irqchipState: this.irqchipState!,
      devices,
      clock: this.clockBuffer,
    };
    this.timerWorker = new Worker(this.threadUrl('device-timer'), { workerData: data, name: 'device-timer', ...WORKER_STDIO });
    const worker = this.timerWorker;
    forwardWorkerStdio(worker);
    this.timerExited = new Promise((resolve) => worker.once('exit', () => resolve()));
    this.timerWorker.on('message', (m: WorkerMessage) => {
      if (m.type === 'stop') this.stopReason ??= m.reason;
      else if (m.type === 'log') this.emit('log', m.level, m.message);
    });
    this.timerWorker.on('error', (e) => this.requestStop({ kind: 'error', vcpu: -1, detail: `device timer thread failed: ${e.stack ?? e.message}` }));
  }

  /** One worker per vCPU, each of which creates its KVM vCPU and reports ready (see VcpuSet). */
  private async spawnVcpus(image: BootPlan, devices: DeviceSpec[]): Promise<void> {
    const kvm = this.kvm!;
    const vm = this.vmFd!;
    const control = new VmControlBlock(VmControlBlock.allocate(this.vcpus), this.vcpus);
    const stats = new SharedArrayBuffer(this.vcpus * STAT_WORDS * 8);
    const debug = new DebugBlock(DebugBlock.allocate());
    this.control = control;
    this.statsBuffer = stats;
    this.debugBlock = debug;
    if (this.options.exitProfile) this.exitProfileBuffer = allocateExitProfile(this.vcpus);
    this.guestDebugFlags = guestDebugFlags(vm);
    const reportedPorts = new SharedArrayBuffer(0x10000 / 8);
    // glibc gives each new thread a malloc arena of its own (up to 8 per
    // core), each keeping ~0.7 MiB resident; vCPU threads hardly call
    // malloc (V8 maps its heap itself), so sharing two costs them nothing.
    native.setMallocArenaMax(MALLOC_ARENAS);
    const supported = kvm.supportedCpuid();
    const softwareVirt = Kvm.isSoftwareVirtualised();
    const syncCaps = vm.check('KVM_CAP_SYNC_REGS');
    const syncRegs = (syncCaps & k('KVM_SYNC_X86_REGS')) !== 0;
    const userLapic = this.config.irqchipMode.userLapic;
    // Only our own LAPIC injects through the run page's events; elsewhere the copy would be wasted work on every exit.
    const syncEvents = userLapic && syncRegs && (syncCaps & k('KVM_SYNC_X86_EVENTS')) !== 0;
    const runSize = Math.max(kvm.vcpuMmapSize, kvmRunSize());
    const irqchipState = this.irqchipState!;
    const memory = this.memory.descriptors();
    const restoring = this.config.restoring;

    await this.vcpuSet.spawn(this.vcpus, (i): VcpuWorkerData => {
      const fresh: CpuidEntry[] = vcpuCpuid(supported, { vcpu: i, layout: this.config.cpus, userLapic, softwareVirt, x2apic: this.x2apic, pvEoi: this.pvEoi });
      const cpuid = restoring ? this.restoredCpuid(i, fresh) : fresh;
      this.cpuids[i] = cpuid;
      return {
        index: i,
        apicId: this.config.cpus.apicId(i),
        count: this.vcpus,
        vmFd: vm.fd,
        runSize,
        control: control.buffer,
        stats,
        exitProfile: this.exitProfileBuffer,
        reportedPorts,
        memory,
        devices,
        cpuid,
        irqchip: this.irqchip,
        irqchipState,
        startup: image.startup,
        boot: image.reset ? null : { mode: image.mode, entry: image.entry, rsi: image.rsi, rax: image.rax, rbx: image.rbx, linux: image.linux },
        syncRegs,
        syncEvents,
        quirks: softwareVirt,
        haltPollNs: this.config.haltPollNs,
        testKnobs: this.options.testKnobs,
        timerWake: this.timerWake,
        clock: this.clockBuffer,
        ...(restoring ? { restore: { arch: restoring.vcpus[i]!, waitingForSipi: (restoring.vcpus[i] as { waitingForSipi?: boolean }).waitingForSipi === true } } : {}),
        debug: debug.buffer,
      };
    });
    if (this.stopReason?.kind === 'stopped') throw new NodevisorError('ESTOPPED', 'the VM was stopped while it was starting');
    if (this.stopReason) throw new NodevisorError('ESTART', `the VM failed while starting: ${describeStop(this.stopReason)}`);
  }

  /** Runs a restore step; a saved state it cannot read becomes a SnapshotError naming the snapshot. */
  private fromSnapshot(step: () => void): void {
    try {
      step();
    } catch (e) {
      if (e instanceof StateLayoutError || e instanceof ArchStateError) throw new SnapshotError(`cannot restore ${this.options.restore}: ${e.message}`, { cause: e });
      throw e;
    }
  }

  /** The CPUID vCPU `i` had in the snapshot, if this host can give every feature of it (`now`: what it would give). */
  private restoredCpuid(i: number, now: CpuidEntry[]): CpuidEntry[] {
    const saved = this.config.restoring!.manifest.cpuid[i]!;
    const missing = missingCpuFeatures(saved, now);
    if (missing.length) throw new SnapshotError(`cannot restore ${this.options.restore} on this host: the guest was using CPU features this host does not give it (${missing.join(', ')})`);
    return saved;
  }

  /**
   * Saves the VM to `dir` (see snapshot-manifest.ts for what it holds):
   * pauses it, waits for virtio requests in progress to complete, writes
   * guest RAM (sparse), every device's and vCPU's state, and resumes it
   * unless it was paused before or `resume: false`. `nodevisor run
   * --restore DIR` (or `createVm({ restore: dir })`) continues it.
   */
  async snapshot(dir: string, options: { resume?: boolean } = {}): Promise<SnapshotInfo> {
    if (this.state !== 'running') throw new NodevisorError('ESTATE', `cannot snapshot a VM that is ${this.state}`);
    const wasPaused = this.paused;
    await this.pause();
    if (this.control!.stopRequested) throw new NodevisorError('ESTATE', 'the VM stopped before the snapshot could be taken');
    const release = await this.virtio!.quiesce();
    let info: SnapshotInfo;
    try {
      info = takeSnapshot(dir, {
        kvm: this.kvm!,
        vmFd: this.vmFd!,
        ram: this.ram!,
        ramShared: !this.config.restoring,
        devices: this.devices,
        irqchip: this.irqchipState!,
        control: this.control!,
        stats: this.statsBuffer!,
        disks: this.disks,
        cpuid: this.cpuids,
        vm: { vcpus: this.vcpus, topology: this.topology, memory: this.memorySize, irqchip: this.irqchip, console: this.consoleKind, rng: this.virtio!.plan.specs.some((s) => s.spec.model === 'rng'), nets: this.nics.map((n) => n.options), x2apic: this.x2apic },
        clockNs: this.clock.nowNs(),
        kvmclock: this.pausedKvmclock,
        nodevisorVersion: VERSION,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        softwareVirtualised: Kvm.isSoftwareVirtualised(),
        ...(this.firmware ? { firmware: this.firmware.settings } : {}),
      });
    } finally {
      release();
    }
    if (!wasPaused && options.resume !== false) await this.resume();
    this.emit('snapshot', info);
    return info;
  }


  private requestStop(reason: StopReason): void {
    if (!this.control) this.stopReason ??= reason;
    else {
      if (this.control.claimStop()) this.stopReason ??= reason;
      this.control.wakeAll();
      new TimerWake(this.timerWake).notify();
    }
    this.vcpuSet.nudge();
  }

  /**
   * A start that failed or was stopped: vCPU workers that never claimed
   * their KVM set-up are terminated wherever they are (they hold nothing),
   * the others stop as a running VM does; then everything is released.
   */
  private async abortStart(): Promise<void> {
    this.state = 'stopped';
    this.control?.claimStop();
    this.control?.wakeAll();
    await this.vcpuSet.abort(this.control);
    await this.finish(false);
  }

  /** Tears the VM down once its vCPU threads are gone, and settles `wait()`; `emit`: also the 'stop' event. Runs once. */
  private finish(emit = true): Promise<void> {
    this.finishing ??= this.tearDown(emit);
    return this.finishing;
  }

  private async tearDown(emit: boolean): Promise<void> {
    let reason: StopReason = this.stopReason ?? { kind: 'stopped' };
    this.state = 'stopped';
    // The device-timer thread and the block I/O pool drive IRQ lines through
    // the VM fd (and the pool writes guest RAM): both must be gone before the
    // fd is closed (and its number possibly reused) and the disks closed.
    await this.stopDeviceTimer();
    await this.virtio?.stop();
    await this.closeNics();
    // Pass on what the guest printed last before anyone hears of the stop.
    this.console?.close();
    this.release();
    if (reason.kind === 'panic' && !reason.detail) reason = { kind: 'panic', detail: panicMessage(this.consoleTail.text()) };
    const bootFailure = reason.kind === 'reset' && this.firmware ? firmwareBootFailure(this.consoleTail.text()) : null;
    if (bootFailure !== null) reason = { kind: 'no-boot-device', detail: bootFailure };
    const result: VmResult = { reason, exitStatus: exitStatusOf(reason), message: describeStop(reason) };
    if (emit) this.emit('stop', result);
    this.resolveResult?.(result);
  }

  private async stopDeviceTimer(): Promise<void> {
    const w = this.timerWorker;
    if (!w || !this.timerExited) return;
    this.control?.claimStop();
    new TimerWake(this.timerWake).notify();
    const late = setTimeout(() => void w.terminate(), 2000);
    await this.timerExited;
    clearTimeout(late);
  }

  /** Closes the NICs' back ends (tap files, passt) once their I/O threads are gone. */
  private async closeNics(): Promise<void> {
    const nics = this.nics;
    this.nics = [];
    await closeNics(nics);
  }

  /** Closes KVM file descriptors; guest RAM stays readable until collected. */
  private release(): void {
    this.vmFd?.close();
    this.kvm?.close();
    if (this.ram) native.close(this.ram.fd);
    if (this.firmware) native.close(this.firmware.memory.fd);
    closeDiskImages(this.disks);
    this.disks = [];
    this.virtio?.release();
    this.vmFd = undefined;
    this.kvm = undefined;
  }
}
