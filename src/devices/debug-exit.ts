import type { AccessSize, BusDevice, VmControl } from './device.js';

export const DEBUG_EXIT_PORT = 0xf4;

/**
 * QEMU's isa-debug-exit: a write of `value` ends the VM, and the hypervisor
 * process exits with status `(value << 1) | 1`, so a test guest can report
 * pass/fail through the exit status and never collide with status 0.
 */
export class DebugExit implements BusDevice {
  readonly name = 'debug-exit';

  constructor(private readonly vm: VmControl) {}

  read(_offset: number, size: AccessSize): number {
    return size === 4 ? 0xffffffff : (1 << (size * 8)) - 1;
  }

  write(_offset: number, _size: AccessSize, value: number): void {
    this.vm.requestStop({ kind: 'debug-exit', code: value >>> 0 });
  }
}

/** The process exit status QEMU's isa-debug-exit gives for `value`. */
export const debugExitStatus = (value: number): number => ((value << 1) | 1) & 0xff;
