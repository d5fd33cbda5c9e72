// Every device and chip model whose state lives in shared memory, described
// the same way for the conformance suite: how to allocate its state, how a
// thread builds its view (the ports it answers), how its state is saved and
// loaded, a guest program that changes it, and side-effect-tolerant probes
// that read it back. Used from the test and from its worker thread, so
// everything here is plain data or rebuilt from the (structured-cloned)
// state.
import type { AccessSize, BusDevice, DeviceHost } from '../../src/devices/device.js';
import { noIrqLines } from '../../src/devices/device.js';
import { AcpiPm, type AcpiPmState, PM1A_CNT, PM1A_EN, PM1A_STS, PM_TMR } from '../../src/devices/acpi-pm.js';
import { CmosRtc, type CmosRtcState, RtcPort } from '../../src/devices/cmos-rtc.js';
import { I8042, I8042_AUX_IRQ, I8042_KBD_IRQ, I8042_PORT_OFFSET, type I8042State } from '../../src/devices/i8042.js';
import { I8254Pit, type I8254PitState } from '../../src/devices/i8254-pit.js';
import { PciConfigSpace, type PciConfigSpaceState } from '../../src/devices/pci-config.js';
import { PciHost, PciHostReg, type PciHostState } from '../../src/devices/pci-host.js';
import { ResetControl, type ResetControlState } from '../../src/devices/reset-control.js';
import { Uart16550, UartReg, type Uart16550State } from '../../src/devices/uart16550.js';
import { Ioapic } from '../../src/irqchip/ioapic.js';
import { DualPic } from '../../src/irqchip/pic.js';
import { FakeClock } from '../../src/sync/clock.js';

/** One guest access: a write when `value` is given, else a read whose result is recorded. */
export interface Access {
  port: string;
  offset: number;
  size: AccessSize;
  value?: number;
  /** Selects a register rather than being part of the check: never split into bytes. */
  whole?: true;
}

export interface DeviceCase<S = unknown> {
  name: string;
  allocate(): S;
  /** The ports one thread's view answers, by name. */
  view(state: S, host: DeviceHost): Record<string, BusDevice>;
  save(state: S): unknown;
  load(state: S, saved: unknown): void;
  /** Guest accesses that move the state away from reset. */
  program: Access[];
  /** Accesses whose read results describe the state (writes select registers). */
  probe: Access[];
  /** Registers where one wide read, or write, equals its byte accesses in order. */
  wide: Access[];
}

/** The clock every view reads: fixed, so both threads see the same time. */
export const CONFORMANCE_NS = 5_000_000_123;
const BASE_TIME = new Date(Date.UTC(2026, 11, 5, 13, 45, 30));

export function conformanceHost(): DeviceHost {
  return { irq: noIrqLines, vm: { requestStop() {}, log() {} }, clock: new FakeClock(CONFORMANCE_NS) };
}

const w = (port: string, offset: number, value: number, size: AccessSize = 1): Access => ({ port, offset, size, value });
const r = (port: string, offset: number, size: AccessSize = 1): Access => ({ port, offset, size });

const uart: DeviceCase<Uart16550State> = {
  name: 'uart16550',
  allocate: () => Uart16550.allocate(),
  view: (s, host) => ({ uart: new Uart16550(s, host, { irq: 4 }) }),
  save: (s) => Uart16550.save(s),
  load: (s, saved) => Uart16550.load(s, saved as ReturnType<typeof Uart16550.save>),
  program: [
    w('uart', UartReg.Lcr, 0x80),
    w('uart', UartReg.Data, 0x0c),
    w('uart', UartReg.Ier, 0x00),
    w('uart', UartReg.Lcr, 0x1b),
    w('uart', UartReg.Ier, 0x05),
    w('uart', UartReg.Mcr, 0x0b),
    w('uart', UartReg.Scr, 0x5a),
    w('uart', UartReg.Data, 0x68),
    w('uart', UartReg.Data, 0x69),
  ],
  probe: [
    r('uart', UartReg.Ier), r('uart', UartReg.Lcr), r('uart', UartReg.Mcr), r('uart', UartReg.Lsr), r('uart', UartReg.Scr),
    w('uart', UartReg.Lcr, 0x9b), r('uart', UartReg.Data), r('uart', UartReg.Ier), w('uart', UartReg.Lcr, 0x1b),
  ],
  wide: [r('uart', UartReg.Lcr, 2), r('uart', UartReg.Mcr, 4), w('uart', UartReg.Lcr, 0x0313, 2)],
};

const rtc: DeviceCase<CmosRtcState> = {
  name: 'cmos-rtc',
  allocate: () => CmosRtc.allocate({ baseTime: BASE_TIME, ramBelow4G: 256 << 20, cpus: 4 }),
  view: (s, host) => ({ rtc: new CmosRtc(s, host, { irq: 8 }) }),
  save: (s) => CmosRtc.save(s),
  load: (s, saved) => CmosRtc.load(s, saved as ReturnType<typeof CmosRtc.save>),
  program: [
    w('rtc', RtcPort.Index, 0x0b), w('rtc', RtcPort.Data, 0x06),
    w('rtc', RtcPort.Index, 0x0a), w('rtc', RtcPort.Data, 0x2f),
    w('rtc', RtcPort.Index, 0x40), w('rtc', RtcPort.Data, 0x77),
    w('rtc', RtcPort.Index, 0x41), w('rtc', RtcPort.Data, 0x88),
  ],
  probe: [0x00, 0x02, 0x04, 0x07, 0x09, 0x0a, 0x0b, 0x34, 0x35, 0x40, 0x41].flatMap((reg) => [w('rtc', RtcPort.Index, reg), r('rtc', RtcPort.Data)]),
  wide: [w('rtc', RtcPort.Index, 0x40), r('rtc', RtcPort.Index, 2), w('rtc', RtcPort.Index, 0x7741, 2)],
};

const pit: DeviceCase<I8254PitState> = {
  name: 'i8254-pit',
  allocate: () => I8254Pit.allocate(),
  view: (s, host) => {
    const p = new I8254Pit(s, host, { irq: 0 });
    return { pit: p, port61: p.port61 };
  },
  save: (s) => I8254Pit.save(s),
  load: (s, saved) => I8254Pit.load(s, saved as ReturnType<typeof I8254Pit.save>),
  program: [
    w('pit', 3, 0x34), w('pit', 0, 0x9c), w('pit', 0, 0x2e),
    w('pit', 3, 0xb6), w('pit', 2, 0x00), w('pit', 2, 0x10),
    w('port61', 0, 0x03),
  ],
  probe: [
    w('pit', 3, 0xe2), r('pit', 0), r('pit', 0), r('pit', 0),
    w('pit', 3, 0xe8), r('pit', 2), r('pit', 2), r('pit', 2),
    r('port61', 0),
  ],
  wide: [],
};

const acpiPm: DeviceCase<AcpiPmState> = {
  name: 'acpi-pm',
  allocate: () => AcpiPm.allocate(),
  view: (s, host) => ({ pm: new AcpiPm(s, host, { sciIrq: 9, s5SlpTyp: 5 }) }),
  save: (s) => AcpiPm.save(s),
  load: (s, saved) => AcpiPm.load(s, saved as ReturnType<typeof AcpiPm.save>),
  program: [w('pm', PM1A_EN, 0x0121, 2), w('pm', PM1A_CNT, 0x0001, 2)],
  probe: [r('pm', PM1A_STS, 2), r('pm', PM1A_EN, 2), r('pm', PM1A_CNT, 2), r('pm', PM_TMR, 4)],
  wide: [r('pm', PM1A_STS, 4), r('pm', PM_TMR, 4), w('pm', PM1A_EN, 0x0120, 2), w('pm', PM1A_EN, 0x00000021, 4)],
};

const i8042: DeviceCase<I8042State> = {
  name: 'i8042',
  allocate: () => I8042.allocate(),
  view: (s, host) => {
    const k = new I8042(s, host, { kbdIrq: I8042_KBD_IRQ, auxIrq: I8042_AUX_IRQ });
    return { data: k.dataPort, cmd: k.commandPort, kbc: k };
  },
  save: (s) => I8042.save(s),
  load: (s, saved) => I8042.load(s, saved as ReturnType<typeof I8042.save>),
  program: [w('cmd', 0, 0x60), w('data', 0, 0x47), w('cmd', 0, 0xa8), w('cmd', 0, 0xd2), w('data', 0, 0x5c)],
  probe: [r('cmd', 0), r('data', 0), w('cmd', 0, 0x20), r('cmd', 0), r('data', 0)],
  wide: [r('kbc', I8042_PORT_OFFSET.Data, 2)],
};

interface PciState {
  host: PciHostState;
  fn: PciConfigSpaceState;
}

const pciHost: DeviceCase<PciState> = {
  name: 'pci-host',
  allocate: () => ({
    host: PciHost.allocate(),
    fn: PciConfigSpace.allocate({ vendorId: 0x1af4, deviceId: 0x1042, classCode: 0x010000, interruptPin: 1, bars: [{ kind: 'memory', size: 0x4000, is64: true }] }),
  }),
  view: (s) => {
    const host = new PciHost(s.host);
    host.register(1, 0, new PciConfigSpace(s.fn, 'conformance-fn'));
    return { pci: host };
  },
  save: (s) => ({ host: PciHost.save(s.host), fn: PciConfigSpace.save(s.fn) }),
  load: (s, saved) => {
    const x = saved as { host: ReturnType<typeof PciHost.save>; fn: ReturnType<typeof PciConfigSpace.save> };
    PciHost.load(s.host, x.host);
    PciConfigSpace.load(s.fn, x.fn);
  },
  program: [
    w('pci', PciHostReg.ConfigAddress, 0x80000804, 4), w('pci', PciHostReg.ConfigData, 0x0006, 2),
    w('pci', PciHostReg.ConfigAddress, 0x80000810, 4), w('pci', PciHostReg.ConfigData, 0xfebf0000, 4),
    w('pci', PciHostReg.ConfigAddress, 0x8000083c, 4), w('pci', PciHostReg.ConfigData, 0x0b, 1),
  ],
  probe: [
    r('pci', PciHostReg.ConfigAddress, 4),
    ...[0x00, 0x04, 0x08, 0x10, 0x14, 0x3c].flatMap((reg) => [w('pci', PciHostReg.ConfigAddress, 0x80000800 | reg, 4), r('pci', PciHostReg.ConfigData, 4)]),
  ],
  wide: [
    { ...w('pci', PciHostReg.ConfigAddress, 0x80000800, 4), whole: true }, r('pci', PciHostReg.ConfigData, 4), r('pci', PciHostReg.ConfigData + 2, 2),
    { ...w('pci', PciHostReg.ConfigAddress, 0x80000810, 4), whole: true }, w('pci', PciHostReg.ConfigData, 0xfebe0000, 4),
  ],
};

const resetControl: DeviceCase<ResetControlState> = {
  name: 'reset-control',
  allocate: () => ResetControl.allocate(),
  view: (s, host) => ({ rc: new ResetControl(s, host) }),
  save: (s) => ResetControl.save(s),
  load: (s, saved) => ResetControl.load(s, saved as ReturnType<typeof ResetControl.save>),
  program: [w('rc', 0, 0x02)],
  probe: [r('rc', 0)],
  wide: [],
};

const ioapic: DeviceCase<SharedArrayBuffer> = {
  name: 'ioapic',
  allocate: () => Ioapic.allocate(),
  view: (s) => ({ ioapic: new Ioapic(s, { deliver() {} }) }),
  save: (s) => Ioapic.save(s),
  load: (s, saved) => Ioapic.load(s, saved as ReturnType<typeof Ioapic.save>),
  program: [
    w('ioapic', 0x00, 0x00, 4), w('ioapic', 0x10, 0x02000000, 4),
    w('ioapic', 0x00, 0x12, 4), w('ioapic', 0x10, 0x0001a031, 4),
    w('ioapic', 0x00, 0x13, 4), w('ioapic', 0x10, 0x03000000, 4),
  ],
  probe: [0x00, 0x01, 0x10, 0x12, 0x13].flatMap((reg) => [w('ioapic', 0x00, reg, 4), r('ioapic', 0x10, 4)]),
  wide: [],
};

const pic: DeviceCase<SharedArrayBuffer> = {
  name: 'dual-8259',
  allocate: () => DualPic.allocate(),
  view: (s) => {
    const p = new DualPic(s, { onOutput() {} });
    return { master: p.master, slave: p.slave, elcr: p.elcr };
  },
  save: (s) => DualPic.save(s),
  load: (s, saved) => DualPic.load(s, saved as ReturnType<typeof DualPic.save>),
  program: [
    w('master', 0, 0x11), w('master', 1, 0x20), w('master', 1, 0x04), w('master', 1, 0x01),
    w('slave', 0, 0x11), w('slave', 1, 0x28), w('slave', 1, 0x02), w('slave', 1, 0x01),
    w('master', 1, 0xb8), w('slave', 1, 0x8e), w('elcr', 1, 0x0c),
  ],
  probe: [r('master', 1), r('slave', 1), w('master', 0, 0x0b), r('master', 0), w('master', 0, 0x0a), r('master', 0), r('elcr', 0), r('elcr', 1)],
  wide: [],
};

export const DEVICE_CASES: readonly DeviceCase[] = [uart, rtc, pit, acpiPm, i8042, pciHost, resetControl, ioapic, pic] as DeviceCase[];

export function deviceCase(name: string): DeviceCase {
  const found = DEVICE_CASES.find((c) => c.name === name);
  if (!found) throw new Error(`no conformance case ${name}`);
  return found;
}

/** Runs accesses through a view; returns every read's result, in order. */
export function runAccesses(ports: Record<string, BusDevice>, accesses: readonly Access[], vcpu = 0): number[] {
  const reads: number[] = [];
  for (const a of accesses) {
    const dev = ports[a.port];
    if (!dev) throw new Error(`no port ${a.port}`);
    if (a.value === undefined) reads.push(dev.read(a.offset, a.size, vcpu));
    else dev.write(a.offset, a.size, a.value, vcpu);
  }
  return reads;
}

/** The same accesses, each split into byte accesses from its lowest byte up. */
export function asBytes(accesses: readonly Access[]): Access[] {
  return accesses.flatMap((a) =>
    a.whole ? [a] : Array.from({ length: a.size }, (_, i): Access => ({ port: a.port, offset: a.offset + i, size: 1, ...(a.value === undefined ? {} : { value: (a.value >>> (8 * i)) & 0xff }) })),
  );
}

/** Byte reads put back together into the wide values they split. */
export function joinBytes(accesses: readonly Access[], byteReads: readonly number[]): number[] {
  const out: number[] = [];
  let at = 0;
  for (const a of accesses) {
    if (a.value !== undefined) continue;
    if (a.whole) {
      out.push(byteReads[at++]!);
      continue;
    }
    let v = 0;
    for (let i = 0; i < a.size; i++) v |= byteReads[at++]! << (8 * i);
    out.push(v >>> 0);
  }
  return out;
}
