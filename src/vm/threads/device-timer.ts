import { parentPort, workerData } from 'node:worker_threads';
import type { DeviceHost, TimedDevice } from '../../devices/device.js';
import { isTimedDevice } from '../../devices/device.js';
import { Bus } from '../../devices/bus.js';
import { attachDevices, type DeviceSpec } from '../device-specs.js';
import { TimerWake } from '../timer-wake.js';
import { threadContext, threadVmControl, type SharedThreadData } from './thread-control.js';

/**
 * The device-timer thread: sleeps until the earliest deadline of the VM's
 * time-driven devices (PIT, RTC, ...) and polls them, so their interrupts
 * arrive on time whatever the vCPUs are doing. vCPUs that reprogram one of
 * these devices bump the wake word, so a new, earlier deadline is seen at once.
 */
export interface DeviceTimerData extends SharedThreadData {
  vcpus: number;
  wake: SharedArrayBuffer;
  devices: DeviceSpec[];
}

const data = workerData as DeviceTimerData;
const { control, clock, irqchipViews } = threadContext(data, data.vcpus);
const irqchip = irqchipViews();
const host: DeviceHost = {
  irq: irqchip.lines,
  vm: threadVmControl((m) => parentPort!.postMessage(m), control),
  clock,
};
const timed: TimedDevice[] = attachDevices(new Bus(), data.devices, host).filter(isTimedDevice);
const wake = new TimerWake(data.wake);

/** Never sleep longer than this: a bound on how late a missed wake could make us. */
const MAX_SLEEP_MS = 100;

while (!control.stopRequested) {
  // Paused: the VM clock stands still, and so do the devices' deadlines.
  if (control.pauseRequested) control.waitWhilePaused();
  const seen = wake.snapshot();
  let next = Infinity;
  const now = clock.nowNs();
  for (const d of timed) {
    let t = d.nextDeadlineNs();
    if (t <= now) {
      d.poll();
      t = d.nextDeadlineNs();
    }
    if (t < next) next = t;
  }
  const ms = Math.min(MAX_SLEEP_MS, (next - clock.nowNs()) / 1e6);
  if (ms > 0) wake.wait(seen, ms);
}
parentPort!.postMessage({ type: 'exited' });
