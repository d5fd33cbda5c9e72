// A serving task for test/serving-pool.test.ts: a device on an I/O thread
// that logs a line and asks for the VM to stop, then serves until the pool
// closes, as the virtio I/O threads do.
import { native } from '../src/kvm/addon.js';
import { threadVmControl } from '../src/vm/threads/thread-control.js';
import type { ServingTask } from '../src/vm/threads/serving-pool.js';

export interface StopAskingTask extends ServingTask {
  readonly code: number;
}

export default function serve(task: StopAskingTask): void {
  const vm = threadVmControl((m) => task.report.postMessage(m));
  vm.log('warn', `task ${task.code} is asking for a stop`);
  vm.requestStop({ kind: 'debug-exit', code: task.code });
  native.pollReadable([task.stopFd], -1);
  task.report.close();
}
