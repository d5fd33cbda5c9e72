import type { Bus } from '../devices/bus.js';
import type { BusDevice, DeviceHost } from '../devices/device.js';
import type { PciFunction } from '../devices/pci-config.js';
import { DebugExit } from '../devices/debug-exit.js';
import { PostCode } from '../devices/post-code.js';
import { Pvpanic } from '../devices/pvpanic.js';
import { Uart16550, UART_PORT_COUNT, type Uart16550State } from '../devices/uart16550.js';
import { AcpiPm, ACPI_PM_LENGTH, type AcpiPmState } from '../devices/acpi-pm.js';
import { I8254Pit, PIT_PORT_COUNT, PORT61, PORT61_PORT_COUNT, type I8254PitState } from '../devices/i8254-pit.js';
import { CmosRtc, RTC_PORT_COUNT, type CmosRtcState } from '../devices/cmos-rtc.js';
import { I8042, type I8042State } from '../devices/i8042.js';
import { PciHost, type PciHostState } from '../devices/pci-host.js';
import { ResetControl, RESET_CONTROL_PORT, RESET_CONTROL_VALUE, type ResetControlState } from '../devices/reset-control.js';
import type { PlatformDescription } from '../boot/acpi/tables.js';
import type { TimerWake } from './timer-wake.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { MsiSink } from '../devices/msi-sink.js';
import { PciMmioWindow, PCI_MMIO_BASE, PCI_MMIO_END } from '../devices/pci-mmio-window.js';
import { GuestRanges } from '../virtio/guest-ranges.js';
import { VirtioPciTransport, VIRTIO_BAR_SIZE } from '../virtio/pci-transport.js';
import { virtioModel, type VirtioPciSpec } from './virtio-devices.js';
import type { IoEventfdRegistrar } from '../virtio/notify-eventfds.js';
import { FwCfg, FW_CFG_PORT_COUNT, type FwCfgState } from '../devices/fw-cfg.js';
import { DebugConsole } from '../devices/debug-console.js';
import { I440fxPmc, PamArea, PamMode, PAM_AREA_START, PAM_AREA_END, PAM_SEGMENTS } from '../devices/i440fx-pam.js';
import { applyPamModes } from './pam-slots.js';
import type { PamSpec } from './firmware-memory.js';
import { required, StateLayoutError, type SavedState } from '../sync/state-layout.js';
import { loadVirtioNet, saveVirtioNet } from '../virtio/net.js';
import type { SavedDevice } from './snapshot-files.js';

/**
 * Devices described as plain data, so the main thread can send them to every
 * vCPU worker, where `attachDevices` builds that thread's views over the
 * same shared state.
 */
export type DeviceSpec =
  | { kind: 'debug-exit'; port: number }
  | { kind: 'pvpanic'; port: number }
  | { kind: 'post-code'; port: number }
  | { kind: 'uart16550'; port: number; irq: number; state: Uart16550State }
  | { kind: 'acpi-pm'; port: number; sciIrq: number; s5SlpTyp: number; state: AcpiPmState }
  | { kind: 'pit'; port: number; irq: number; state: I8254PitState }
  | { kind: 'rtc'; port: number; irq: number; state: CmosRtcState }
  | { kind: 'i8042'; dataPort: number; commandPort: number; kbdIrq: number; auxIrq: number; state: I8042State }
  | { kind: 'pci-host'; port: number; state: PciHostState; reset: ResetControlState; pam?: PamSpec }
  | { kind: 'fw-cfg'; port: number; state: FwCfgState }
  | { kind: 'debug-console'; port: number }
  | VirtioPciSpec;

/** What PCI devices that reach guest RAM or send MSIs need from the thread (absent where they are not attached). */
export interface PciThreadContext {
  readonly memory: GuestMemory;
  readonly msi?: MsiSink;
  /** Moves virtio notify ioeventfds when the guest moves a BAR. */
  readonly ioeventfd?: IoEventfdRegistrar;
}

/** What a device kind's `attach` works with on one thread. */
interface AttachContext {
  readonly bus: Bus;
  readonly host: DeviceHost;
  /** Wakes the device-timer thread when a device is reprogrammed to an earlier deadline. */
  readonly onDeadlineChange: () => void;
  readonly pci?: PciThreadContext;
  /** Attaches `device` at `length` ports from `port`, and lists it among the thread's devices. */
  add(port: number, length: number, device: BusDevice): void;
  /** Lists a device whose pieces the kind attached itself. */
  keep(device: object): void;
  /** The PCI host bridge, once attached (virtio functions register with it). */
  pciHost?: PciHost;
  /** The PCI MMIO window, made by the first function with a BAR. */
  window?: PciMmioWindow;
  ram?: GuestRanges;
}

/**
 * One declaration per kind of device: how a thread builds its view of it
 * over the shared state and attaches it to the bus, what the firmware
 * tables say of it, and how a snapshot saves and loads that state by field
 * name (absent where there is none).
 * Adding a device is its module, its spec in DeviceSpec, an entry here and
 * its place in platform.ts.
 */
interface DeviceKind<S extends DeviceSpec> {
  attach(spec: S, t: AttachContext): void;
  /** What the firmware tables say of it (MADT/FADT/DSDT); absent: nothing. */
  describe?(spec: S): PlatformDescription;
  save?(spec: S): Record<string, SavedState>;
  load?(spec: S, saved: Record<string, SavedState>): void;
}

type DeviceKinds = { readonly [K in DeviceSpec['kind']]: DeviceKind<Extract<DeviceSpec, { kind: K }>> };

const KINDS: DeviceKinds = {
  'debug-exit': { attach: (spec, t) => t.add(spec.port, 1, new DebugExit(t.host.vm)) },
  pvpanic: { attach: (spec, t) => t.add(spec.port, 1, new Pvpanic(t.host.vm)), describe: (spec) => ({ pvpanicPort: spec.port }) },
  'post-code': { attach: (spec, t) => t.add(spec.port, 1, new PostCode()) },
  'debug-console': { attach: (spec, t) => t.add(spec.port, 1, new DebugConsole(t.host.vm)) },
  uart16550: {
    attach: (spec, t) => t.add(spec.port, UART_PORT_COUNT, new Uart16550(spec.state, t.host, { irq: spec.irq })),
    save: (spec) => Uart16550.save(spec.state),
    load: (spec, s) => Uart16550.load(spec.state, s),
  },
  'acpi-pm': {
    attach: (spec, t) => t.add(spec.port, ACPI_PM_LENGTH, new AcpiPm(spec.state, t.host, { sciIrq: spec.sciIrq, s5SlpTyp: spec.s5SlpTyp })),
    describe: (spec) => ({ pmBase: spec.port, sciIrq: spec.sciIrq, s5SlpTyp: spec.s5SlpTyp }),
    save: (spec) => AcpiPm.save(spec.state),
    load: (spec, s) => AcpiPm.load(spec.state, s),
  },
  pit: {
    attach: (spec, t) => {
      const pit = new I8254Pit(spec.state, t.host, { irq: spec.irq, onDeadlineChange: t.onDeadlineChange });
      t.add(spec.port, PIT_PORT_COUNT, pit);
      t.bus.attachPio(PORT61, PORT61_PORT_COUNT, pit.port61);
    },
    save: (spec) => I8254Pit.save(spec.state),
    load: (spec, s) => I8254Pit.load(spec.state, s),
  },
  rtc: {
    attach: (spec, t) => t.add(spec.port, RTC_PORT_COUNT, new CmosRtc(spec.state, t.host, { irq: spec.irq, onDeadlineChange: t.onDeadlineChange })),
    describe: () => ({ cmosRtc: true }),
    save: (spec) => CmosRtc.save(spec.state),
    load: (spec, s) => CmosRtc.load(spec.state, s),
  },
  i8042: {
    attach: (spec, t) => {
      // Port 0x61 sits between the data (0x60) and command (0x64) ports.
      const kbc = new I8042(spec.state, t.host, { kbdIrq: spec.kbdIrq, auxIrq: spec.auxIrq });
      t.keep(kbc);
      t.bus.attachPio(spec.dataPort, 1, kbc.dataPort);
      t.bus.attachPio(spec.commandPort, 1, kbc.commandPort);
    },
    describe: () => ({ i8042: true }),
    save: (spec) => I8042.save(spec.state),
    load: (spec, s) => I8042.load(spec.state, s),
  },
  'pci-host': {
    attach: (spec, t) => {
      // 0xCF9 (reset control) lies inside the CONFIG_ADDRESS dword; the host bridge forwards it.
      const pam = spec.pam;
      let pmc: I440fxPmc | undefined;
      const bridgeFunction = pam ? (bridge: PciFunction): PciFunction => (pmc = new I440fxPmc(pam.state, bridge, (modes, before) => applyPamModes(pam.slots, modes, before))) : undefined;
      t.pciHost = new PciHost(spec.state, { resetControl: new ResetControl(spec.reset, t.host), bridgeFunction });
      t.add(spec.port, 8, t.pciHost);
      // Only threads that run guest code see the PAM area's exits.
      if (pam && pmc && t.pci) t.bus.attachMmio(PAM_AREA_START, PAM_AREA_END - PAM_AREA_START, new PamArea(pmc, t.pci.memory, new Uint8Array(pam.rom)));
    },
    // Its reset control register is the FADT's RESET_REG.
    describe: () => ({ pciHostBridge: true, reset: { port: RESET_CONTROL_PORT, value: RESET_CONTROL_VALUE } }),
    // With firmware, the PAM registers too; loading them maps the PAM area's memory as they say (it starts as after power-on).
    save: (spec) => ({ ...PciHost.save(spec.state), ...prefixed('reset', ResetControl.save(spec.reset)), ...(spec.pam ? { pam: I440fxPmc.save(spec.pam.state) } : {}) }),
    load: (spec, s) => {
      PciHost.load(spec.state, s);
      ResetControl.load(spec.reset, unprefixed('reset', s));
      if (spec.pam) applyPamModes(spec.pam.slots, I440fxPmc.load(spec.pam.state, required(s, 'pam')), PAM_SEGMENTS.map(() => PamMode.Bus));
    },
  },
  'fw-cfg': {
    // DMA reaches guest RAM: only threads that run guest code get it.
    attach: (spec, t) => {
      if (t.pci) t.add(spec.port, FW_CFG_PORT_COUNT, new FwCfg(spec.state, t.pci.memory, t.host.vm));
    },
    // The selector and offset: the items are rebuilt from the machine's configuration, as at its boot.
    save: (spec) => ({ regs: FwCfg.save(spec.state) }),
    load: (spec, s) => FwCfg.load(spec.state, required(s, 'regs')),
  },
  'virtio-pci': {
    attach: (spec, t) => {
      // Only threads that run guest code (or serve it) get virtio functions.
      const pci = t.pci;
      if (!pci) return;
      if (!t.pciHost) throw new Error('virtio-pci devices must come after the PCI host bridge');
      t.ram ??= new GuestRanges(pci.memory);
      if (!t.window) {
        t.window = new PciMmioWindow();
        t.bus.attachMmio(PCI_MMIO_BASE, PCI_MMIO_END - PCI_MMIO_BASE, t.window);
      }
      const m = spec.spec;
      const transport = new VirtioPciTransport(spec.transport, { ram: t.ram, irq: t.host.irq, msi: pci.msi, vm: t.host.vm, ioeventfd: pci.ioeventfd }, (ctx) => virtioModel(m, ctx));
      t.pciHost.register(spec.device, 0, transport);
      t.window.add(transport.config, 0, VIRTIO_BAR_SIZE, transport.bar);
      t.keep(transport);
    },
    // virtio-net adds its own state: link and active pairs, loaded onto the restore's new back end.
    save: (spec) => ({ ...VirtioPciTransport.save(spec.transport), ...(spec.spec.model === 'net' ? { net: saveVirtioNet(spec.spec.net) } : {}) }),
    load: (spec, s) => {
      VirtioPciTransport.load(spec.transport, s);
      if (spec.spec.model === 'net') loadVirtioNet(spec.spec.net, required(s, 'net'), VirtioPciTransport.acceptedFeatures(spec.transport));
    },
  },
};

/** The declaration of `spec`'s kind, typed for it. */
function kindOf<S extends DeviceSpec>(spec: S): DeviceKind<S> {
  return KINDS[spec.kind] as unknown as DeviceKind<S>;
}

/**
 * Builds this thread's views of `specs` and attaches them to `bus`; returns
 * the device objects. Time-driven devices wake the device-timer thread
 * (`timerWake`) whenever they are reprogrammed to an earlier deadline.
 */
export function attachDevices(bus: Bus, specs: readonly DeviceSpec[], host: DeviceHost, timerWake?: TimerWake, pci?: PciThreadContext): object[] {
  const devices: object[] = [];
  const t: AttachContext = {
    bus,
    host,
    pci,
    onDeadlineChange: () => timerWake?.notify(),
    add(port, length, device) {
      devices.push(device);
      bus.attachPio(port, length, device);
    },
    keep: (device) => devices.push(device),
  };
  for (const spec of specs) kindOf(spec).attach(spec, t);
  return devices;
}

/** What the firmware tables say of `specs`: only the devices declared there (no 8042, RTC, PCI host, pvpanic or reset register unless listed). */
export function describeDevices(specs: readonly DeviceSpec[]): PlatformDescription {
  const none: PlatformDescription = { i8042: false, cmosRtc: false, pciHostBridge: false, pvpanicPort: null, reset: null };
  return specs.reduce<PlatformDescription>((d, spec) => ({ ...d, ...kindOf(spec).describe?.(spec) }), none);
}

/**
 * Each device's state by name, in `specs` order, for a snapshot (the VM
 * paused and its virtio queues quiesced). Devices without state (debug
 * exit, POST code, pvpanic) have an empty record.
 */
export function saveDeviceStates(specs: readonly DeviceSpec[]): SavedDevice[] {
  return specs.map((spec) => ({ kind: spec.kind, state: kindOf(spec).save?.(spec) ?? {} }));
}

/** Loads saved states into freshly allocated specs of the same machine, before any thread builds views over them. */
export function loadDeviceStates(specs: readonly DeviceSpec[], saved: readonly SavedDevice[]): void {
  if (saved.length !== specs.length || specs.some((s, i) => s.kind !== saved[i]!.kind)) {
    throw new StateLayoutError(`the snapshot's devices (${saved.map((d) => d.kind).join(', ')}) are not this VM's (${specs.map((s) => s.kind).join(', ')})`);
  }
  specs.forEach((spec, i) => kindOf(spec).load?.(spec, saved[i]!.state));
}

function prefixed(prefix: string, states: Record<string, SavedState>): Record<string, SavedState> {
  return Object.fromEntries(Object.entries(states).map(([k, v]) => [`${prefix}.${k}`, v]));
}

function unprefixed(prefix: string, states: Record<string, SavedState>): Record<string, SavedState> {
  return Object.fromEntries(Object.entries(states).filter(([k]) => k.startsWith(`${prefix}.`)).map(([k, v]) => [k.slice(prefix.length + 1), v]));
}
