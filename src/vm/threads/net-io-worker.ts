import { workerData } from 'piscina';
import { native, k } from '../../kvm/addon.js';
import { ioThreadHost, ioThreadViews, type IoThreadData } from './io-thread.js';
import type { ServingTask } from './serving-pool.js';
import { VirtioPciTransport, type VirtioPciState } from '../../virtio/pci-transport.js';
import { VirtioNet, type VirtioNetState } from '../../virtio/net.js';
import { NetPairServer, type NetPairIo } from '../../virtio/net-pair-server.js';
import { NetCtrlServer } from '../../virtio/net-ctrl-server.js';
import { TapQueueIo } from '../../virtio/net-tap.js';
import { StreamPacketIo } from '../../virtio/net-stream.js';

/**
 * An I/O thread (a piscina task) of the virtio-net devices: it serves some
 * queue pairs of one NIC - and the control queue, on the thread of pair 0
 * - until the VM stops. It blocks in poll(2) on the queues' notification
 * eventfds and on the back end's files: a tap queue file per pair, or
 * passt's socket. Packets move between the back end and guest RAM on this
 * thread, and it raises the queues' interrupts through its own irqchip
 * views: no packet passes through the main thread.
 */

/** How a NIC's packets leave the VM: a tap (one file per queue pair) or a stream socket in QEMU's framing (passt). */
export type NetBackendSpec = { readonly kind: 'tap'; readonly name: string; readonly fds: readonly number[] } | { readonly kind: 'stream'; readonly fd: number };

export interface NetIoNic {
  readonly transport: VirtioPciState;
  readonly net: VirtioNetState;
  readonly backend: NetBackendSpec;
}

export interface NetIoData extends IoThreadData {
  readonly nics: readonly NetIoNic[];
}

export interface NetServeTask extends ServingTask {
  readonly nic: number;
  /** The queue pairs this thread serves. */
  readonly pairs: readonly number[];
  /** Whether it serves the control queue too. */
  readonly ctrl: boolean;
}

const data = workerData as NetIoData;
const views = ioThreadViews(data);

/** Serves `task` until the stop eventfd becomes readable. */
export default function serve(task: NetServeTask): void {
  const d = data.nics[task.nic]!;
  const host = ioThreadHost(views, task.report);
  const warn = (m: string): void => host.vm.log('warn', `virtio-net ${d.backend.kind === 'tap' ? `(tap ${d.backend.name})` : '(user)'}: ${m}`);
  let net!: VirtioNet;
  const transport = new VirtioPciTransport(d.transport, host, (ctx) => (net = new VirtioNet(d.net, ctx, warn)));
  const stream = d.backend.kind === 'stream' ? new StreamPacketIo(d.backend.fd) : undefined;
  const io = (pair: number): NetPairIo => stream ?? new TapQueueIo((d.backend as Extract<NetBackendSpec, { kind: 'tap' }>).fds[pair]!);
  const pairs = task.pairs.map((p) => new NetPairServer(p, transport, net, io(p), views.ram, d.net, warn));
  const ctrl = task.ctrl ? new NetCtrlServer(transport, net, views.ram) : undefined;

  // fds: stop, [control], then rx eventfd, tx eventfd and back end per pair.
  const base = ctrl ? 2 : 1;
  const n = base + 3 * pairs.length;
  const fds = new Int32Array(n);
  const events = new Int32Array(n);
  const revents = new Int32Array(n);
  const POLLIN = k('POLLIN');
  const POLLOUT = k('POLLOUT');
  const ERROR = k('POLLERR') | k('POLLHUP') | k('POLLNVAL');
  fds[0] = task.stopFd;
  events.fill(POLLIN);
  if (ctrl) fds[1] = d.net.eventfds[ctrl.queue]!;
  pairs.forEach((s, i) => {
    fds[base + 3 * i] = d.net.eventfds[s.rxQueue]!;
    fds[base + 3 * i + 1] = d.net.eventfds[s.txQueue]!;
  });
  let more = false;
  try {
    for (;;) {
      pairs.forEach((s, i) => {
        const want = s.backendEvents(POLLIN, POLLOUT);
        fds[base + 3 * i + 2] = want ? s.io.fd : -1;
        events[base + 3 * i + 2] = want;
      });
      native.poll(fds, events, revents, more ? 0 : -1);
      if (revents[0]) return;
      more = false;
      if (ctrl && revents[1]) {
        transport.countEventfdNotifications(native.eventfdRead(fds[1]!));
        ctrl.serve();
      }
      pairs.forEach((s, i) => {
        const at = base + 3 * i;
        if (revents[at]) s.notified('rx', native.eventfdRead(fds[at]!));
        if (revents[at + 1]) s.notified('tx', native.eventfdRead(fds[at + 1]!));
        const b = revents[at + 2]!;
        more = s.serve({ rx: (revents[at]! | (b & (POLLIN | ERROR))) !== 0, tx: (revents[at + 1]! | (b & POLLOUT)) !== 0 }) || more;
      });
    }
  } finally {
    task.report.close();
  }
}
