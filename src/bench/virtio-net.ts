import { Kvm } from '../kvm/kvm.js';
import { NodevisorError } from '../kvm/errors.js';
import { findTestKernel } from '../images/test-kernel.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { BenchContext, Suite, SuiteResult } from './types.js';
import { isSelected } from './select.js';
import { median, roundSig } from './stats.js';
import { WORKLOADS, netBenchId, netBenchMetrics, type NetBenchSample } from './virtio-net-metrics.js';
import { netnsUnavailable } from './netns.js';
import { runNetGuest, runVethReference } from './virtio-net-runs.js';

/**
 * The virtio-net suite: TCP stream throughput and request/response
 * latency between a Linux guest (the test kernel, one vCPU and one queue
 * pair per connection) and an nvnet server on the host behind a tap, with
 * 1 and 2 queue pairs, against the same program moving the same traffic
 * between two host namespaces over a veth pair in the same repetition:
 * the ratio is the share of the host's own networking that survives the
 * VM (guest kernel included). The device's counters give packets per
 * notification and per interrupt, i.e. how much the driver and device
 * batch. Needs root (a tap, network namespaces) and the test kernel.
 */

export interface NetBenchParams {
  /** Queue-pair counts (each boot gets as many vCPUs and connections). */
  pairs: readonly number[];
  /** Seconds each workload runs. */
  seconds: number;
  irqchip: IrqchipMode;
  memory: string;
}

export const DEFAULT_NET_PARAMS: NetBenchParams = { pairs: [1, 2], seconds: 5, irqchip: 'user', memory: '256M' };

export async function runVirtioNetBench(ctx: BenchContext, params: NetBenchParams = DEFAULT_NET_PARAMS): Promise<SuiteResult> {
  const pairs = params.pairs.filter((p) => WORKLOADS.some((w) => isSelected(netBenchId(w, p), ctx.only)));
  if (!pairs.length) return { suite: 'virtio-net', metrics: [], notes: [] };
  const why = netnsUnavailable();
  if (why) return { suite: 'virtio-net', metrics: [], notes: [`not measured: ${why} (a tap device and network namespaces)`] };
  const kernel = findTestKernel();
  if (!kernel) throw new NodevisorError('EBENCH', 'the virtio-net suite needs the test kernel: run `npm run kernel` (nodevisor image build-test-kernel) first');
  const samples = new Map<number, NetBenchSample[]>();
  const total = ctx.repetitions * pairs.length * 2;
  let done = 0;
  for (let rep = 0; rep < ctx.repetitions; rep++) {
    for (const p of pairs) {
      const label = `virtio-net ${p} queue pair${p > 1 ? 's' : ''} (${rep + 1}/${ctx.repetitions})`;
      ctx.progress(done, total, `${label}: veth reference`);
      const veth = await runVethReference(p, params.seconds);
      done++;
      const guest = await runNetGuest({ kernel, pairs: p, seconds: params.seconds, irqchip: params.irqchip, memory: params.memory, onMilestone: (m) => ctx.progress(done, total, `${label}: ${m}`) });
      done++;
      samples.set(p, [...(samples.get(p) ?? []), { guest, veth }]);
    }
  }
  ctx.progress(total, total, 'virtio-net: done');

  const metrics = netBenchMetrics(samples, params, ctx.only);
  const boots = [...samples.values()].flat().map((x) => x.guest.bootSeconds);
  const notes = [
    `each repetition: the veth reference, then a boot of the test kernel (irqchip ${params.irqchip}, ${params.memory}) running both workloads for ${params.seconds} s each, per queue-pair count; VM start to /init ${roundSig(median(boots), 3)} s (median)`,
    'the guest sends; an nvnet server in a network namespace behind the tap receives (stream) or echoes (rr); the reference runs the same nvnet between two namespaces over a veth pair',
  ];
  if (Kvm.isSoftwareVirtualised()) notes.push("this host's KVM virtualises in software (kvm_pvm): the guest kernel's TCP/IP stack and every system call run emulated, so the ratios mostly measure that, not the device");
  return { suite: 'virtio-net', metrics, notes };
}

export const virtioNetSuite: Suite = {
  name: 'virtio-net',
  description: 'TCP stream throughput and request/response latency from a Linux guest over virtio-net on a tap, 1 and 2 queue pairs, against the same traffic between host namespaces over veth',
  run: (ctx) => runVirtioNetBench(ctx),
};
