/**
 * The header in front of every virtio-net packet (VIRTIO 1.2, 5.1.6:
 * struct virtio_net_hdr, with num_buffers as every VERSION_1 device has
 * it), 12 bytes, little-endian. A tap device opened with IFF_VNET_HDR and
 * a header size of 12 reads and writes exactly this layout, so packets
 * move between guest buffers and the tap with no translation.
 */

export const NET_HDR_SIZE = 12;

/** virtio_net_hdr.flags. */
export const NetHdrFlag = { NeedsCsum: 1, DataValid: 2, RscInfo: 4 } as const;

/** virtio_net_hdr.gso_type (the ECN bit is or'ed in). */
export const NetGso = { None: 0, TcpV4: 1, Udp: 3, TcpV6: 4, UdpL4: 5, Ecn: 0x80 } as const;

/** Byte offsets of the fields. */
export const NetHdr = { Flags: 0, GsoType: 1, HdrLen: 2, GsoSize: 4, CsumStart: 6, CsumOffset: 8, NumBuffers: 10 } as const;

export interface NetHeader {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
  numBuffers: number;
}

export function decodeNetHeader(bytes: Uint8Array): NetHeader {
  if (bytes.length < NET_HDR_SIZE) throw new RangeError(`a virtio-net header is ${NET_HDR_SIZE} bytes (got ${bytes.length})`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, NET_HDR_SIZE);
  return {
    flags: v.getUint8(NetHdr.Flags),
    gsoType: v.getUint8(NetHdr.GsoType),
    hdrLen: v.getUint16(NetHdr.HdrLen, true),
    gsoSize: v.getUint16(NetHdr.GsoSize, true),
    csumStart: v.getUint16(NetHdr.CsumStart, true),
    csumOffset: v.getUint16(NetHdr.CsumOffset, true),
    numBuffers: v.getUint16(NetHdr.NumBuffers, true),
  };
}

export function encodeNetHeader(h: Partial<NetHeader>): Uint8Array {
  const out = new Uint8Array(NET_HDR_SIZE);
  const v = new DataView(out.buffer);
  v.setUint8(NetHdr.Flags, h.flags ?? 0);
  v.setUint8(NetHdr.GsoType, h.gsoType ?? NetGso.None);
  v.setUint16(NetHdr.HdrLen, h.hdrLen ?? 0, true);
  v.setUint16(NetHdr.GsoSize, h.gsoSize ?? 0, true);
  v.setUint16(NetHdr.CsumStart, h.csumStart ?? 0, true);
  v.setUint16(NetHdr.CsumOffset, h.csumOffset ?? 0, true);
  v.setUint16(NetHdr.NumBuffers, h.numBuffers ?? 0, true);
  return out;
}
