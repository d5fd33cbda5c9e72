import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface Outcome {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a nodevisor command to completion. */
export function cli(args: string[], timeoutMs = 60000): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
    child.stdin?.end();
  });
}

/** A `nodevisor run` in the background, its output collected. */
export class BackgroundRun {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number>;
  private readonly child: ChildProcess;

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : -1))));
  }

  /** Waits until `cond` holds, failing with the run's output if it exits or `timeoutMs` passes first. */
  async until(what: string, cond: () => boolean, timeoutMs = 60000): Promise<void> {
    const end = Date.now() + timeoutMs;
    let done = false;
    void this.exited.then(() => (done = true));
    while (!cond()) {
      if (done || Date.now() > end) throw new Error(`no ${what}; run ${done ? 'exited' : 'still running'}, stderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  socketReady(path: string): Promise<void> {
    return this.until(`socket ${path}`, () => existsSync(path));
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
