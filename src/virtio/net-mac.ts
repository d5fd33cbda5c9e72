import { randomBytes } from 'node:crypto';
import { NodevisorError } from '../kvm/errors.js';

/** MAC addresses of virtio-net NICs: parsed from the options, shown in stats and logs. */

const badMac = (message: string): NodevisorError => new NodevisorError('ENET', message);

/** Parses a MAC address "xx:xx:xx:xx:xx:xx" (or with '-'); it must be a unicast, non-zero address. */
export function parseMac(text: string): number[] {
  const m = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(text);
  if (!m) throw badMac(`bad MAC address "${text}": write six hex bytes separated by colons, e.g. 52:54:00:12:34:56`);
  const bytes = [m[1], m[3], m[4], m[5], m[6], m[7]].map((h) => Number.parseInt(h!, 16));
  if (bytes[0]! & 1) throw badMac(`bad MAC address "${text}": it is a multicast address (the first byte is odd); a NIC needs a unicast one, e.g. 52:54:00:12:34:56`);
  if (bytes.every((b) => b === 0)) throw badMac(`bad MAC address "${text}": all zeroes`);
  return bytes;
}

export function formatMac(bytes: readonly number[]): string {
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** QEMU's prefix 52:54:00 (locally administered, unicast) and three random bytes. */
export function randomMac(): number[] {
  return [0x52, 0x54, 0x00, ...randomBytes(3)];
}
