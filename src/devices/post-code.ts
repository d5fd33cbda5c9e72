import type { AccessSize, BusDevice } from './device.js';

/**
 * Port 0x80, the POST diagnostic port. Firmware and kernels write progress
 * codes (and Linux uses it as an I/O delay); the last value is kept for
 * diagnostics and reads return it, like a POST card.
 */
export class PostCode implements BusDevice {
  readonly name = 'post-code';
  private last = 0;

  read(_offset: number, size: AccessSize): number {
    return size === 1 ? this.last : (this.last * 0x01010101) >>> (32 - size * 8);
  }

  write(_offset: number, _size: AccessSize, value: number): void {
    this.last = value & 0xff;
  }

  get lastCode(): number {
    return this.last;
  }
}
