/**
 * virtio-net: TCP stream throughput and request/response latency from a
 * Linux guest over a tap with 1 and 2 queue pairs, against the same
 * traffic between two host namespaces over veth in the same run, and the
 * device's packets per notification and per interrupt. Needs root and the
 * test kernel. A thin wrapper over the `virtio-net` suite: `nodevisor
 * bench virtio-net` does the same with JSON, charts and baselines.
 *
 *   node dist/bench/virtio-net.js [--repetitions N]
 */
import { parseArgs } from 'node:util';
import { runBenchmark, formatReport } from '../src/bench/index.js';

const { values } = parseArgs({ options: { repetitions: { type: 'string' } } });
const report = await runBenchmark({ suites: ['virtio-net'], repetitions: Number(values.repetitions ?? 5) });
process.stdout.write(formatReport(report));
