import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { buildInitramfs } from '../images/initramfs.js';
import { guestProgram } from '../images/guest-programs.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { NetDirectionStats, NetStats } from '../virtio/net-stats.js';
import type { Vm } from '../vm/vm.js';
import { runLinuxGuest } from './linux-guest.js';
import { parseMetricLines, type WorkloadMetric } from './linux-protocol.js';
import { NetNamespace, uniqueIfName } from './netns.js';
import { readFileSync } from 'node:fs';

/**
 * One measurement of `nodevisor bench virtio-net`: nvnet's TCP stream and
 * request/response workloads (guests/linux/nvnet.c) from a Linux guest
 * over a tap to an nvnet server in a network namespace, or - the
 * reference - from one namespace to another over a veth pair, the same
 * program on both sides.
 */

const PORT = 7100;
const SERVER_IP = '10.80.0.1';
const GUEST_IP = '10.80.0.2';
const BOOT_BUDGET_MS = 600_000;

export interface NetWorkloadResult {
  /** MiB/s delivered by the stream workload. */
  stream: number;
  /** Mean round trip of the request/response workload, us. */
  rrLatencyUs: number;
}

/** What the device saw during each workload. */
export interface NetDeviceCounts {
  tx: NetDirectionStats;
  rx: NetDirectionStats;
}

export interface NetGuestResult extends NetWorkloadResult {
  device: { stream: NetDeviceCounts; rr: NetDeviceCounts };
  bootSeconds: number;
}

function value(metrics: readonly WorkloadMetric[], name: string, what: string): number {
  const m = metrics.find((x) => x.name === name);
  if (!m) throw new Error(`${what} printed no "${name}" metric`);
  return m.value;
}

/** Starts `nvnet server` in `ns` and waits until it listens. */
async function startServer(ns: NetNamespace, nvnet: string): Promise<ChildProcess> {
  const child = ns.spawn(nvnet, ['server', String(PORT)]);
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (l) => l.startsWith('nvnet: listening') && resolve());
    child.on('exit', (code) => reject(new Error(`nvnet server exited with status ${code}: ${stderr}`)));
  });
  return child;
}

/** Both workloads between two namespaces joined by a veth pair: what the host does without a VM. */
export async function runVethReference(pairs: number, seconds: number): Promise<NetWorkloadResult> {
  const nvnet = guestProgram('nvnet');
  const server = NetNamespace.create();
  const client = NetNamespace.create();
  let child: ChildProcess | undefined;
  try {
    server.linkTo(client, { address: `${SERVER_IP}/24`, otherAddress: `${GUEST_IP}/24` });
    child = await startServer(server, nvnet);
    const run = (workload: string): WorkloadMetric[] => parseMetricLines(client.exec(nvnet, [workload, SERVER_IP, String(PORT), String(seconds), String(pairs)]));
    const stream = run('stream');
    const rr = run('rr');
    return { stream: value(stream, 'stream', 'nvnet stream over veth'), rrLatencyUs: value(rr, 'rr-latency', 'nvnet rr over veth') };
  } finally {
    child?.kill('SIGKILL');
    server.delete();
    client.delete();
  }
}

function minus(a: NetDirectionStats, b: NetDirectionStats): NetDirectionStats {
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof NetDirectionStats)[]) out[k] = a[k] - b[k];
  return out;
}

/**
 * A Linux guest with `pairs` vCPUs and a tap of as many queue pairs, moved
 * into a namespace where nvnet's server listens; the guest configures eth0
 * and runs both workloads with a connection per vCPU. The device's
 * counters are sampled as each workload starts and ends.
 */
export async function runNetGuest(o: { kernel: string; pairs: number; seconds: number; irqchip: IrqchipMode; memory: string; onMilestone?: (label: string) => void }): Promise<NetGuestResult> {
  const nvnet = guestProgram('nvnet');
  const ns = NetNamespace.create();
  const tap = uniqueIfName();
  let child: ChildProcess | undefined;
  const client = (w: string): string => `/bin/nvnet ${w} ${SERVER_IP} ${PORT} ${o.seconds} ${o.pairs}`;
  const initrd = buildInitramfs({
    busybox: true,
    files: [{ path: 'bin/nvnet', data: readFileSync(nvnet), mode: 0o755 }],
    runList: ['ip link set eth0 up', `ip addr add ${GUEST_IP}/24 dev eth0`, client('stream'), client('rr')],
  });
  const samples = new Map<string, NetStats>();
  const sample = (line: string, vm: Vm): void => {
    const m = /^nodevisor-init: run (\d+)(: | exited)/.exec(line);
    const net = vm.stats().virtio.find((f) => f.net)?.net;
    if (m && net) samples.set(`${m[1]}${m[2] === ': ' ? 'start' : 'end'}`, net);
  };
  try {
    const run = await runLinuxGuest({
      kernel: o.kernel,
      initrd,
      vcpus: o.pairs,
      memory: o.memory,
      irqchip: o.irqchip,
      disks: [],
      nets: [{ kind: 'tap', name: tap, queues: o.pairs }],
      timeoutMs: BOOT_BUDGET_MS,
      onMilestone: o.onMilestone,
      started: async () => {
        ns.adopt(tap, { address: `${SERVER_IP}/24` });
        child = await startServer(ns, nvnet);
      },
      onLine: sample,
    });
    const counts = (index: number): NetDeviceCounts => {
      const a = samples.get(`${index}start`);
      const b = samples.get(`${index}end`);
      if (!a || !b) throw new Error(`no device counters around run-list command ${index}`);
      return { tx: minus(b.tx, a.tx), rx: minus(b.rx, a.rx) };
    };
    const [stream, rr] = [run.commands[2], run.commands[3]];
    if (!stream || !rr) throw new Error('the guest did not run both nvnet workloads');
    return {
      stream: value(stream.metrics, 'stream', 'nvnet stream in the guest'),
      rrLatencyUs: value(rr.metrics, 'rr-latency', 'nvnet rr in the guest'),
      device: { stream: counts(3), rr: counts(4) },
      bootSeconds: run.bootSeconds,
    };
  } finally {
    child?.kill('SIGKILL');
    ns.delete();
  }
}
