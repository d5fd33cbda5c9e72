/**
 * virtio-blk throughput: 4 KiB random read IOPS and 128 KiB sequential read
 * MiB/s at queue depth 1 and 32 from a guest, in irqchip modes user and
 * split, against Node reading the same image file directly in the same run
 * (the ratio is the VMM's overhead). A thin wrapper over the `virtio-blk`
 * suite: `nodevisor bench virtio-blk` does the same with JSON, charts and
 * baselines.
 *
 *   node dist/bench/virtio-blk.js [--repetitions N]
 */
import { parseArgs } from 'node:util';
import { runBenchmark, formatReport } from '../src/bench/index.js';

const { values } = parseArgs({ options: { repetitions: { type: 'string' } } });
const report = await runBenchmark({ suites: ['virtio-blk'], repetitions: Number(values.repetitions ?? 5) });
process.stdout.write(formatReport(report));
