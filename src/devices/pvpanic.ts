import type { AccessSize, BusDevice, VmControl } from './device.js';

/** QEMU's ISA pvpanic port (docs/specs/pvpanic.rst), declared in the DSDT as QEMU0001. */
export const PVPANIC_PORT = 0x505;
export const PVPANIC_HID = 'QEMU0001';

/** Event bits (read: the events the device supports; write: the event that happened). */
export const PvpanicEvent = {
  /** The guest kernel panicked. */
  panicked: 1 << 0,
  /** A crash kernel is loaded and will take over (kdump): the guest goes on. */
  crashLoaded: 1 << 1,
  /** The guest shut down in an orderly way (Linux 6.10+ with the shutdown event enabled). */
  shutdown: 1 << 2,
} as const;

const SUPPORTED = PvpanicEvent.panicked | PvpanicEvent.crashLoaded | PvpanicEvent.shutdown;

/**
 * The pvpanic device: a guest whose kernel panics writes PANICKED here
 * (Linux's pvpanic driver does it from its panic notifier), and the VM stops
 * at once with a "panic" stop reason instead of sitting in the kernel's
 * panic loop until someone notices.
 */
export class Pvpanic implements BusDevice {
  readonly name = 'pvpanic';
  private crashLoadedLogged = false;

  constructor(private readonly vm: VmControl) {}

  read(_offset: number, _size: AccessSize): number {
    return SUPPORTED;
  }

  write(_offset: number, _size: AccessSize, value: number): void {
    if (value & PvpanicEvent.panicked) {
      this.vm.requestStop({ kind: 'panic' });
    } else if (value & PvpanicEvent.crashLoaded && !this.crashLoadedLogged) {
      this.crashLoadedLogged = true;
      this.vm.log('warn', 'the guest kernel crashed and is starting its crash kernel (pvpanic CRASH_LOADED)');
    }
  }
}
