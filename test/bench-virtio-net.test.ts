import { expect } from 'chai';
import type { Metric, SuiteResult } from '../src/bench/types.js';
import { runVirtioNetBench } from '../src/bench/virtio-net.js';
import { batching, netBenchMetrics, type NetBenchSample } from '../src/bench/virtio-net-metrics.js';
import { runVethReference, type NetDeviceCounts } from '../src/bench/virtio-net-runs.js';
import { netOrSkip } from './helpers/netns.js';
import { testKernelOrSkip } from './helpers/linux.js';

/** `nodevisor bench virtio-net`: its metrics from samples, the veth reference, and one short run of the whole suite. */

const direction = (packets: number, notifications: number, interrupts: number) => ({ packets, bytes: packets * 1000, dropped: 0, notifications, interrupts, gso: 0, checksumOffloaded: 0 });
const counts = (tx: [number, number, number], rx: [number, number, number]): NetDeviceCounts => ({ tx: direction(...tx), rx: direction(...rx) });

function sample(stream: number, rr: number, vethStream: number, vethRr: number): NetBenchSample {
  const device = counts([100, 50, 20], [60, 2, 20]);
  return { guest: { stream, rrLatencyUs: rr, device: { stream: device, rr: device }, bootSeconds: 20 }, veth: { stream: vethStream, rrLatencyUs: vethRr } };
}

describe('virtio-net suite: metrics', () => {
  it('counts packets per transmit notification and, both ways, per interrupt', () => {
    expect(batching(counts([100, 50, 20], [60, 2, 20]))).to.deep.equal({ perNotification: 2, perInterrupt: 4 });
    expect(batching(counts([0, 0, 0], [0, 0, 0]))).to.deep.equal({ perNotification: 0, perInterrupt: 0 });
  });

  it('reports guest, veth reference and their ratio per workload and pair count, oriented so that 1 = as good as veth', () => {
    const samples = new Map([[2, [sample(10, 200, 100, 20), sample(20, 100, 100, 20)]]]);
    const m = new Map(netBenchMetrics(samples, { seconds: 5, irqchip: 'user' }).map((x) => [x.id, x]));
    expect([...m.keys()]).to.deep.equal(
      ['stream', 'rr'].flatMap((w) => ['', '.veth', '.ratio-vs-veth', '.packets-per-notification', '.packets-per-interrupt'].map((s) => `virtio-net.${w}.2q${s}`)),
    );
    expect(m.get('virtio-net.stream.2q')).to.include({ unit: 'MiB/s', better: 'higher' });
    expect(m.get('virtio-net.stream.2q')!.samples).to.deep.equal([10, 20]);
    expect(m.get('virtio-net.stream.2q.ratio-vs-veth')!.samples).to.deep.equal([0.1, 0.2]);
    expect(m.get('virtio-net.rr.2q')).to.include({ unit: 'us', better: 'lower' });
    expect(m.get('virtio-net.rr.2q.ratio-vs-veth')!.samples, 'veth latency over guest latency').to.deep.equal([0.1, 0.2]);
    expect(m.get('virtio-net.rr.2q.packets-per-interrupt')!.samples).to.deep.equal([4, 4]);
    expect(m.get('virtio-net.stream.2q')!.params).to.include({ pairs: 2, packetsPerNotification: 2, packetsPerInterrupt: 4 });
    expect(netBenchMetrics(samples, { seconds: 5, irqchip: 'user' }, ['virtio-net.rr']).every((x) => x.id.startsWith('virtio-net.rr.'))).to.equal(true);
  });
});

describe('virtio-net suite under KVM', function () {
  this.timeout(600_000);

  before(function () {
    netOrSkip(this, 'namespaces');
  });

  it('measures the veth reference between two namespaces with the same program', async () => {
    const r = await runVethReference(1, 1);
    expect(r.stream).to.be.greaterThan(0);
    expect(r.rrLatencyUs).to.be.greaterThan(0);
  });

  it('runs the whole suite: every metric for 2 queue pairs, with the batching counted', async function () {
    testKernelOrSkip(this);
    const result: SuiteResult = await runVirtioNetBench({ repetitions: 1, maxVcpus: 2, progress: () => {}, log: () => {} }, { pairs: [2], seconds: 1, irqchip: 'user', memory: '256M' });
    const byId = new Map<string, Metric>(result.metrics.map((m) => [m.id, m]));
    for (const w of ['stream', 'rr']) {
      for (const s of ['', '.veth', '.ratio-vs-veth', '.packets-per-notification', '.packets-per-interrupt']) expect(byId.get(`virtio-net.${w}.2q${s}`)?.samples[0], `virtio-net.${w}.2q${s}`).to.be.greaterThan(0);
    }
    expect(result.notes.join('\n')).to.match(/VM start to \/init/);
  });
});
