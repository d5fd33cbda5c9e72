import { gunzipSync } from 'node:zlib';
import type { BzImage } from './bzimage.js';
import { decodeLz4Legacy } from './lz4.js';
import { isElf } from './vmlinux.js';

/**
 * The bzImage's compressed kernel (payload_offset/payload_length), unpacked
 * by the VMM into the vmlinux ELF, or null for a compression we do not
 * decode or cannot decode (the kernel's own decompressor then runs in the guest). On
 * software-virtualising hosts that decompressor runs emulated: seconds of
 * boot time a VMM-side unpack (tens of milliseconds) saves.
 */
export function unpackBzImage(bz: BzImage): Uint8Array | null {
  const payload = bz.kernel.subarray(bz.payloadOffset, bz.payloadOffset + bz.payloadLength);
  if (payload.length < 8) return null;
  // The kernel build appends the uncompressed size (little-endian u32).
  const size = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(payload.length - 4, true);
  let out: Uint8Array;
  try {
    switch (bz.compression) {
      case 'lz4':
        out = decodeLz4Legacy(payload, size);
        break;
      case 'gzip':
        out = gunzipSync(payload);
        break;
      case 'none':
        out = payload;
        break;
      default:
        return null;
    }
  } catch {
    // Undecodable here: the kernel's own decompressor gets its chance (and reports).
    return null;
  }
  return isElf(out) ? out : null;
}
