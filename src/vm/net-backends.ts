import { native } from '../kvm/addon.js';
import type { NetBackendCaps } from '../virtio/net-features.js';
import type { NetBackendSpec } from './threads/net-io-worker.js';
import { openTap, tapIsSingleQueue } from '../virtio/net-tap.js';
import { formatMac } from '../virtio/net-mac.js';
import { checkNetOptions, DEFAULT_NET_PAIRS, type NetOptions } from './net-options.js';
import { PasstProcess } from './passt.js';

/** A NIC whose back end is open: what the virtio plan and the I/O threads need. */
export interface OpenNic {
  /** "tap NAME" or "user", for logs and stats. */
  readonly label: string;
  readonly mac: number[];
  readonly pairs: number;
  readonly caps: NetBackendCaps;
  readonly backend: NetBackendSpec;
  readonly passt?: PasstProcess;
  /** Its options as opened: the MAC given or drawn, a tap's queue pairs (what a snapshot records). */
  readonly options: NetOptions;
}

/**
 * Opens every NIC's back end: the tap's queue files (a tap gets one pair
 * per vCPU up to DEFAULT_NET_PAIRS unless `queues` says otherwise, and
 * one if it exists without multi_queue), or a passt process. Errors say
 * which NIC and what to do; what was opened is closed again.
 */
export async function openNics(nets: readonly NetOptions[], vcpus: number): Promise<OpenNic[]> {
  const checked = checkNetOptions(nets);
  const open: OpenNic[] = [];
  try {
    for (const { options: o, mac } of checked) {
      if (o.kind === 'tap') {
        const pairs = o.queues ?? (tapIsSingleQueue(o.name) ? 1 : Math.min(vcpus, DEFAULT_NET_PAIRS));
        const fds = openTap(o.name, pairs);
        open.push({ label: `tap ${o.name}`, mac, pairs, caps: { offloads: true }, backend: { kind: 'tap', name: o.name, fds }, options: { ...o, mac: formatMac(mac), queues: pairs } });
      } else {
        const { passt, fd } = await PasstProcess.start(o.hostfwd ?? []);
        open.push({ label: 'user', mac, pairs: 1, caps: { offloads: false }, backend: { kind: 'stream', fd }, passt, options: { ...o, mac: formatMac(mac) } });
      }
    }
    return open;
  } catch (e) {
    await closeNics(open);
    throw e;
  }
}

/** Closes the back ends (taps created here disappear with their last file; passt is stopped). */
export async function closeNics(nics: readonly OpenNic[]): Promise<void> {
  for (const n of nics) {
    for (const fd of n.backend.kind === 'tap' ? n.backend.fds : [n.backend.fd]) native.close(fd);
    await n.passt?.stop();
  }
}

export function describeNic(n: OpenNic): string {
  return `${n.label}, MAC ${formatMac(n.mac)}, ${n.pairs} queue pair${n.pairs > 1 ? 's' : ''}`;
}
