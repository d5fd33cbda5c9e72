/**
 * PIO exit round trip: a real-mode guest writes port 0x80 in a loop; each
 * write is a KVM exit handled by the vCPU's Node worker and a KVM_RUN back.
 * The same guest binary runs under a minimal C VMM (bench/ref/exit-latency.c)
 * in the same invocation, interleaved, so the ratio nodevisor/C is measured
 * under the same machine load (1.0 = as fast as C; target >= 0.9).
 * Used by bench/exit-latency.ts and by the `micro` suite's exit-rtt metrics.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { buildGuest, PACKAGE_ROOT } from '../guests/build.js';
import { Vm } from '../vm/vm.js';
import type { TestKnobs } from './types.js';
import { buildReference } from './c-reference.js';
import { median } from './stats.js';

const LOAD = 0x8000;

export interface ExitLatencyResult {
  exits: number;
  runs: number;
  /** Exits per second of each run, in the order measured. */
  c: number[];
  node: number[];
  /** Median exits per second of each. */
  cRate: number;
  nodeRate: number;
  ratio: number;
}

/** The guest and the C reference, built once (both are cached on disk). */
export interface ExitRttSetup {
  exits: number;
  image: string;
  reference: string;
}

export function prepareExitRtt(exits: number): ExitRttSetup {
  const image = buildGuest({ sources: [join(PACKAGE_ROOT, 'bench', 'guests', 'pio-loop.S')], loadAddress: LOAD, defines: { ITERATIONS: exits } });
  return { exits, image, reference: buildReference('exit-latency') };
}

/**
 * One nodevisor run: exits per second over the time the vCPU spent in
 * KVM_RUN plus handling exits (VM creation and worker start-up excluded,
 * as the C reference excludes its set-up).
 */
export async function nodeExitRate(setup: ExitRttSetup, testKnobs?: TestKnobs, attach?: (vm: Vm) => Promise<() => Promise<void>>): Promise<number> {
  const vm = new Vm({ memory: '16M', image: { source: setup.image, mode: 'real', loadAddress: LOAD }, testKnobs });
  const detach = await attach?.(vm);
  await vm.start();
  const result = await vm.wait();
  await detach?.();
  if (result.reason.kind !== 'debug-exit') throw new Error(`benchmark guest stopped unexpectedly: ${result.message}`);
  const s = vm.stats().vcpus[0]!;
  const seconds = s.guestSeconds + s.vmmSeconds;
  if (s.exitsByReason.Io !== setup.exits + 1) throw new Error(`expected ${setup.exits + 1} I/O exits, saw ${s.exitsByReason.Io}`);
  return (setup.exits + 1) / seconds;
}

/** One run of the C reference VMM on the same guest. */
export function cExitRate(setup: ExitRttSetup): number {
  const out = JSON.parse(execFileSync(setup.reference, [setup.image, `0x${LOAD.toString(16)}`]).toString()) as { exits: number; ns: number };
  if (out.exits !== setup.exits + 1) throw new Error(`C reference saw ${out.exits} exits, expected ${setup.exits + 1}`);
  return out.exits / (out.ns / 1e9);
}

/** One interleaved pair: C first, then nodevisor, so drift in machine load hits both alike. */
export async function exitRatePair(setup: ExitRttSetup, testKnobs?: TestKnobs): Promise<{ c: number; node: number }> {
  const c = cExitRate(setup);
  const node = await nodeExitRate(setup, testKnobs);
  return { c, node };
}

export async function exitLatency(exits = 100_000, runs = 5): Promise<ExitLatencyResult> {
  const setup = prepareExitRtt(exits);
  const c: number[] = [];
  const node: number[] = [];
  for (let i = 0; i < runs; i++) {
    const pair = await exitRatePair(setup);
    c.push(pair.c);
    node.push(pair.node);
  }
  const cRate = median(c);
  const nodeRate = median(node);
  return { exits, runs, c, node, cRate, nodeRate, ratio: nodeRate / cRate };
}
