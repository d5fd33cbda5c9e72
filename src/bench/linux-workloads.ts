/**
 * The workloads `nodevisor bench linux` runs in the guest, and the same
 * programs run on the host as the reference. Built-ins are nvbench
 * (guests/linux/nvbench.c); user workloads are static programs that print
 * `metric` lines (linux-protocol.ts).
 */
import { execFile } from 'node:child_process';
import { basename } from 'node:path';
import { parseMetricLines, type WorkloadMetric } from './linux-protocol.js';

export type BuiltinWorkload = 'compute' | 'pingpong' | 'lock' | 'fork' | 'disk';
export const BUILTIN_WORKLOADS: readonly BuiltinWorkload[] = ['compute', 'pingpong', 'lock', 'fork', 'disk'];

/** A workload as the suite runs it. */
export interface Workload {
  /** Its name in metric ids: linux.<name>.<measure>-<vcpus>. */
  name: string;
  /** The run-list line /init executes in the guest. */
  guestCommand: string;
  /** The host reference's argv for n vCPUs (built-ins only). */
  hostArgv?: (n: number) => string[];
  /** The measure that gets a host ratio (built-ins only). */
  primary?: string;
  /** What it measures, for metric descriptions. */
  what: string;
}

const WHAT: Record<BuiltinWorkload, { primary: string; what: string }> = {
  compute: { primary: 'throughput', what: 'an integer mixing loop in one thread per vCPU (user space)' },
  pingpong: { primary: 'round-trip', what: 'a byte bounced through two pipes between threads pinned to the first and last CPU (scheduler wake-ups, IPIs)' },
  lock: { primary: 'throughput', what: 'one thread per vCPU taking one contended pthread mutex (futexes)' },
  fork: { primary: 'rate', what: 'fork, _exit and waitpid in a loop' },
  disk: { primary: 'read', what: '128 KiB sequential O_DIRECT reads of a virtio-blk disk (the host reads the image file from its page cache)' },
};

/** A built-in workload running for `seconds` each time; `nvbench` is the host path of the program, `image` the disk image. */
export function builtinWorkload(name: BuiltinWorkload, seconds: number, nvbench: string, image?: string): Workload {
  const s = String(seconds);
  const guestArgs: Record<BuiltinWorkload, string> = {
    compute: `compute ${s}`,
    pingpong: `pingpong ${s}`,
    lock: `lock ${s}`,
    fork: `fork ${s}`,
    disk: `disk ${s} /dev/vda direct`,
  };
  const hostArgv: Record<BuiltinWorkload, (n: number) => string[]> = {
    compute: (n) => ['compute', s, String(n)],
    pingpong: (n) => ['pingpong', s, '0', String(n - 1)],
    lock: (n) => ['lock', s, String(n)],
    fork: () => ['fork', s],
    disk: () => ['disk', s, image ?? '', 'cached'],
  };
  return {
    name,
    guestCommand: `nvbench ${guestArgs[name]}`,
    hostArgv: (n) => [nvbench, ...hostArgv[name](n)],
    primary: WHAT[name].primary,
    what: WHAT[name].what,
  };
}

/** A user's static program: runs as /bin/<name> with `args`; every metric line it prints is reported. */
export function userWorkload(program: string, args: readonly string[]): Workload {
  const name = basename(program);
  return { name, guestCommand: [name, ...args].join(' '), what: `${name}${args.length ? ` ${args.join(' ')}` : ''} (user workload)` };
}

/** Runs a host reference and returns its metric lines; rejects with its stderr when it fails. */
export function runOnHost(argv: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<WorkloadMetric[]> {
  return new Promise((resolve, reject) => {
    execFile(argv[0]!, argv.slice(1), { env, timeout: timeoutMs, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`the host reference \`${argv.join(' ')}\` failed: ${stderr.trim() || error.message}`));
      else resolve(parseMetricLines(stdout));
    });
  });
}
