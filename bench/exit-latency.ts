/**
 * PIO exit round trip: a guest writes port 0x80 in a loop; each write is a
 * KVM exit handled by the vCPU's Node worker and a KVM_RUN back. The same
 * guest binary runs under a minimal C VMM in the same invocation, and the
 * result is reported as nodevisor's rate over C's (higher is better, 1.0 =
 * as fast as C; target >= 0.9).
 *
 *   node dist/bench/exit-latency.js [--exits N] [--runs R] [--json FILE]
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildGuest, PACKAGE_ROOT } from '../src/guests/build.js';
import { createVm } from '../src/index.js';
import { buildReference } from './lib/cref.js';
import { median, spread, fmt } from './lib/stats.js';

const LOAD = 0x8000;

export interface ExitLatencyResult {
  exits: number;
  runs: number;
  c: number[];
  node: number[];
  /** Median exits per second of each. */
  cRate: number;
  nodeRate: number;
  ratio: number;
}

async function nodeRun(image: string, exits: number): Promise<number> {
  const vm = createVm({ memory: '16M', image: { source: image, mode: 'real', loadAddress: LOAD } });
  await vm.start();
  const result = await vm.wait();
  if (result.reason.kind !== 'debug-exit') throw new Error(`benchmark guest stopped unexpectedly: ${result.message}`);
  const s = vm.stats().vcpus[0]!;
  const seconds = s.guestSeconds + s.vmmSeconds;
  if (s.exitsByReason.Io !== exits + 1) throw new Error(`expected ${exits + 1} I/O exits, saw ${s.exitsByReason.Io}`);
  return (exits + 1) / seconds;
}

function cRun(ref: string, image: string, exits: number): number {
  const out = JSON.parse(execFileSync(ref, [image, `0x${LOAD.toString(16)}`]).toString()) as { exits: number; ns: number };
  if (out.exits !== exits + 1) throw new Error(`C reference saw ${out.exits} exits, expected ${exits + 1}`);
  return out.exits / (out.ns / 1e9);
}

export async function exitLatency(exits = 100_000, runs = 5): Promise<ExitLatencyResult> {
  const image = buildGuest({ sources: [join(PACKAGE_ROOT, 'bench', 'guests', 'pio-loop.S')], loadAddress: LOAD, defines: { ITERATIONS: exits } });
  const ref = buildReference('exit-latency');
  const c: number[] = [];
  const node: number[] = [];
  // Interleave so drift in machine load hits both sides alike.
  for (let i = 0; i < runs; i++) {
    c.push(cRun(ref, image, exits));
    node.push(await nodeRun(image, exits));
  }
  const cRate = median(c);
  const nodeRate = median(node);
  return { exits, runs, c, node, cRate, nodeRate, ratio: nodeRate / cRate };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { exits: { type: 'string' }, runs: { type: 'string' }, json: { type: 'string' } } });
  const r = await exitLatency(Number(values.exits ?? 100_000), Number(values.runs ?? 5));
  const line = (name: string, rates: number[]): string =>
    `  ${name.padEnd(12)} ${fmt(median(rates)).padStart(9)} exits/s  ${fmt(1e6 / median(rates), 2).padStart(7)} us/exit  spread ${fmt(spread(rates) * 100, 1)}%`;
  console.log(`exit-latency: PIO exit round trip, ${fmt(r.exits)} exits per run, ${r.runs} runs each (medians)`);
  console.log(line('C reference', r.c));
  console.log(line('nodevisor', r.node));
  console.log(`  ratio nodevisor/C: ${r.ratio.toFixed(3)}  (target >= 0.9)`);
  if (values.json) writeFileSync(values.json, JSON.stringify(r, null, 2));
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
