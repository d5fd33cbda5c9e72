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
  /** Packets that crossed as one GSO packet (TSO/UFO segments, cut up by whoever is on the other side). */
  gso: number;
  /** Packets with a partial checksum for the other side to finish. */
  checksumOffloaded: number;
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
  const direction = (d: 'Tx' | 'Rx'): NetDirectionStats => ({
    packets: sum(NetStat[`${d}Packets`]),
    bytes: sum(NetStat[`${d}Bytes`]),
    dropped: sum(NetStat[`${d}Dropped`]),
    notifications: sum(NetStat[`${d}Notifications`]),
    interrupts: sum(NetStat[`${d}Interrupts`]),
    gso: sum(NetStat[`${d}Gso`]),
    checksumOffloaded: sum(NetStat[`${d}Csum`]),
  });
  return {
    mac: formatMac(state.mac),
    link: model.linkUp ? 'up' : 'down',
    queuePairs: state.pairs,
    activePairs: model.activePairs,
    tx: direction('Tx'),
    rx: direction('Rx'),
  };
}
