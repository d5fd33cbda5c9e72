import { WakeWord } from '../sync/wake-word.js';
import type { AccessSize, BusDevice } from '../devices/device.js';

/** The device-timer thread's wake word: bumped when a timed device is reprogrammed. */
export class TimerWake extends WakeWord {
  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(4);
  }

  constructor(buffer: SharedArrayBuffer) {
    super(new Int32Array(buffer), 0);
  }
}

/** Wraps a timed device on a vCPU's bus so every write wakes the device-timer thread. */
export function notifyingTimer(device: BusDevice, wake: TimerWake): BusDevice {
  return {
    name: device.name,
    read: (offset: number, size: AccessSize, vcpu: number) => device.read(offset, size, vcpu),
    write(offset: number, size: AccessSize, value: number, vcpu: number): void {
      device.write(offset, size, value, vcpu);
      wake.notify();
    },
  };
}
