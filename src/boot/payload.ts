import { gunzipSync } from 'node:zlib';
import { NodevisorError } from '../kvm/errors.js';
import { hex } from './bytes.js';
import type { BzImage } from './bzimage.js';
import { decodeLz4Legacy } from './lz4.js';
import { isElf } from './vmlinux.js';

/**
 * The bzImage's compressed kernel (payload_offset/payload_length). The VMM
 * unpacks what it can decode (gzip, LZ4, uncompressed) into the vmlinux
 * ELF: on software-virtualising hosts the kernel's own decompressor runs
 * emulated, seconds of boot time that a VMM-side unpack (tens of
 * milliseconds) saves. Other compressions are left to that decompressor.
 *
 * A payload that is not what a bzImage carries is an error here, with the
 * reason: in the guest it would fail the same way, but silently and
 * minutes into an emulated boot (or, with a wrong setup_sects, as a triple
 * fault in what is not the kernel's entry at all).
 */

/** Throws EKERNEL unless the payload starts with a compression the kernel could have been built with. */
export function checkPayload(bz: BzImage, source: string): void {
  if (bz.compression !== 'unknown') return;
  const at = bz.setupSize + bz.payloadOffset;
  const payload = bz.kernel.subarray(bz.payloadOffset, bz.payloadOffset + Math.min(bz.payloadLength, 8));
  const bytes = payload.length ? Array.from(payload, (b) => b.toString(16).padStart(2, '0')).join(' ') : 'none: payload_length is 0';
  throw new NodevisorError(
    'EKERNEL',
    `${source} has no compressed kernel where its header puts it (file offset ${hex(at)}, bytes ${bytes}): the file is corrupt, or setup_sects (${bz.setupSects} sectors of setup code) is wrong`,
  );
}

/**
 * The vmlinux ELF inside `bz`, or null for a compression only the kernel
 * decodes (bzip2, LZMA, XZ, LZO, zstd). Throws EKERNEL, naming `source`
 * and why, when the payload is corrupt.
 */
export function unpackBzImage(bz: BzImage, source: string): Uint8Array | null {
  checkPayload(bz, source);
  const payload = bz.kernel.subarray(bz.payloadOffset, bz.payloadOffset + bz.payloadLength);
  if (bz.compression !== 'gzip' && bz.compression !== 'lz4' && bz.compression !== 'none') return null;
  const fail = (why: string): NodevisorError => new NodevisorError('EKERNEL', `${source} has a corrupt ${bz.compression === 'none' ? 'uncompressed' : bz.compression} kernel payload: ${why}`);
  if (payload.length < 8) throw fail(`it is only ${payload.length} bytes`);
  // The kernel build appends the uncompressed size (little-endian u32; gzip's own ISIZE is the same field).
  const size = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(payload.length - 4, true);
  let out: Uint8Array;
  try {
    out = bz.compression === 'lz4' ? decodeLz4Legacy(payload, size) : bz.compression === 'gzip' ? gunzipSync(payload, { maxOutputLength: Math.max(size, 1) }) : payload;
  } catch (e) {
    throw fail(`it does not unpack (${(e as Error).message})`);
  }
  if (!isElf(out)) throw fail(`it unpacks to ${out.length} bytes that are not an ELF vmlinux`);
  return out;
}
