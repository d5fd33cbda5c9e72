/**
 * `nodevisor bench footprint`: what many vCPUs cost, measured as a user
 * meets it - `nodevisor run --smp N --quiet` on the demo guest, a process
 * of its own per run. Peak RSS (its VmHWM, read every few ms) at 1 and 64 vCPUs gives the 1-vCPU
 * footprint and the cost of each additional vCPU; the time from spawning
 * the process to the guest's first console line (every vCPU created and
 * released; vCPU 0 prints once all have checked in) gives start-up at 1,
 * 64 and, where KVM allows it, 255 vCPUs. The counts run interleaved in
 * each repetition, and the ratios pair the runs of one repetition, so
 * background load moves both sides of a ratio.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { NodevisorError } from '../kvm/errors.js';
import { Kvm } from '../kvm/kvm.js';
import { threadEntry } from '../vm/threads/entry.js';
import { CLI } from './boot-run.js';
import { isSelected } from './select.js';
import type { BenchContext, Metric, Suite, SuiteResult } from './types.js';

export const FOOTPRINT_TARGETS = { rss1MiB: 60, perVcpuMiB: 4, startupRatio64: 3 } as const;
const MANY = 64;
const MOST = 255;
const RUN_TIMEOUT_MS = 600_000;

/** How often the child's high-water mark is read: it only grows, so the last reading before exit is its peak. */
const RSS_POLL_MS = 10;

/** VmHWM of `pid` in KiB, or 0 once it is gone. */
function peakRssKiB(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

interface DemoRun {
  /** Milliseconds from spawn to the guest's first console output. */
  startupMs: number;
  peakRssMiB: number;
}

/** One `nodevisor run --smp n --quiet` of the demo guest, which must power off (status 0). */
export function runDemo(vcpus: number): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    // Read from outside: a preload would run in every vCPU thread too and change what it measures.
    const child = spawn(process.execPath, [CLI, 'run', '--smp', String(vcpus), '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let firstOutput: number | undefined;
    let out = '';
    let peak = 0;
    const poll = setInterval(() => (peak = Math.max(peak, peakRssKiB(child.pid!))), RSS_POLL_MS);
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      firstOutput ??= performance.now();
      out = (out + c.toString('latin1')).slice(-4096);
    });
    child.stderr!.on('data', (c: Buffer) => (out = (out + c.toString('latin1')).slice(-4096)));
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      clearInterval(poll);
      if (status !== 0 || firstOutput === undefined || !peak) {
        reject(new NodevisorError('EBENCH', `the demo guest with ${vcpus} vCPUs did not power off (exit status ${status}); its last output:\n${out.split('\n').slice(-8).join('\n')}`));
      } else resolve({ startupMs: firstOutput - t0, peakRssMiB: peak / 1024 });
    });
  });
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const kvm = Kvm.open();
  const maxVcpus = kvm.maxVcpus;
  kvm.close();
  const counts = [1, MANY, ...(maxVcpus >= MOST && isSelected(`footprint.startup-ratio-${MOST}`, ctx.only) ? [MOST] : [])];
  const runs = new Map<number, DemoRun[]>(counts.map((n) => [n, []]));
  const loadBefore = loadavg()[0]!;
  const steps = ctx.repetitions * counts.length;
  let done = 0;
  for (let rep = 0; rep < ctx.repetitions; rep++) {
    for (const n of counts) {
      ctx.progress(done, steps, `footprint: demo guest, ${n} vCPU${n > 1 ? 's' : ''}`);
      const r = await runDemo(n);
      runs.get(n)!.push(r);
      ctx.log(`${n} vCPUs: start-up ${r.startupMs.toFixed(0)} ms, peak RSS ${r.peakRssMiB.toFixed(1)} MiB`);
      done++;
    }
  }
  ctx.progress(steps, steps, 'footprint: done');
  const one = runs.get(1)!;
  const pair = (n: number, f: (a: DemoRun, b: DemoRun) => number): number[] => runs.get(n)!.map((r, i) => f(one[i]!, r));
  const metrics: Metric[] = [
    { id: 'footprint.rss-1', description: `peak RSS of \`nodevisor run --quiet\` on the demo guest with 1 vCPU (target <= ${FOOTPRINT_TARGETS.rss1MiB} MiB)`, unit: 'MiB', better: 'lower', samples: one.map((r) => r.peakRssMiB), tolerance: 0.1, params: { vcpus: 1, target: FOOTPRINT_TARGETS.rss1MiB } },
    { id: `footprint.rss-${MANY}`, description: `peak RSS of the demo guest with ${MANY} vCPUs`, unit: 'MiB', better: 'lower', samples: runs.get(MANY)!.map((r) => r.peakRssMiB), tolerance: 0.1, params: { vcpus: MANY } },
    { id: 'footprint.rss-per-vcpu', description: `peak RSS per additional vCPU: (RSS at ${MANY} - RSS at 1) / ${MANY - 1}, runs of one repetition paired (target <= ${FOOTPRINT_TARGETS.perVcpuMiB} MiB)`, unit: 'MiB', better: 'lower', samples: pair(MANY, (a, b) => (b.peakRssMiB - a.peakRssMiB) / (MANY - 1)), tolerance: 0.1, params: { vcpus: MANY, target: FOOTPRINT_TARGETS.perVcpuMiB } },
  ];
  for (const n of counts) {
    metrics.push({ id: `footprint.startup-${n}`, description: `milliseconds from spawning \`nodevisor run --smp ${n}\` to the demo guest's first console line`, unit: 'ms', better: 'lower', samples: runs.get(n)!.map((r) => r.startupMs), tolerance: 0.25, params: { vcpus: n } });
    if (n > 1) {
      const target: Record<string, number> = n === MANY ? { target: FOOTPRINT_TARGETS.startupRatio64 } : {};
      metrics.push({ id: `footprint.startup-ratio-${n}`, description: `start-up with ${n} vCPUs over start-up with 1, runs of one repetition paired${n === MANY ? ` (target <= ${FOOTPRINT_TARGETS.startupRatio64})` : ''}`, unit: 'ratio', better: 'lower', samples: pair(n, (a, b) => b.startupMs / a.startupMs), tolerance: 0.25, params: { vcpus: n, ...target } });
    }
  }
  const entry = threadEntry('vcpu-worker');
  const notes = [
    `load average ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after (start-up times scale with the CPU the host leaves us)`,
    entry.bundled ? 'vCPU threads start from the bundle (vcpu-worker.bundle.cjs)' : `vCPU threads load the compiled modules: ${entry.reason}`,
  ];
  if (!counts.includes(MOST)) notes.push(maxVcpus < MOST ? `no ${MOST}-vCPU runs: this host's KVM allows at most ${maxVcpus} vCPUs (KVM_CAP_MAX_VCPUS)` : `no ${MOST}-vCPU runs: not selected`);
  return { suite: 'footprint', metrics, notes };
}

export const footprintSuite: Suite = {
  name: 'footprint',
  description: `peak RSS of the demo guest at 1 and ${MANY} vCPUs (per additional vCPU), and start-up at 1, ${MANY} and ${MOST} vCPUs as ratios to 1`,
  run,
};
