/** Byte patterns the virtio-net tests share between guests, peers and checks. */

/** virtio-net.c's payload_byte(). */
export function payloadByte(cpu: number, seq: number, i: number): number {
  return ((Math.imul(i, 0x9e3779b1) + Math.imul(seq, 0x85ebca77) + Math.imul(cpu, 0x27d4eb2f)) >>> 24) & 0xff;
}

/** Deterministic bytes for the TCP tests: what tcp-file serves, and what the Linux guest's own copy must hash to. */
export function filePattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = 0x12345678;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
