/**
 * Numbers from the VIRTIO 1.2 specification (OASIS, 2022) that the PCI
 * transport, the split virtqueue and the devices share.
 */

/** Device status bits (2.1). */
export const VirtioStatus = {
  Acknowledge: 1,
  Driver: 2,
  DriverOk: 4,
  FeaturesOk: 8,
  DeviceNeedsReset: 0x40,
  Failed: 0x80,
} as const;

/** Feature bits every device here may offer (6): bit numbers. */
export const VirtioFeature = {
  RingIndirectDesc: 28,
  RingEventIdx: 29,
  Version1: 32,
} as const;

/** Virtio device IDs (5). */
export const VirtioDeviceId = { Network: 1, Block: 2, Console: 3, Entropy: 4 } as const;

/** Split virtqueue descriptor flags (2.7.5). */
export const VirtqDesc = { Next: 1, Write: 2, Indirect: 4 } as const;
/** virtq_avail.flags: the driver does not want interrupts (2.7.7). */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** virtq_used.flags: the device does not want notifications (2.7.10). */
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** The largest queue size a split virtqueue may have (2.7). */
export const VIRTQ_MAX_SIZE = 32768;
/** The MSI-X vector value that means "no vector" (4.1.5.1.2). */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** A feature bit as a mask over a 64-bit feature word. */
export function featureBit(bit: number): bigint {
  return 1n << BigInt(bit);
}
