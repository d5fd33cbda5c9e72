/**
 * PIO exit round trip: a guest writes port 0x80 in a loop; each write is a
 * KVM exit handled by the vCPU's Node worker and a KVM_RUN back. The same
 * guest binary runs under a minimal C VMM in the same invocation, and the
 * result is reported as nodevisor's rate over C's (higher is better, 1.0 =
 * as fast as C; target >= 0.9).
 *
 *   node dist/bench/exit-latency.js [--exits N] [--runs R] [--json FILE]
 *
 * The measurement itself lives in src/bench/exit-rtt.ts, shared with the
 * `micro` suite of `nodevisor bench` (metrics micro.exit-rtt*).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { exitLatency } from '../src/bench/exit-rtt.js';
import { median, spread, fmt } from './lib/stats.js';

export { exitLatency, type ExitLatencyResult } from '../src/bench/exit-rtt.js';

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
