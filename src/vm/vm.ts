import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
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
import { parseSize, formatSize } from '../memory/layout.js';
import { monotonicClock } from '../sync/clock.js';
import { writeBootTables, BOOT_AREA_END } from '../vcpu/boot-state.js';
import { VmControlBlock, Stat, STAT_WORDS } from '../vcpu/control.js';
import { vcpuCpuid } from '../vcpu/cpuid.js';
import { exitName } from '../vcpu/run-page.js';
import type { VcpuWorkerData, WorkerMessage } from '../vcpu/worker-data.js';
import { demoImage } from '../guests/demo.js';
import { platformDevices } from './platform.js';
import { TimerWake } from './timer-wake.js';
import type { DeviceTimerData } from './device-timer.js';
import { allocateIrqchip, IrqchipViews, type IrqchipState } from './irqchip.js';
import { routeMsrsToUserspace, LAPIC_MSR_RANGES } from './msr-filter.js';
import type { DeviceSpec } from './device-specs.js';
import { DEFAULT_MEMORY, IRQCHIP_MODES, type FlatImage, type VmOptions } from './options.js';
import { exitStatusOf, describeStop } from './stop-reason.js';
import { loadLinux, type LinuxBoot } from '../boot/linux.js';
import { guestCmdline, defaultCmdline } from './host-quirks.js';
import { openDiskImages, closeDiskImages, type OpenDisk } from './disk-images.js';
import { MAX_IO_THREADS, defaultIoThreads } from '../virtio/blk-io-pool.js';
import { GuestConsole, CONSOLE_KINDS, type ConsoleKind } from './guest-console.js';
import { VirtioRuntime, type VirtioFunctionStats } from './virtio-runtime.js';
import { TextTail, panicMessage } from './console-tail.js';
import { openNics, closeNics, describeNic, type OpenNic } from './net-backends.js';

/** Reads a file the guest boots from, with an error that names it and says what is wrong. */
function readGuestFile(source: string | Uint8Array, what: string, code: string): Uint8Array {
  if (typeof source !== 'string') {
    if (source.length === 0) throw new NodevisorError(code, `the ${what} is empty`);
    return source;
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(source);
  } catch (e) {
    const why = errnoCode(e) === 'ENOENT' ? 'does not exist' : errnoCode(e) === 'EACCES' ? 'is not readable (permission denied)' : errnoCode(e) === 'EISDIR' ? 'is a directory' : (e as Error).message;
    throw new NodevisorError(code, `${what} ${source} ${why}`, { cause: e });
  }
  if (bytes.length === 0) throw new NodevisorError(code, `${what} ${source} is empty`);
  return bytes;
}

export interface VmResult {
  reason: StopReason;
  /** The process exit status this outcome maps to (see ExitStatus). */
  exitStatus: number;
  /** Human-readable: why the guest stopped. */
  message: string;
}

export interface VcpuStats {
  index: number;
  /** OS thread id of the vCPU's worker. */
  tid: number;
  exits: number;
  exitsByReason: Record<string, number>;
  /** Seconds inside KVM_RUN. */
  guestSeconds: number;
  /** Seconds parked in HLT. */
  haltSeconds: number;
  /** Seconds in the VMM handling exits (wall time minus the two above). */
  vmmSeconds: number;
}

export interface VmStats {
  vcpus: VcpuStats[];
  console: { bytesOut: number; bytesIn: number };
  /** Each virtio PCI function: its model, bus 0 device number, status, interrupts, notifications and requests. */
  virtio: VirtioFunctionStats[];
}

type State = 'new' | 'starting' | 'running' | 'stopped';

interface LoadedImage {
  bytes: Uint8Array;
  mode: FlatImage['mode'];
  load: number;
  entry: number;
  startup: 'all' | 'sipi';
}

/** How the vCPUs start: the entry state and who enters. */
interface BootPlan {
  mode: FlatImage['mode'];
  entry: number;
  /** RSI at entry (the Linux zero page); default the vCPU count. */
  rsi?: number;
  /** Enter with the Linux boot protocol's GDT and selectors. */
  linux?: boolean;
  startup: 'all' | 'sipi';
}

/**
 * A virtual machine: guest RAM, devices, one worker thread per vCPU.
 * Events: 'console' (Buffer of guest serial output), 'log' (level, message),
 * 'stop' (VmResult).
 */
export class Vm extends EventEmitter {
  readonly vcpus: number;
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
  private workers: Worker[] = [];
  private stopReason?: StopReason;
  private acpi?: AcpiPm;
  private result?: Promise<VmResult>;
  private irqchipState?: IrqchipState;
  private irqchipViews?: IrqchipViews;
  private x2apic = false;
  private linux?: LinuxBoot;
  private readonly timerWake = TimerWake.allocate();
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

  constructor(private readonly options: VmOptions = {}) {
    super();
    this.vcpus = options.vcpus ?? 1;
    if (!Number.isInteger(this.vcpus) || this.vcpus < 1) throw new NodevisorError('EVCPUS', `the vCPU count must be a positive integer (got ${options.vcpus})`);
    const mem = options.memory ?? DEFAULT_MEMORY;
    try {
      this.memorySize = typeof mem === 'number' ? mem : parseSize(mem);
    } catch (e) {
      throw new NodevisorError('EMEMORY', (e as Error).message);
    }
    this.irqchip = options.irqchip ?? 'user';
    if (!IRQCHIP_MODES.includes(this.irqchip)) throw new NodevisorError('EIRQCHIP', `unknown irqchip mode "${this.irqchip}": use one of ${IRQCHIP_MODES.join(', ')}`);
    this.ioThreads = options.ioThreads ?? defaultIoThreads();
    if (!Number.isInteger(this.ioThreads) || this.ioThreads < 1 || this.ioThreads > MAX_IO_THREADS) {
      throw new NodevisorError('EIOTHREADS', `ioThreads must be an integer from 1 to ${MAX_IO_THREADS} (got ${options.ioThreads})`);
    }
    this.consoleKind = options.console ?? 'serial';
    if (!CONSOLE_KINDS.includes(this.consoleKind)) throw new NodevisorError('ECONSOLE', `unknown console "${this.consoleKind}": use one of ${CONSOLE_KINDS.join(', ')}`);
  }

  /** Guest RAM (available once started, and after the VM stops). */
  get memory(): GuestMemory {
    if (!this.guestMemory) throw new Error('guest memory exists once start() has been called');
    return this.guestMemory;
  }

  /** Creates the VM, loads the guest and starts every vCPU. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`start() called on a VM that is ${this.state}`);
    this.state = 'starting';
    try {
      const kernel = this.options.kernel !== undefined ? this.readKernelFiles() : null;
      const image = kernel ? null : this.loadImage(this.options.image ?? demoImage());
      this.disks = openDiskImages(this.options.disks ?? []);
      this.nics = await openNics(this.options.nets ?? [], this.vcpus);
      for (const n of this.nics) this.emit('log', 'info', `virtio-net: ${describeNic(n)}`);
      this.kvm = Kvm.open(this.options.kvmPath);
      const max = this.kvm.maxVcpus;
      if (this.vcpus > max) throw new NodevisorError('EVCPUS', `${this.vcpus} vCPUs requested but this host's KVM allows at most ${max}`);
      this.vmFd = this.kvm.createVm();
      this.virtio = new VirtioRuntime(this.vmFd, {
        disks: this.disks,
        rng: this.options.rng ?? false,
        console: this.consoleKind === 'virtio',
        nets: this.nics,
        vcpus: this.vcpus,
        ioeventfd: this.options.ioeventfd !== false,
      });
      this.setUpIrqchip(this.vmFd);
      this.setUpMemory(this.vmFd);
      const plan = image ? this.placeImage(image) : this.placeLinux(kernel!);
      const devices = this.createDevices();
      await this.spawnVcpus(plan, devices);
      this.startDeviceTimer(devices);
      this.virtio.start({
        memory: this.memory,
        irqchipViews: this.irqchipViews!,
        irqchipState: this.irqchipState!,
        control: this.control!.buffer,
        vcpus: this.vcpus,
        console: this.console!,
        ioThreads: this.ioThreads,
        testKnobs: this.options.testKnobs,
        requestStop: (r) => this.requestStop(r),
        log: (level, m) => this.emit('log', level, m),
      });
      this.state = 'running';
      this.control!.go();
    } catch (e) {
      this.state = 'stopped';
      this.control?.claimStop();
      this.control?.wakeAll();
      await Promise.all([...this.workers, ...(this.timerWorker ? [this.timerWorker] : [])].map((w) => w.terminate()));
      await this.virtio?.stop();
      await this.closeNics();
      this.console?.close();
      this.release();
      throw e;
    }
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
    if (this.console) this.console.send(bytes);
    else if (bytes.length) this.earlyInput.push(Buffer.from(bytes)); // before start(): typed in once the console exists
  }

  /** The last 16 KiB the guest printed on its consoles. */
  consoleText(): string {
    return this.consoleTail.text();
  }

  stats(): VmStats {
    const vcpus: VcpuStats[] = [];
    if (this.statsBuffer) {
      const now = monotonicClock.nowNs();
      for (let i = 0; i < this.vcpus; i++) {
        const s = new Float64Array(this.statsBuffer, i * STAT_WORDS * 8, STAT_WORDS);
        const byReason: Record<string, number> = {};
        for (let r = 0; r < STAT_WORDS - Stat.ExitBase; r++) {
          const n = s[Stat.ExitBase + r]!;
          if (n) byReason[exitName(r)] = n;
        }
        const wall = s[Stat.StartNs] ? (s[Stat.EndNs] || now) - s[Stat.StartNs]! : 0;
        const guest = s[Stat.GuestNs]!;
        const halt = s[Stat.HaltNs]!;
        vcpus.push({
          index: i,
          tid: s[Stat.Tid]!,
          exits: s[Stat.Exits]!,
          exitsByReason: byReason,
          guestSeconds: guest / 1e9,
          haltSeconds: halt / 1e9,
          vmmSeconds: Math.max(0, wall - guest - halt) / 1e9,
        });
      }
    }
    return { vcpus, console: this.console?.stats() ?? { bytesOut: 0, bytesIn: 0 }, virtio: this.virtio?.stats() ?? [] };
  }

  private loadImage(image: FlatImage): LoadedImage {
    const bytes = readGuestFile(image.source, 'guest image', 'EIMAGE');
    const load = image.loadAddress ?? (image.mode === 'real' ? 0x8000 : 0x100000);
    const entry = image.entry ?? load;
    if (load < BOOT_AREA_END) throw new NodevisorError('EIMAGE', `load address 0x${load.toString(16)} overlaps the VMM's boot area (below 0x${BOOT_AREA_END.toString(16)})`);
    if (image.mode === 'real' && (entry >= 0x100000 || load + bytes.length > 0x9fc00)) {
      throw new NodevisorError('EIMAGE', 'a real-mode image must load and start below 0x9fc00');
    }
    return { bytes, mode: image.mode, load, entry, startup: image.startup ?? 'all' };
  }

  private setUpIrqchip(vm: KvmVm): void {
    this.irqchipState = allocateIrqchip(this.irqchip, this.vcpus);
    if (this.irqchip === 'kernel') vm.createIrqchip();
    // Split: KVM keeps the LAPICs; 24 routes for our IOAPIC's EOI tracking.
    if (this.irqchip === 'split') vm.enableCap('KVM_CAP_SPLIT_IRQCHIP', 24);
    // x2APIC needs the guest's APIC MSR reads and writes to reach our LAPIC.
    // On software-virtualising hosts RDMSR never exits (host-kvm notes), so
    // x2APIC stays hidden there.
    this.x2apic = this.irqchip === 'user' && !Kvm.isSoftwareVirtualised() && routeMsrsToUserspace(vm, LAPIC_MSR_RANGES);
    if (vm.check('KVM_CAP_SET_TSS_ADDR')) vm.setTssAddr(0xfffbd000);
  }

  private setUpMemory(vm: KvmVm): void {
    this.ram = allocateGuestRam(this.memorySize);
    this.ram.regions.forEach((r, slot) => vm.setUserMemoryRegion(slot, r.gpa, r.size, r.hostAddress));
    this.guestMemory = new GuestMemory(this.ram.regions);
  }

  private placeImage(image: LoadedImage): BootPlan {
    const mem = this.memory;
    if (!mem.contains(image.load, image.bytes.length)) {
      throw new NodevisorError('EIMAGE', `the guest image (${image.bytes.length} bytes at 0x${image.load.toString(16)}) does not fit in ${formatSize(this.memorySize)} of RAM`);
    }
    if (image.mode !== 'real') writeBootTables(mem);
    mem.write(image.load, image.bytes);
    return { mode: image.mode, entry: image.entry, startup: image.startup };
  }

  private readKernelFiles(): { kernel: Uint8Array; initrd: Uint8Array | null; source: string } {
    const o = this.options;
    const kernel = readGuestFile(o.kernel!, 'kernel', 'EKERNEL');
    const initrd = o.initrd !== undefined ? readGuestFile(o.initrd, 'initrd', 'EKERNEL') : null;
    return { kernel, initrd, source: typeof o.kernel === 'string' ? o.kernel : 'the kernel image' };
  }

  /**
   * Linux through the 64-bit boot protocol: the BSP enters in long mode at
   * the kernel's entry with RSI = the zero page; the APs wait for the
   * kernel's INIT-SIPI-SIPI. Firmware tables describe this VM.
   */
  private placeLinux(k: { kernel: Uint8Array; initrd: Uint8Array | null; source: string }): BootPlan {
    const mem = this.memory;
    writeBootTables(mem);
    this.linux = loadLinux(mem, {
      kernel: k.kernel,
      kernelSource: k.source,
      initrd: k.initrd,
      cmdline: guestCmdline(this.options.cmdline ?? defaultCmdline(this.consoleKind), Kvm.isSoftwareVirtualised()),
      cpus: this.vcpus,
      acpi: { pciIntx: this.virtio!.plan.pciIntx },
      pciIntx: this.virtio!.plan.pciIntx,
    });
    return { mode: this.linux.entryMode, entry: this.linux.entry, rsi: this.linux.bootParams, startup: 'sipi', linux: true };
  }

  private createDevices(): DeviceSpec[] {
    const specs: DeviceSpec[] = [...platformDevices({ ramSize: this.memorySize, vcpus: this.vcpus }), ...this.virtio!.plan.specs];
    // The main thread's own views: it drains console output, types input and
    // presses the power button.
    this.irqchipViews = new IrqchipViews(this.irqchipState!, { vmFd: this.vmFd!.fd, clock: monotonicClock, wake: (i) => this.control?.wake(i) });
    const host: DeviceHost = {
      irq: this.irqchipViews.lines,
      vm: { requestStop: (r) => this.requestStop(r), log: (level, message) => this.emit('log', level, message) },
      clock: monotonicClock,
    };
    this.console = new GuestConsole({
      kind: this.consoleKind,
      output: this.options.consoleOutput,
      input: this.options.consoleInput,
      emit: (chunk) => {
        this.consoleTail.push(chunk);
        this.emit('console', chunk);
      },
    });
    for (const b of this.earlyInput.splice(0)) this.console.send(b);
    for (const spec of specs) {
      if (spec.kind === 'uart16550') this.console.attachUart(new Uart16550(spec.state, host, { irq: spec.irq }));
      if (spec.kind === 'acpi-pm') this.acpi = new AcpiPm(spec.state, host, { sciIrq: spec.sciIrq, s5SlpTyp: spec.s5SlpTyp });
    }
    return specs;
  }

  /** The thread that fires PIT and RTC interrupts on time (see device-timer.ts). */
  private startDeviceTimer(devices: DeviceSpec[]): void {
    const data: DeviceTimerData = {
      vcpus: this.vcpus,
      vmFd: this.vmFd!.fd,
      control: this.control!.buffer,
      wake: this.timerWake,
      irqchipState: this.irqchipState!,
      devices,
    };
    this.timerWorker = new Worker(new URL('./device-timer.js', import.meta.url), { workerData: data, name: 'device-timer' });
    const worker = this.timerWorker;
    this.timerExited = new Promise((resolve) => worker.once('exit', () => resolve()));
    this.timerWorker.on('message', (m: WorkerMessage) => {
      if (m.type === 'stop') this.stopReason ??= m.reason;
      else if (m.type === 'log') this.emit('log', m.level, m.message);
    });
    this.timerWorker.on('error', (e) => this.requestStop({ kind: 'error', vcpu: -1, detail: `device timer thread failed: ${e.stack ?? e.message}` }));
  }

  private async spawnVcpus(image: BootPlan, devices: DeviceSpec[]): Promise<void> {
    const kvm = this.kvm!;
    const vm = this.vmFd!;
    this.control = new VmControlBlock(VmControlBlock.allocate(this.vcpus), this.vcpus);
    this.statsBuffer = new SharedArrayBuffer(this.vcpus * STAT_WORDS * 8);
    const reportedPorts = new SharedArrayBuffer(0x10000 / 8);
    const supported = kvm.supportedCpuid();
    const softwareVirt = Kvm.isSoftwareVirtualised();
    const syncCaps = vm.check('KVM_CAP_SYNC_REGS');
    const syncRegs = (syncCaps & k('KVM_SYNC_X86_REGS')) !== 0;
    // Only our own LAPIC injects through the run page's events; elsewhere the copy would be wasted work on every exit.
    const syncEvents = this.irqchip === 'user' && syncRegs && (syncCaps & k('KVM_SYNC_X86_EVENTS')) !== 0;
    const runSize = Math.max(kvm.vcpuMmapSize, kvmRunSize());
    this.result = new Promise((resolve) => (this.resolveResult = resolve));

    let exited = 0;
    const ready = new Set<number>();
    let readyResolve!: () => void;
    let readyReject!: (e: Error) => void;
    const allReady = new Promise<void>((res, rej) => {
      readyResolve = res;
      readyReject = rej;
    });
    for (let i = 0; i < this.vcpus; i++) {
      const cpuid: CpuidEntry[] = vcpuCpuid(supported, { vcpu: i, apicId: i, vcpus: this.vcpus, irqchip: this.irqchip, softwareVirt, x2apic: this.x2apic });
      const data: VcpuWorkerData = {
        index: i,
        count: this.vcpus,
        vmFd: vm.fd,
        runSize,
        control: this.control.buffer,
        stats: this.statsBuffer,
        reportedPorts,
        memory: this.memory.descriptors(),
        devices,
        cpuid,
        irqchip: this.irqchip,
        irqchipState: this.irqchipState!,
        startup: image.startup,
        boot: { mode: image.mode, entry: image.entry, rsi: image.rsi, linux: image.linux },
        syncRegs,
        syncEvents,
        quirks: softwareVirt,
        testKnobs: this.options.testKnobs,
        timerWake: this.timerWake,
      };
      const w = new Worker(new URL('../vcpu/worker.js', import.meta.url), { workerData: data, name: `vcpu${i}` });
      w.on('message', (m: WorkerMessage) => {
        switch (m.type) {
          case 'ready':
            ready.add(m.index);
            if (ready.size === this.vcpus) readyResolve();
            break;
          case 'log':
            this.emit('log', m.level, m.message);
            break;
          case 'stop':
            this.stopReason ??= m.reason;
            break;
          case 'exited':
            break;
        }
      });
      w.on('error', (e) => {
        this.requestStop({ kind: 'error', vcpu: i, detail: `vCPU ${i} worker failed: ${e.stack ?? e.message}` });
        readyReject(this.setupError(i, e));
      });
      w.on('exit', () => {
        if (++exited === this.vcpus) void this.finish();
      });
      this.workers.push(w);
    }
    await allReady.catch((e: Error) => {
      throw this.stopReason?.kind === 'error' && !ready.size ? this.setupError(0, e) : e;
    });
    if (this.stopReason) throw new NodevisorError('ESTART', `the VM failed while starting: ${describeStop(this.stopReason)}`);
  }

  private setupError(vcpu: number, e: Error): Error {
    if (errnoCode(e) === 'EINVAL' || /KVM_CREATE_VCPU/.test(e.message)) {
      return new NodevisorError('EVCPUS', `KVM refused to create vCPU ${vcpu} (${e.message}); try fewer vCPUs`, { cause: e });
    }
    return e;
  }

  private requestStop(reason: StopReason): void {
    if (!this.control) {
      this.stopReason ??= reason;
      return;
    }
    if (this.control.claimStop()) this.stopReason ??= reason;
    this.control.wakeAll();
    new TimerWake(this.timerWake).notify();
  }

  private async finish(): Promise<void> {
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
    const result: VmResult = { reason, exitStatus: exitStatusOf(reason), message: describeStop(reason) };
    this.emit('stop', result);
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
    closeDiskImages(this.disks);
    this.disks = [];
    this.virtio?.release();
    this.vmFd = undefined;
    this.kvm = undefined;
  }
}
