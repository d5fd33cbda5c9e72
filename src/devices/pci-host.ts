import type { AccessSize, BusDevice } from './device.js';
import { Mutex } from '../sync/mutex.js';
import { defineLayout, i32, loadState, mutex, required, saveState, type SavedState } from '../sync/state-layout.js';
import { PciConfigSpace, pciOnes, type PciConfigSpaceState, type PciFunction } from './pci-config.js';

/**
 * A PCI host bridge with configuration mechanism 1 (PCI Local Bus
 * Specification 3.0, 3.2.2.3.2): CONFIG_ADDRESS at port 0xCF8, CONFIG_DATA
 * at 0xCFC-0xCFF, and one bus (0) whose device 00:00.0 is the bridge itself.
 */

export const PCI_HOST_PORT = 0xcf8;
/** 0xCF8-0xCFF: CONFIG_ADDRESS, then CONFIG_DATA. */
export const PCI_HOST_PORT_COUNT = 8;
export const PciHostReg = { ConfigAddress: 0, ConfigData: 4 } as const;
/** The byte port inside the CONFIG_ADDRESS dword that PIIX-style chipsets use for reset control (0xCF9). */
export const PCI_RESET_CONTROL_OFFSET = 1;

/** CONFIG_ADDRESS fields. */
export const PciConfigAddress = {
  Enable: 0x80000000,
  BusShift: 16,
  DeviceShift: 11,
  FunctionShift: 8,
  /** Bits 7:2 select a dword; bits 1:0 are hardwired to 0. */
  RegisterMask: 0xfc,
  /** What sticks: enable, bus, device, function, register. Reserved bits 30:24 read 0. */
  Writable: 0x80fffffc,
} as const;

/**
 * The bridge's identity: Intel 82441FX (i440FX) PMC, revision 2, class
 * 0x060000 (host bridge), as QEMU's `pc` machine has. Linux's type 1
 * sanity check (arch/x86/pci/direct.c) wants a host-bridge class or an
 * Intel vendor ID somewhere on bus 0; this answers both.
 */
export const PCI_HOST_BRIDGE_ID = { vendorId: 0x8086, deviceId: 0x1237, revision: 0x02, classCode: 0x060000 } as const;

export const PCI_DEVICES_PER_BUS = 32;
export const PCI_FUNCTIONS_PER_DEVICE = 8;

/** A CONFIG_ADDRESS value for bus 0 (or another), device, function and register. */
export function pciConfigAddress(bus: number, device: number, fn: number, register: number): number {
  return (
    (PciConfigAddress.Enable |
      ((bus & 0xff) << PciConfigAddress.BusShift) |
      ((device & 0x1f) << PciConfigAddress.DeviceShift) |
      ((fn & 7) << PciConfigAddress.FunctionShift) |
      (register & PciConfigAddress.RegisterMask)) >>>
    0
  );
}

/** The shared state: the CONFIG_ADDRESS latch and the bridge's own config space; structured-cloneable. */
export interface PciHostState {
  readonly regs: SharedArrayBuffer;
  readonly bridge: PciConfigSpaceState;
}

export interface PciHostOptions {
  /**
   * The device answering byte accesses to port 0xCF9 (see `ResetControl`),
   * which sits inside the CONFIG_ADDRESS dword: the bus cannot attach it
   * separately, so the host bridge passes those accesses on at offset 0.
   */
  resetControl?: BusDevice;
  /** Wraps the bridge's configuration space with registers of a chipset model (e.g. the i440FX's PAM). */
  bridgeFunction?: (bridge: PciConfigSpace) => PciFunction;
}

// Int32 words; CONFIG_ADDRESS is only touched with LOCK held.
export const PCI_HOST_LAYOUT = defineLayout('pci-host', 1, { lock: mutex(), address: i32() });
const { lock: LOCK, address: ADDRESS } = PCI_HOST_LAYOUT.at;
const WORDS = PCI_HOST_LAYOUT.byteLength / 4;

/**
 * Ports 0xCF8-0xCFF. CONFIG_ADDRESS is one register shared by every vCPU
 * (as on hardware: Linux serialises config cycles with pci_config_lock), so
 * it lives in shared memory under a mutex. Only 32-bit accesses at 0xCF8
 * reach it; narrower ones there go to the ISA bus on a real chipset (Linux's
 * mechanism probe writes a byte to 0xCFB and expects it ignored), so they
 * read all ones and are dropped, except byte accesses at 0xCF9, passed on
 * to `options.resetControl`.
 *
 * CONFIG_DATA accesses of 1, 2 or 4 bytes reach the dword CONFIG_ADDRESS
 * selects at the byte lane of the port (0xCFC-0xCFF), as long as the enable
 * bit is set and the bus is 0; anything else, and any device or function
 * nobody registered, reads all ones and ignores writes (a master abort).
 *
 * The registry of functions is per thread: each thread registers its own
 * views of the same functions (whose configuration spaces share state), so
 * every thread must register the same set; a function with more than
 * function 0 must set the multifunction bit of its function 0.
 */
export class PciHost implements BusDevice {
  readonly name = 'pci-host';
  /** The bridge's own configuration space (00:00.0). */
  readonly bridge: PciConfigSpace;
  private readonly words: Int32Array;
  private readonly lock: Mutex;
  private readonly functions: Array<PciFunction | undefined> = new Array<PciFunction | undefined>(PCI_DEVICES_PER_BUS * PCI_FUNCTIONS_PER_DEVICE);

  static allocate(): PciHostState {
    return {
      regs: PCI_HOST_LAYOUT.allocate(),
      bridge: PciConfigSpace.allocate({
        ...PCI_HOST_BRIDGE_ID,
        // Memory decoding and bus mastering on, as firmware leaves a host bridge.
        command: 0x0006,
      }),
    };
  }

  static save(state: PciHostState): Record<string, SavedState> {
    return { regs: saveState(PCI_HOST_LAYOUT, state.regs), bridge: PciConfigSpace.save(state.bridge) };
  }

  static load(state: PciHostState, saved: Record<string, SavedState>): void {
    loadState(PCI_HOST_LAYOUT, state.regs, required(saved, 'regs'));
    PciConfigSpace.load(state.bridge, required(saved, 'bridge'));
  }

  constructor(
    state: PciHostState,
    private readonly options: PciHostOptions = {},
  ) {
    this.words = new Int32Array(state.regs, 0, WORDS);
    this.lock = new Mutex(this.words, LOCK);
    this.bridge = new PciConfigSpace(state.bridge, 'pci-host-bridge');
    this.register(0, 0, options.bridgeFunction?.(this.bridge) ?? this.bridge);
  }

  /** Plugs `fn` in at 00:`device`.`functionNumber`. Throws if the slot is out of range or taken. */
  register(device: number, functionNumber: number, fn: PciFunction): void {
    if (!Number.isInteger(device) || device < 0 || device >= PCI_DEVICES_PER_BUS) throw new RangeError(`PCI device number ${device} is not 0-31`);
    if (!Number.isInteger(functionNumber) || functionNumber < 0 || functionNumber >= PCI_FUNCTIONS_PER_DEVICE) {
      throw new RangeError(`PCI function number ${functionNumber} is not 0-7`);
    }
    const slot = device * PCI_FUNCTIONS_PER_DEVICE + functionNumber;
    const taken = this.functions[slot];
    if (taken) throw new RangeError(`PCI 00:${hex2(device)}.${functionNumber} is already ${taken.name}`);
    this.functions[slot] = fn;
  }

  /** The function at 00:device.function, if any. */
  lookup(device: number, functionNumber: number): PciFunction | undefined {
    return this.functions[device * PCI_FUNCTIONS_PER_DEVICE + functionNumber];
  }

  read(offset: number, size: AccessSize, vcpu: number): number {
    if (offset >= PciHostReg.ConfigData) {
      const target = this.target(offset);
      return target ? target.fn.configRead(target.register, size) : pciOnes(size);
    }
    if (offset === PciHostReg.ConfigAddress && size === 4) return this.lock.with(() => this.words[ADDRESS]! >>> 0);
    if (offset === PCI_RESET_CONTROL_OFFSET && size === 1 && this.options.resetControl) return this.options.resetControl.read(0, 1, vcpu);
    return pciOnes(size);
  }

  write(offset: number, size: AccessSize, value: number, vcpu: number): void {
    if (offset >= PciHostReg.ConfigData) {
      const target = this.target(offset);
      if (target) target.fn.configWrite(target.register, size, value);
      return;
    }
    if (offset === PciHostReg.ConfigAddress && size === 4) {
      this.lock.with(() => {
        this.words[ADDRESS] = value & PciConfigAddress.Writable;
      });
    } else if (offset === PCI_RESET_CONTROL_OFFSET && size === 1 && this.options.resetControl) {
      this.options.resetControl.write(0, 1, value, vcpu);
    }
  }

  /**
   * What a CONFIG_DATA access at `offset` (4-7) reaches. The function's own
   * lock orders the access itself; CONFIG_ADDRESS is sampled first, as the
   * bridge would at the start of the cycle.
   */
  private target(offset: number): { fn: PciFunction; register: number } | undefined {
    const address = this.lock.with(() => this.words[ADDRESS]!) >>> 0;
    if (!(address & PciConfigAddress.Enable)) return undefined;
    if ((address >>> PciConfigAddress.BusShift) & 0xff) return undefined; // no bridges: only bus 0 exists
    const device = (address >>> PciConfigAddress.DeviceShift) & 0x1f;
    const fn = this.lookup(device, (address >>> PciConfigAddress.FunctionShift) & 7);
    if (!fn) return undefined;
    return { fn, register: (address & PciConfigAddress.RegisterMask) + (offset - PciHostReg.ConfigData) };
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
