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
import { ResetControl, type ResetControlState } from '../devices/reset-control.js';
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
import { I440fxPmc, PamArea, PAM_AREA_START, PAM_AREA_END } from '../devices/i440fx-pam.js';
import { applyPamModes } from './pam-slots.js';
import type { PamSpec } from './firmware-memory.js';
import { StateLayoutError, type SavedState } from '../sync/state-layout.js';
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

/**
 * Builds this thread's views of `specs` and attaches them to `bus`; returns
 * the device objects. Time-driven devices wake the device-timer thread
 * (`timerWake`) whenever they are reprogrammed to an earlier deadline.
 */
export function attachDevices(bus: Bus, specs: readonly DeviceSpec[], host: DeviceHost, timerWake?: TimerWake, pci?: PciThreadContext): object[] {
  const devices: object[] = [];
  let pciHost: PciHost | undefined;
  let window: PciMmioWindow | undefined;
  let ram: GuestRanges | undefined;
  const add = (port: number, length: number, device: BusDevice): void => {
    devices.push(device);
    bus.attachPio(port, length, device);
  };
  const onDeadlineChange = (): void => timerWake?.notify();
  for (const spec of specs) {
    switch (spec.kind) {
      case 'debug-exit':
        add(spec.port, 1, new DebugExit(host.vm));
        break;
      case 'pvpanic':
        add(spec.port, 1, new Pvpanic(host.vm));
        break;
      case 'post-code':
        add(spec.port, 1, new PostCode());
        break;
      case 'uart16550':
        add(spec.port, UART_PORT_COUNT, new Uart16550(spec.state, host, { irq: spec.irq }));
        break;
      case 'acpi-pm':
        add(spec.port, ACPI_PM_LENGTH, new AcpiPm(spec.state, host, { sciIrq: spec.sciIrq, s5SlpTyp: spec.s5SlpTyp }));
        break;
      case 'pit': {
        const pit = new I8254Pit(spec.state, host, { irq: spec.irq, onDeadlineChange });
        add(spec.port, PIT_PORT_COUNT, pit);
        bus.attachPio(PORT61, PORT61_PORT_COUNT, pit.port61);
        break;
      }
      case 'rtc':
        add(spec.port, RTC_PORT_COUNT, new CmosRtc(spec.state, host, { irq: spec.irq, onDeadlineChange }));
        break;
      case 'i8042': {
        // Port 0x61 sits between the data (0x60) and command (0x64) ports.
        const kbc = new I8042(spec.state, host, { kbdIrq: spec.kbdIrq, auxIrq: spec.auxIrq });
        devices.push(kbc);
        bus.attachPio(spec.dataPort, 1, kbc.dataPort);
        bus.attachPio(spec.commandPort, 1, kbc.commandPort);
        break;
      }
      case 'pci-host': {
        // 0xCF9 (reset control) lies inside the CONFIG_ADDRESS dword; the host bridge forwards it.
        const pam = spec.pam;
        let pmc: I440fxPmc | undefined;
        const bridgeFunction = pam ? (bridge: PciFunction): PciFunction => (pmc = new I440fxPmc(pam.state, bridge, (modes, before) => applyPamModes(pam.slots, modes, before))) : undefined;
        pciHost = new PciHost(spec.state, { resetControl: new ResetControl(spec.reset, host), bridgeFunction });
        add(spec.port, 8, pciHost);
        // Only threads that run guest code see the PAM area's exits.
        if (pam && pmc && pci) bus.attachMmio(PAM_AREA_START, PAM_AREA_END - PAM_AREA_START, new PamArea(pmc, pci.memory, new Uint8Array(pam.rom)));
        break;
      }
      case 'fw-cfg':
        // DMA reaches guest RAM: only threads that run guest code get it.
        if (pci) add(spec.port, FW_CFG_PORT_COUNT, new FwCfg(spec.state, pci.memory, host.vm));
        break;
      case 'debug-console':
        add(spec.port, 1, new DebugConsole(host.vm));
        break;
      case 'virtio-pci': {
        // Only threads that run guest code (or serve it) get virtio functions.
        if (!pci) break;
        if (!pciHost) throw new Error('virtio-pci devices must come after the PCI host bridge');
        ram ??= new GuestRanges(pci.memory);
        if (!window) {
          window = new PciMmioWindow();
          bus.attachMmio(PCI_MMIO_BASE, PCI_MMIO_END - PCI_MMIO_BASE, window);
        }
        const m = spec.spec;
        const transport = new VirtioPciTransport(spec.transport, { ram, irq: host.irq, msi: pci.msi, vm: host.vm, ioeventfd: pci.ioeventfd }, (ctx) => virtioModel(m, ctx));
        pciHost.register(spec.device, 0, transport);
        window.add(transport.config, 0, VIRTIO_BAR_SIZE, transport.bar);
        devices.push(transport);
        break;
      }
    }
  }
  return devices;
}

/**
 * Each device's state by name, in `specs` order, for a snapshot (the VM
 * paused and its virtio queues quiesced). Devices without state (debug
 * exit, POST code, pvpanic) have an empty record.
 */
export function saveDeviceStates(specs: readonly DeviceSpec[]): SavedDevice[] {
  return specs.map((spec) => ({ kind: spec.kind, state: saveDeviceState(spec) }));
}

function saveDeviceState(spec: DeviceSpec): Record<string, SavedState> {
  switch (spec.kind) {
    case 'uart16550':
      return Uart16550.save(spec.state);
    case 'acpi-pm':
      return AcpiPm.save(spec.state);
    case 'pit':
      return I8254Pit.save(spec.state);
    case 'rtc':
      return CmosRtc.save(spec.state);
    case 'i8042':
      return I8042.save(spec.state);
    case 'pci-host':
      return { ...PciHost.save(spec.state), ...prefixed('reset', ResetControl.save(spec.reset)) };
    case 'virtio-pci':
      return VirtioPciTransport.save(spec.transport);
    default:
      return {};
  }
}

/** Loads saved states into freshly allocated specs of the same machine, before any thread builds views over them. */
export function loadDeviceStates(specs: readonly DeviceSpec[], saved: readonly SavedDevice[]): void {
  if (saved.length !== specs.length || specs.some((s, i) => s.kind !== saved[i]!.kind)) {
    throw new StateLayoutError(`the snapshot's devices (${saved.map((d) => d.kind).join(', ')}) are not this VM's (${specs.map((s) => s.kind).join(', ')})`);
  }
  specs.forEach((spec, i) => {
    const s = saved[i]!.state;
    switch (spec.kind) {
      case 'uart16550':
        return Uart16550.load(spec.state, s);
      case 'acpi-pm':
        return AcpiPm.load(spec.state, s);
      case 'pit':
        return I8254Pit.load(spec.state, s);
      case 'rtc':
        return CmosRtc.load(spec.state, s);
      case 'i8042':
        return I8042.load(spec.state, s);
      case 'pci-host':
        PciHost.load(spec.state, s);
        return ResetControl.load(spec.reset, unprefixed('reset', s));
      case 'virtio-pci':
        return VirtioPciTransport.load(spec.transport, s);
      default:
        return undefined;
    }
  });
}

function prefixed(prefix: string, states: Record<string, SavedState>): Record<string, SavedState> {
  return Object.fromEntries(Object.entries(states).map(([k, v]) => [`${prefix}.${k}`, v]));
}

function unprefixed(prefix: string, states: Record<string, SavedState>): Record<string, SavedState> {
  return Object.fromEntries(Object.entries(states).filter(([k]) => k.startsWith(`${prefix}.`)).map(([k, v]) => [k.slice(prefix.length + 1), v]));
}
