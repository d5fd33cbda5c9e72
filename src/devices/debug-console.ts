import type { AccessSize, BusDevice, VmControl } from './device.js';

/**
 * QEMU's ISA debug console ("debugcon", port 0x402 on the PC): bytes
 * written are debug text; a read returns 0xE9, which is how firmware
 * (SeaBIOS's qemu_debug_preinit) tells the port is there before it writes
 * to it. Text goes to `vm.debugOutput` a line at a time (per thread: each
 * vCPU has its own partial line), so a chatty firmware costs one message
 * per line, not per byte.
 */
export const DEBUG_CONSOLE_PORT = 0x402;
export const DEBUG_CONSOLE_READBACK = 0xe9;
/** A line longer than this is passed on in pieces. */
const MAX_LINE = 512;

export class DebugConsole implements BusDevice {
  readonly name = 'debug-console';
  private line: number[] = [];

  constructor(private readonly vm: Pick<VmControl, 'debugOutput'>) {}

  read(_offset: number, size: AccessSize): number {
    return size === 1 ? DEBUG_CONSOLE_READBACK : size === 2 ? 0xffe9 : 0xffffffe9;
  }

  write(_offset: number, size: AccessSize, value: number): void {
    for (let i = 0; i < size; i++) {
      const byte = (value >>> (8 * i)) & 0xff;
      this.line.push(byte);
      if (byte === 0x0a || this.line.length >= MAX_LINE) this.flush();
    }
  }

  /** Passes on a partial line. */
  flush(): void {
    if (!this.line.length) return;
    const bytes = Uint8Array.from(this.line);
    this.line = [];
    this.vm.debugOutput?.(bytes);
  }
}
