import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_ROOT } from '../guests/build.js';
import { WORKLOADS_HEADER, DEFAULT_TIMING, type GuestTiming, type ScalingWorkload } from './scaling-guest.js';

/**
 * The host reference: the guest's ring-3 kernels on host pthreads
 * (bench/ref/scaling-threads.c), built with gcc when the suite runs.
 */

const SOURCE = join(PACKAGE_ROOT, 'bench', 'ref', 'scaling-threads.c');
const run = promisify(execFile);

/** Compiles the reference, cached by a hash of its source and the shared kernel header (which a plain mtime check would miss). */
export function buildScalingReference(): string {
  const hash = createHash('sha256').update(readFileSync(SOURCE)).update(readFileSync(WORKLOADS_HEADER)).digest('hex').slice(0, 12);
  const outDir = join(PACKAGE_ROOT, 'build', 'bench');
  const out = join(outDir, `scaling-threads-${hash}`);
  if (existsSync(out)) return out;
  mkdirSync(outDir, { recursive: true });
  const tmp = `${out}.${process.pid}`;
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-pthread', '-o', tmp, SOURCE], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string; code?: string };
    if (err.code === 'ENOENT') throw new Error('the scaling suite needs `gcc` to build its host reference');
    throw new Error(`gcc failed building ${SOURCE}:\n${err.stderr?.toString() ?? err.message}`);
  }
  renameSync(tmp, out);
  return out;
}

export interface ThreadRecord {
  ops: number;
  ns: number;
}

interface RefOutput {
  workload: string;
  threads: number;
  results: ThreadRecord[];
}

/** Runs `threads` host threads of `workload`; each record is one thread's work and window. */
export async function runHostReference(binary: string, workload: ScalingWorkload, threads: number, timing: GuestTiming = DEFAULT_TIMING): Promise<ThreadRecord[]> {
  const args = [workload, String(threads), String(timing.warmupMs), String(timing.measureMs), String(timing.memBufBytes)];
  const { stdout } = await run(binary, args, { timeout: 60_000 });
  const out = JSON.parse(stdout) as RefOutput;
  if (out.workload !== workload || out.threads !== threads || out.results.length !== threads) {
    throw new Error(`host reference answered for ${out.workload} x${out.threads}, asked ${workload} x${threads}`);
  }
  for (const [i, r] of out.results.entries()) {
    if (!(r.ops > 0 && r.ns > 0)) throw new Error(`host reference thread ${i} of ${threads} (${workload}) measured nothing`);
  }
  return out.results;
}
