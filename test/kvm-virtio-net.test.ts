import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runVm, kitImage, testImage, type GuestRun } from './helpers/guests.js';
import { NetNamespace, netOrSkip, startPeer, uniqueIfName, type NetPeer } from './helpers/netns.js';
import { createVm, type IrqchipMode, type Vm } from '../src/index.js';

/**
 * virtio-net driven by our own guest (test/guests/virtio-net.c) under real
 * KVM, on a tap device that the VM creates and the test then moves into a
 * network namespace of its own, where a UDP peer (helpers/net-peer.ts)
 * checks every datagram byte for byte and echoes it; the guest checks
 * every echo byte for byte. With one queue pair, and with two on two
 * vCPUs after VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET.
 */

const RESULTS = 0x1000000;
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const GUEST_MAC = '52:54:00:4e:56:02';
const HOST_MAC = '02:4e:56:00:00:01';
const PACKETS = 48;
const bit = (n: number): bigint => 1n << BigInt(n);
const Feature = { Csum: 0, GuestCsum: 1, Mac: 5, GuestTso4: 7, HostTso4: 11, MrgRxbuf: 15, Status: 16, CtrlVq: 17, Mq: 22, EventIdx: 29 };

/** struct report of virtio-net.c. */
interface Report {
  stage: number;
  failedLine: number;
  features: bigint;
  offered: bigint;
  status: number;
  maxPairs: number;
  ctrlAck: number;
  macOk: number;
  cpus: Record<'sent' | 'answered' | 'rxPackets' | 'rxOther' | 'rxIrqs' | 'txIrqs' | 'rxPartial' | 'rxMerged' | 'maxBuffers' | 'txUsed' | 'dups' | 'foreign' | 'waiting', number>[];
}

function report(vm: Vm, pairs: number): Report {
  const r = new Uint32Array(vm.memory.read(RESULTS, 64 * 4).slice().buffer);
  const cpu = (c: number) => {
    const w = r.subarray(16 + 16 * c);
    return { sent: w[0]!, answered: w[1]!, rxPackets: w[2]!, rxOther: w[3]!, rxIrqs: w[4]!, txIrqs: w[5]!, rxPartial: w[6]!, rxMerged: w[7]!, maxBuffers: w[8]!, txUsed: w[9]!, dups: w[10]!, foreign: w[11]!, waiting: w[12]! };
  };
  return {
    stage: r[0]!,
    failedLine: r[1]!,
    features: BigInt(r[3]!) | (BigInt(r[4]!) << 32n),
    status: r[5]!,
    maxPairs: r[6]!,
    ctrlAck: r[7]!,
    macOk: r[8]!,
    offered: BigInt(r[9]!) | (BigInt(r[10]!) << 32n),
    cpus: Array.from({ length: pairs }, (_, c) => cpu(c)),
  };
}

interface EchoTally {
  datagrams: number;
  perCpu: Record<string, number>;
  bad: string[];
}

const STAGE_GATE = 2;

describe('virtio-net under KVM with our own guest on a tap device in a network namespace', function () {
  this.timeout(180000);

  before(function () {
    netOrSkip(this, 'namespaces');
  });

  const cases: Array<{ pairs: number; irqchip: IrqchipMode; guestCsum: boolean }> = [
    { pairs: 1, irqchip: 'user', guestCsum: true },
    { pairs: 1, irqchip: 'kernel', guestCsum: false },
    { pairs: 2, irqchip: 'user', guestCsum: true },
    { pairs: 2, irqchip: 'split', guestCsum: true },
  ];
  for (const c of cases) {
    const csum = c.guestCsum ? 'partial checksums both ways' : 'without GUEST_CSUM, so the host computes every checksum it sends';
    it(`${c.pairs} queue pair${c.pairs > 1 ? 's' : ''} (irqchip "${c.irqchip}"): every datagram reaches the namespace byte for byte and every echo comes back intact, through mergeable buffers, ${csum}`, async () => {
      const ns = NetNamespace.create();
      const tap = uniqueIfName();
      const echo: EchoRun = {};
      let run: GuestRun;
      try {
        run = await runVm({ image: echoImage(c), vcpus: c.pairs, irqchip: c.irqchip, nets: [{ kind: 'tap', name: tap, mac: GUEST_MAC, queues: c.pairs }] }, (vm) => echoThroughNamespace(vm, c.pairs, ns, tap, echo), 150000);
      } finally {
        echo.peer?.stop();
        ns.delete();
      }
      checkEchoRun(run, c, echo.tally);
    });
  }
});

interface EchoCase {
  pairs: number;
  irqchip: IrqchipMode;
  guestCsum: boolean;
}

interface EchoRun {
  peer?: NetPeer;
  tally?: EchoTally;
}

const echoImage = (c: EchoCase) => kitImage('virtio-net', { defines: { PAIRS: c.pairs, PACKETS, GUEST_CSUM: c.guestCsum ? 1 : 0 } });

/** Waits until the guest's stage is at least `stage`; false if the VM stopped first. */
async function reachStage(vm: Vm, stage: number): Promise<boolean> {
  let stopped = false;
  void vm.wait().then(() => (stopped = true));
  while (!stopped && vm.memory.readU32(RESULTS) < stage) await new Promise((r) => setTimeout(r, 20));
  return !stopped;
}

/** The guest set the device up and waits at the gate: the tap moves into the namespace, the peer starts, the gate opens, the echoes run. */
async function echoThroughNamespace(vm: Vm, pairs: number, ns: NetNamespace, tap: string, echo: EchoRun): Promise<void> {
  let stopped = false;
  void vm.wait().then(() => (stopped = true));
  if (!(await reachStage(vm, STAGE_GATE))) return;
  ns.adopt(tap, { address: '10.77.0.1/24', mac: HOST_MAC, neighbours: [{ ip: '10.77.0.2', mac: GUEST_MAC }] });
  echo.peer = await startPeer(ns, ['udp-echo', '10.77.0.1', '7777']);
  vm.memory.writeU32(RESULTS + 8, 1);
  // Each vCPU's first echo is held until that vCPU halts for it: it must come through an interrupt.
  const waiting = (): boolean => report(vm, pairs).cpus.every((x) => x.waiting === 1);
  while (!stopped && !waiting()) await new Promise((r) => setTimeout(r, 20));
  await echo.peer.ask('release');
  await vm.wait();
  echo.tally = await echo.peer.ask<EchoTally>('report');
}

function checkEchoRun(run: GuestRun, c: EchoCase, tally: EchoTally | undefined): void {
  const r = report(run.vm, c.pairs);
  expect(run.result.reason, `${run.result.message}\nguest: ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString(16) : v))}\npeer: ${JSON.stringify(tally)}\nlogs: ${run.logs.join('\n')}`).to.deep.equal({ kind: 'debug-exit', code: 0x10 });
  expect(r.macOk, 'the MAC in the configuration space').to.equal(1);
  expect(r.status, 'link up').to.equal(1);
  expect(r.maxPairs).to.equal(c.pairs);
  for (const f of [Feature.Csum, Feature.GuestCsum, Feature.HostTso4, Feature.GuestTso4, Feature.MrgRxbuf, Feature.Mac, Feature.Status]) expect(r.offered & bit(f), `tap offers feature ${f}`).to.equal(bit(f));
  expect(r.offered & bit(Feature.Mq), 'MQ only with several pairs').to.equal(c.pairs > 1 ? bit(Feature.Mq) : 0n);
  if (c.pairs > 1) expect(r.ctrlAck, 'VQ_PAIRS_SET acknowledged').to.equal(0);
  // The host saw every datagram once, intact; the guest saw every echo once, intact.
  expect(tally!.bad).to.deep.equal([]);
  expect(tally!.datagrams).to.equal(c.pairs * PACKETS);
  for (let p = 0; p < c.pairs; p++) expect(tally!.perCpu[String(p)], `datagrams from vCPU ${p}`).to.equal(PACKETS);
  const cpus = r.cpus;
  expect(cpus.reduce((n, x) => n + x.rxPackets, 0)).to.equal(c.pairs * PACKETS);
  for (const [p, x] of cpus.entries()) {
    expect(x, `vCPU ${p}`).to.include({ sent: PACKETS, answered: PACKETS, dups: 0, txUsed: PACKETS });
    expect(x.rxIrqs, `vCPU ${p} receive interrupts`).to.be.at.least(1);
  }
  expect(cpus.reduce((n, x) => n + x.rxMerged, 0), 'echoes that spanned several receive buffers').to.be.greaterThan(0);
  // With GUEST_CSUM the tap hands over the host's partial checksums; without it (TUNSETOFFLOAD 0) the guest verified every one.
  expect(r.features & bit(Feature.GuestCsum)).to.equal(c.guestCsum ? bit(Feature.GuestCsum) : 0n);
  if (c.guestCsum) expect(cpus.reduce((n, x) => n + x.rxPartial, 0), 'echoes with NEEDS_CSUM').to.be.greaterThan(0);
  else expect(cpus.reduce((n, x) => n + x.rxPartial, 0), 'echoes with NEEDS_CSUM').to.equal(0);
  expect(Math.max(...cpus.map((x) => x.maxBuffers)), 'a 1514-byte frame in 256-byte buffers').to.equal(6);
  const net = run.vm.stats().virtio[0]!.net!;
  expect(net).to.include({ mac: GUEST_MAC, link: 'up', queuePairs: c.pairs, activePairs: c.pairs });
  expect(net.tx).to.include({ packets: c.pairs * PACKETS, dropped: 0 });
  expect(net.rx.packets).to.equal(c.pairs * PACKETS);
  if (c.pairs > 1) {
    // tun steers a flow's packets to the queue the guest sent it from.
    for (const [p, x] of cpus.entries()) expect(x.rxPackets, `echoes on pair ${p}`).to.be.greaterThan(0);
  }
}

describe('virtio-net in a snapshot under KVM, with our own guest on a tap device', function () {
  this.timeout(180000);

  before(function () {
    netOrSkip(this, 'namespaces');
  });

  // The snapshot is taken at the gate: the driver has negotiated (offloads, and with 2 pairs VQ_PAIRS_SET) and will not again.
  for (const c of [{ pairs: 2, irqchip: 'user' as const, guestCsum: true }, { pairs: 1, irqchip: 'kernel' as const, guestCsum: false }]) {
    it(`restores onto a new tap (${c.pairs} queue pair${c.pairs > 1 ? 's' : ''}, irqchip "${c.irqchip}"): its queue files attached and offloads set as the driver left them, every datagram and echo intact`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'nodevisor-net-snapshot-'));
      const ns = NetNamespace.create();
      const echo: EchoRun = {};
      let run: GuestRun;
      try {
        const first = createVm({ image: echoImage(c), memory: '64M', vcpus: c.pairs, irqchip: c.irqchip, nets: [{ kind: 'tap', name: uniqueIfName(), mac: GUEST_MAC, queues: c.pairs }] });
        await first.start();
        try {
          expect(await reachStage(first, STAGE_GATE), 'the guest reached the gate').to.equal(true);
          await first.snapshot(dir, { resume: false });
        } finally {
          await first.stop();
        }
        // Another tap: the first went with its VM. The MAC and queue pairs come from the snapshot.
        const tap = uniqueIfName();
        run = await runVm({ restore: dir, nets: [{ kind: 'tap', name: tap }] }, (vm) => echoThroughNamespace(vm, c.pairs, ns, tap, echo), 150000);
      } finally {
        echo.peer?.stop();
        ns.delete();
        rmSync(dir, { recursive: true, force: true });
      }
      checkEchoRun(run, c, echo.tally);
    });
  }
});

describe('virtio-net NICs and their errors', function () {
  this.timeout(60000);

  before(function () {
    netOrSkip(this, 'namespaces');
  });

  it('gives each NIC its own PCI function, MAC, back end and queue pairs', async () => {
    const taps = [uniqueIfName(), uniqueIfName()];
    const vm = createVm({ image: testImage('halt-forever'), memory: '16M', vcpus: 2, nets: [{ kind: 'tap', name: taps[0]!, mac: '52:54:00:00:00:0a' }, { kind: 'tap', name: taps[1]!, queues: 1 }] });
    await vm.start();
    try {
      const nets = vm.stats().virtio.filter((f) => f.net);
      expect(nets.map((f) => [f.device, f.net!.backend, f.net!.queuePairs])).to.deep.equal([
        [1, `tap ${taps[0]}`, 2],
        [2, `tap ${taps[1]}`, 1],
      ]);
      expect(nets[0]!.net!.mac).to.equal('52:54:00:00:00:0a');
      expect(nets[1]!.net!.mac).to.match(/^52:54:00:/);
    } finally {
      await vm.stop();
    }
  });

  it('CLI: a tap it may not create says CAP_NET_ADMIN is needed (exit status 64)', async () => {
    const r = await new Promise<{ status: number; stderr: string }>((resolve) => {
      // Root without CAP_NET_ADMIN (dropped from the bounding set) cannot create a tap.
      execFile('setpriv', ['--bounding-set', '-net_admin', '--inh-caps', '-net_admin', process.execPath, CLI, 'run', '--net', `tap=${uniqueIfName()}`], { timeout: 30000 }, (err, _o, stderr) =>
        resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr }),
      );
    });
    expect(r.status).to.equal(64);
    expect(r.stderr).to.match(/^nodevisor: tap device nv[0-9a-f]+: no permission: opening or creating a tap device needs CAP_NET_ADMIN \(run as root, or create it for your user with `ip tuntap add NAME mode tap user \$USER`\)\n$/);
  });
});
