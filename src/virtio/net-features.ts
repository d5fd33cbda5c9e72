import { k } from '../kvm/addon.js';
import { featureBit } from './constants.js';
import { NET_HDR_SIZE, NetGso, NetHdrFlag, type NetHeader } from './net-header.js';

/**
 * virtio-net feature negotiation (VIRTIO 1.2, 5.1.3): what the device
 * offers depends on what its back end can carry. A tap device opened with
 * IFF_VNET_HDR takes and gives packets with partial checksums and GSO
 * (TSO, UFO), so those offloads are offered in both directions; a back end
 * that moves plain Ethernet frames (passt) gets none of them, and the
 * guest computes its checksums and segments itself.
 */

/** Device feature bit numbers (5.1.3). */
export const VirtioNetFeature = {
  Csum: 0,
  GuestCsum: 1,
  Mac: 5,
  GuestTso4: 7,
  GuestTso6: 8,
  GuestEcn: 9,
  GuestUfo: 10,
  HostTso4: 11,
  HostTso6: 12,
  HostEcn: 13,
  HostUfo: 14,
  MrgRxbuf: 15,
  Status: 16,
  CtrlVq: 17,
  Mq: 22,
} as const;

/** What a back end can carry besides plain Ethernet frames. */
export interface NetBackendCaps {
  /** Packets cross with their virtio-net header: partial checksums and GSO pass through untouched. */
  readonly offloads: boolean;
}

const F = VirtioNetFeature;
const bits = (...n: number[]): bigint => n.reduce((m, b) => m | featureBit(b), 0n);
/** Offloads of packets the driver sends (the device takes partial checksums and GSO). */
const HOST_OFFLOADS = bits(F.Csum, F.HostTso4, F.HostTso6, F.HostEcn, F.HostUfo);
/** Offloads of packets the driver receives. */
const GUEST_OFFLOADS = bits(F.GuestCsum, F.GuestTso4, F.GuestTso6, F.GuestEcn, F.GuestUfo);
const GUEST_GSO = bits(F.GuestTso4, F.GuestTso6, F.GuestUfo);

/**
 * The device features offered: MAC, link status and mergeable receive
 * buffers always; the control queue and multiqueue when there is more than
 * one queue pair (MQ needs the control queue); the offloads the back end
 * can carry.
 */
export function offeredNetFeatures(caps: NetBackendCaps, maxPairs: number): bigint {
  let f = bits(F.Mac, F.Status, F.MrgRxbuf);
  if (maxPairs > 1) f |= bits(F.CtrlVq, F.Mq);
  if (caps.offloads) f |= HOST_OFFLOADS | GUEST_OFFLOADS;
  return f;
}

export const has = (features: bigint, bit: number): boolean => (features & featureBit(bit)) !== 0n;

/**
 * TUNSETOFFLOAD flags for what the driver accepted: the offloads the tap
 * may hand us for the guest. TSO and UFO need the checksum offload (5.1.3.1),
 * and ECN needs TSO.
 */
export function tunOffloadFlags(accepted: bigint): number {
  if (!has(accepted, F.GuestCsum)) return 0;
  let flags = k('TUN_F_CSUM');
  const tso4 = has(accepted, F.GuestTso4);
  const tso6 = has(accepted, F.GuestTso6);
  if (tso4) flags |= k('TUN_F_TSO4');
  if (tso6) flags |= k('TUN_F_TSO6');
  if ((tso4 || tso6) && has(accepted, F.GuestEcn)) flags |= k('TUN_F_TSO_ECN');
  if (has(accepted, F.GuestUfo)) flags |= k('TUN_F_UFO');
  return flags;
}

/** Ethernet header plus one VLAN tag. */
const ETH_VLAN_HEADER = 18;
/** The MTU without VIRTIO_NET_F_MTU (the driver's default). */
export const NET_DEFAULT_MTU = 1500;
/** The largest GSO packet: an IP datagram of 64 KiB. */
const GSO_MAX = 65535;

/** The most bytes a received packet can take (header included): a whole GSO packet if the driver takes them, else one MTU-sized frame. */
export function maxReceivePacket(accepted: bigint): number {
  return NET_HDR_SIZE + ETH_VLAN_HEADER + ((accepted & GUEST_GSO) !== 0n ? GSO_MAX : NET_DEFAULT_MTU);
}

/**
 * Whether a packet with header `h` may go to a driver that accepted
 * `accepted`: GSO only of the kinds it took, partial checksums only with
 * GUEST_CSUM. Packets the back end queued before the driver negotiated can
 * carry offloads it refused; they are dropped rather than handed over.
 */
export function receivable(h: Pick<NetHeader, 'flags' | 'gsoType'>, accepted: bigint): boolean {
  if (h.flags & NetHdrFlag.NeedsCsum && !has(accepted, F.GuestCsum)) return false;
  if (h.gsoType & NetGso.Ecn && !has(accepted, F.GuestEcn)) return false;
  switch (h.gsoType & ~NetGso.Ecn) {
    case NetGso.None:
      return true;
    case NetGso.TcpV4:
      return has(accepted, F.GuestTso4);
    case NetGso.TcpV6:
      return has(accepted, F.GuestTso6);
    case NetGso.Udp:
      return has(accepted, F.GuestUfo);
    default:
      return false;
  }
}
