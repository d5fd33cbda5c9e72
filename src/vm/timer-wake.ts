import { WakeWord } from '../sync/wake-word.js';

/** The device-timer thread's wake word: bumped when a timed device is reprogrammed. */
export class TimerWake extends WakeWord {
  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(4);
  }

  constructor(buffer: SharedArrayBuffer) {
    super(new Int32Array(buffer), 0);
  }
}
