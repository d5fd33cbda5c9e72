// The far side of the UART's cross-thread tests: a vCPU-like thread with its
// own view over the shared UART state.
import { workerData } from 'node:worker_threads';
import { noIrqLines, type DeviceHost } from '../src/devices/device.js';
import { Uart16550, UartLsr, UartReg, type Uart16550State } from '../src/devices/uart16550.js';
import { monotonicClock } from '../src/sync/clock.js';

export interface UartWorkerData {
  state: Uart16550State;
  /**
   * burst: write `count` bytes (i & 0x7f) to THR without looking at LSR.
   * polled: write `count` bytes (i & 0xff) to THR, waiting for LSR.THRE first, as a polling driver does.
   * receive: push `count` bytes (i & 0xff) through `receive`, retrying what was not accepted.
   */
  mode: 'burst' | 'polled' | 'receive';
  count: number;
  /** Int32 words: [0] go (set by the main thread), [1] done and [2] ready (set here). */
  flags: SharedArrayBuffer;
}

const GO = 0;
const DONE = 1;
const READY = 2;

const data = workerData as UartWorkerData;
const flags = new Int32Array(data.flags);
const host: DeviceHost = { irq: noIrqLines, vm: { requestStop() {}, log() {} }, clock: monotonicClock };
const uart = new Uart16550(data.state, host, { irq: 4 });

// Ready first, so the main thread can start its side at the same moment as ours.
Atomics.store(flags, READY, 1);
Atomics.notify(flags, READY);
Atomics.wait(flags, GO, 0);
switch (data.mode) {
  case 'burst':
    for (let i = 0; i < data.count; i++) uart.write(UartReg.Data, 1, i & 0x7f, 1);
    break;
  case 'polled':
    for (let i = 0; i < data.count; i++) {
      while (!(uart.read(UartReg.Lsr, 1, 1) & UartLsr.THRE));
      uart.write(UartReg.Data, 1, i & 0xff, 1);
    }
    break;
  case 'receive': {
    const bytes = Uint8Array.from({ length: data.count }, (_, i) => i & 0xff);
    let sent = 0;
    while (sent < bytes.length) sent += uart.receive(bytes.subarray(sent, sent + 97));
    break;
  }
}
Atomics.store(flags, DONE, 1);
