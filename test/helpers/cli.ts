import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

export interface Outcome {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with `args` (no standard input) and collects what it printed. */
export function cli(...args: string[]): Promise<Outcome> {
  return cliUnder([], ...args);
}

/** The same, under `wrapper`: a program that runs the rest of its command line (e.g. with a system call denied). */
export function cliUnder(wrapper: readonly string[], ...args: string[]): Promise<Outcome> {
  const [program, ...rest] = [...wrapper, process.execPath, CLI, ...args];
  return new Promise((resolve) => {
    const child = execFile(program!, rest, { timeout: 60000 }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
    child.stdin?.end();
  });
}
