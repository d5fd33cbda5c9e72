import type { Worker, WorkerOptions } from 'node:worker_threads';

/**
 * The VM's own threads (one per vCPU, the device timer) print nothing on
 * purpose, but whatever they do print must still reach the process's
 * stdout and stderr. Node's default pipes each worker's streams into the
 * process's with `pipe()`, which adds listeners to process.stdout per
 * worker: a MaxListenersExceededWarning from 10 vCPUs on, and listeners
 * piling up in a program that creates VMs in a loop. Forwarding chunks by
 * hand adds none.
 */
export const WORKER_STDIO: Pick<WorkerOptions, 'stdout' | 'stderr'> = { stdout: true, stderr: true };

/** Passes `w`'s output on to this process's stdout and stderr (create `w` with WORKER_STDIO). */
export function forwardWorkerStdio(w: Worker): void {
  w.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk));
  w.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
}
