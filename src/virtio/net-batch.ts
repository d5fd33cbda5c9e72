/** What one turn of a virtio-net queue moved, for the pair's counters. */
export interface NetBatch {
  packets: number;
  /** Frame bytes (headers not counted). */
  bytes: number;
  /** Packets lost on the way: refused by the back end, or not fit for the driver. */
  dropped: number;
  /** Packets that crossed as one GSO packet, and with a partial checksum (NEEDS_CSUM) for the other side to finish. */
  gso: number;
  csum: number;
  /** Whether the driver wants an interrupt for what was returned. */
  interrupt: boolean;
}

export const emptyBatch = (): NetBatch => ({ packets: 0, bytes: 0, dropped: 0, gso: 0, csum: 0, interrupt: false });
