import { Worker } from 'node:worker_threads';
import { NodevisorError, errnoCode } from '../kvm/errors.js';
import type { StopReason } from '../devices/device.js';
import type { VmControlBlock } from '../vcpu/control.js';
import type { DebugStopEvent } from '../vcpu/debug-exit.js';
import type { VcpuWorkerData, WorkerMessage } from './threads/vcpu-worker-data.js';
import { WORKER_STDIO, forwardWorkerStdio } from './worker-stdio.js';

/** What the vCPU threads report to the VM. */
export interface VcpuSetHost {
  /** Where vCPU threads start (threads/entry.ts). */
  readonly url: () => URL;
  readonly log: (level: 'info' | 'warn' | 'error', message: string) => void;
  /** A vCPU thread claimed the VM's stop, for this reason. */
  readonly stopped: (reason: StopReason) => void;
  /** A vCPU thread failed (threw): the VM must stop. */
  readonly requestStop: (reason: StopReason) => void;
  readonly debugOutput: (bytes: Buffer) => void;
  readonly debugStop: (e: DebugStopEvent) => void;
  /** True once the VM is stopping: no more threads are spawned, nor waited for. */
  readonly stopping: () => boolean;
}

/**
 * The VM's vCPU threads: one worker each, spawned, waited for until each has
 * created its KVM vCPU, their messages dispatched, and their ends awaited.
 */
export class VcpuSet {
  private readonly workers: Worker[] = [];
  private readonly exits: Promise<void>[] = [];
  private progress = (): void => {};

  constructor(private readonly host: VcpuSetHost) {}

  /**
   * Spawns `count` workers and resolves once each has its KVM vCPU, or the
   * VM is stopping; throws the first set-up failure. Spawning yields to the
   * event loop after each worker (a spawn blocks the main thread for
   * milliseconds), so a stop or a signal during a start of hundreds of
   * vCPUs is heard at once and ends it.
   */
  async spawn(count: number, dataFor: (i: number) => VcpuWorkerData): Promise<void> {
    const ready = new Set<number>();
    let failure: Error | undefined;
    for (let i = 0; i < count && !this.host.stopping(); i++) {
      const w = new Worker(this.host.url(), { workerData: dataFor(i), name: `vcpu${i}`, ...WORKER_STDIO });
      forwardWorkerStdio(w);
      w.on('message', (m: WorkerMessage) => {
        if (m.type === 'ready') {
          ready.add(m.index);
          this.progress();
        } else this.dispatch(m);
      });
      w.on('error', (e) => {
        this.host.requestStop({ kind: 'error', vcpu: i, detail: `vCPU ${i} worker failed: ${e.stack ?? e.message}` });
        failure ??= setupError(i, e);
        this.progress();
      });
      this.workers.push(w);
      this.exits.push(new Promise((resolve) => w.once('exit', () => resolve())));
      await new Promise((resolve) => setImmediate(resolve));
    }
    while (ready.size < this.workers.length && !failure && !this.host.stopping()) await new Promise<void>((resolve) => (this.progress = resolve));
    this.progress = () => {};
    if (failure) throw failure;
  }

  /** Wakes a spawn() waiting for its vCPUs, to notice a stop. */
  nudge(): void {
    this.progress();
  }

  /**
   * A start that failed or was stopped: workers that never claimed their
   * KVM set-up are terminated wherever they are (they hold nothing), the
   * others stop as in a running VM (the caller has claimed the stop).
   */
  async abort(control: VmControlBlock | undefined): Promise<void> {
    await Promise.all(this.workers.map((w, i) => (control?.cancelSetup(i) ? w.terminate() : undefined)));
    await this.exited();
  }

  /** Resolves once every vCPU thread spawned has ended. */
  exited(): Promise<void> {
    return Promise.all(this.exits).then(() => undefined);
  }

  private dispatch(m: Exclude<WorkerMessage, { type: 'ready' }>): void {
    switch (m.type) {
      case 'log':
        this.host.log(m.level, m.message);
        break;
      case 'stop':
        this.host.stopped(m.reason);
        break;
      case 'exited':
        break;
      case 'debug-output':
        this.host.debugOutput(Buffer.from(m.bytes));
        break;
      case 'debug-stop':
        this.host.debugStop(m);
        break;
    }
  }
}

function setupError(vcpu: number, e: Error): Error {
  if (errnoCode(e) === 'EINVAL' || /KVM_CREATE_VCPU/.test(e.message)) {
    return new NodevisorError('EVCPUS', `KVM refused to create vCPU ${vcpu} (${e.message}); try fewer vCPUs`, { cause: e });
  }
  return e;
}
