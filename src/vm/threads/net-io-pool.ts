import { defaultIoThreads } from './blk-io-pool.js';
import type { NetIoData, NetServeTask } from './net-io-worker.js';
import { ServingPool, type LogLevel } from './serving-pool.js';
import type { StopReason } from '../../devices/device.js';

/**
 * The virtio-net I/O threads: a serving pool whose every task serves some
 * queue pairs of one NIC for the VM's life (net-io-worker.ts). A NIC gets
 * one thread per queue pair, at most defaultIoThreads() (so on a 2-core
 * host one thread serves every pair of a NIC); pair p goes to thread
 * p mod that, and the control queue to the thread of pair 0.
 */
export function netServeTasks(nics: readonly { pairs: number }[], maxThreads = defaultIoThreads()): Omit<NetServeTask, 'stopFd' | 'report'>[] {
  return nics.flatMap((nic, index) => {
    const threads = Math.max(1, Math.min(nic.pairs, maxThreads));
    return Array.from({ length: threads }, (_, t) => ({
      nic: index,
      pairs: Array.from({ length: nic.pairs }, (_, p) => p).filter((p) => p % threads === t),
      ctrl: t === 0 && nic.pairs > 1,
    }));
  });
}

export class NetIoPool {
  private readonly pool: ServingPool<NetServeTask>;

  constructor(o: { data: NetIoData; log: (level: LogLevel, message: string) => void; requestStop: (reason: StopReason) => void; failed: (error: Error) => void }) {
    const tasks = netServeTasks(o.data.nics.map((n) => ({ pairs: n.net.pairs })));
    this.pool = new ServingPool<NetServeTask>({ filename: new URL('./net-io-worker.js', import.meta.url).href, workerData: o.data, tasks, log: o.log, requestStop: o.requestStop, failed: o.failed });
  }

  /** Stops the I/O threads and ends the pool. */
  close(): Promise<void> {
    return this.pool.close();
  }
}
