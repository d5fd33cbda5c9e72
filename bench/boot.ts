/**
 * Boot time to "Run /init" for the test kernel at 1, 2 and 4 vCPUs, against
 * QEMU with KVM in the same run where QEMU exists and can boot here. A thin
 * wrapper over the `boot` suite: `nodevisor bench boot` does the same with
 * JSON, charts and baselines.
 *
 *   node dist/bench/boot.js [--repetitions N]
 */
import { parseArgs } from 'node:util';
import { runBenchmark, formatReport } from '../src/bench/index.js';

const { values } = parseArgs({ options: { repetitions: { type: 'string' } } });
const report = await runBenchmark({ suites: ['boot'], repetitions: Number(values.repetitions ?? 3) });
process.stdout.write(formatReport(report));
