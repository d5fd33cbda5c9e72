import { readChain, writeChain } from './chain-io.js';
import type { GuestRanges } from './guest-ranges.js';
import { VirtqueueError, type DescriptorChain } from './queue.js';

/**
 * The virtio-net control queue (VIRTIO 1.2, 5.1.6.5): a command is a
 * readable class byte, command byte and its data, then one writable ack
 * byte. Only multiqueue is offered (VIRTIO_NET_F_MQ):
 * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET picks how many queue pairs carry
 * packets. Any other command is answered VIRTIO_NET_ERR.
 */

export const NetCtrl = { ClassMq: 4, MqVqPairsSet: 0, Ok: 0, Err: 1 } as const;

/** Carries out one control command; returns the used length (the ack byte). */
export function executeNetCtrl(ram: GuestRanges, chain: DescriptorChain, setPairs: (pairs: number) => boolean): number {
  if (chain.readableLength < 2 || chain.writableLength < 1) {
    throw new VirtqueueError(`control chain ${chain.head} lacks its class, command or ack byte (${chain.readableLength} readable, ${chain.writableLength} writable)`);
  }
  const [cls, cmd] = readChain(ram, chain.readable, 0, 2);
  let ack: number = NetCtrl.Err;
  if (cls === NetCtrl.ClassMq && cmd === NetCtrl.MqVqPairsSet && chain.readableLength >= 4) {
    const data = readChain(ram, chain.readable, 2, 2);
    if (setPairs(data[0]! | (data[1]! << 8))) ack = NetCtrl.Ok;
  }
  writeChain(ram, chain.writable, chain.writableLength - 1, Uint8Array.of(ack));
  return 1;
}
