import { formatMac } from './net-mac.js';
import { NetStat, type VirtioNet, type VirtioNetState } from './net.js';

/** One direction of a NIC's traffic, summed over its queue pairs. */
export interface NetDirectionStats {
  packets: number;
  /** Frame bytes (virtio-net headers not counted). */
  bytes: number;
  dropped: number;
  /** Queue notifications from the driver (through ioeventfds or exits). */
  notifications: number;
  /** Interrupts raised to the driver. */
  interrupts: number;
}

/** What `vm.stats().virtio` says of a virtio-net function besides the transport's counters. */
export interface NetStats {
  mac: string;
  link: 'up' | 'down';
  queuePairs: number;
  /** Queue pairs the driver uses (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET). */
  activePairs: number;
  tx: NetDirectionStats;
  rx: NetDirectionStats;
}

export function netStats(state: VirtioNetState, model: VirtioNet): NetStats {
  const s = new Float64Array(state.stats);
  const sum = (slot: number): number => {
    let n = 0;
    for (let p = 0; p < state.pairs; p++) n += s[p * NetStat.COUNT + slot]!;
    return n;
  };
  return {
    mac: formatMac(state.mac),
    link: model.linkUp ? 'up' : 'down',
    queuePairs: state.pairs,
    activePairs: model.activePairs,
    tx: { packets: sum(NetStat.TxPackets), bytes: sum(NetStat.TxBytes), dropped: sum(NetStat.TxDropped), notifications: sum(NetStat.TxNotifications), interrupts: sum(NetStat.TxInterrupts) },
    rx: { packets: sum(NetStat.RxPackets), bytes: sum(NetStat.RxBytes), dropped: sum(NetStat.RxDropped), notifications: sum(NetStat.RxNotifications), interrupts: sum(NetStat.RxInterrupts) },
  };
}
