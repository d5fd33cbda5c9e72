import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { NodevisorError, errnoCode } from '../kvm/errors.js';
import { formatSize } from '../memory/layout.js';

/**
 * Files the VMM reads or serves to a guest (kernel, initrd, flat image,
 * disk images): regular files only. A device such as /dev/zero never ends
 * and a FIFO blocks until someone writes, so either would hang a start
 * that nothing could interrupt; they are refused up front, and opens never
 * block (O_NONBLOCK, which regular files ignore).
 */

/** What a non-regular file is, for error messages. */
export function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** "is a directory", or "is a FIFO, not a regular file" and the like. */
export function notRegular(st: Stats): string {
  return st.isDirectory() ? 'is a directory' : `is ${fileKind(st)}, not a regular file`;
}

/** Opens `path` without blocking, whatever it is; the caller checks what it got with fstat. */
export function openNonBlocking(path: string, write: boolean): number {
  return openSync(path, (write ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NONBLOCK);
}

/**
 * Reads a file the guest boots from, with an error (`code`) that names it
 * and says what is wrong: missing, unreadable, not a regular file, empty,
 * or larger than `limit` bytes (the guest's RAM: it could not be loaded).
 * Bytes given directly are only checked for emptiness.
 */
export function readGuestFile(source: string | Uint8Array, what: string, code: string, limit: number): Uint8Array {
  if (typeof source !== 'string') {
    if (source.length === 0) throw new NodevisorError(code, `the ${what} is empty`);
    return source;
  }
  let fd: number;
  try {
    fd = openNonBlocking(source, false);
  } catch (e) {
    const why = errnoCode(e) === 'ENOENT' ? 'does not exist' : errnoCode(e) === 'EACCES' ? 'is not readable (permission denied)' : (e as Error).message;
    throw new NodevisorError(code, `${what} ${source} ${why}`, { cause: e });
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new NodevisorError(code, `${what} ${source} ${notRegular(st)}`);
    if (st.size === 0) throw new NodevisorError(code, `${what} ${source} is empty`);
    if (st.size > limit) throw new NodevisorError(code, `${what} ${source} is ${st.size} bytes, more than the guest's ${formatSize(limit)} of RAM can hold`);
    // Exactly the size fstat saw: a file that grows meanwhile cannot make this read unbounded.
    const bytes = new Uint8Array(st.size);
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, bytes.length - done, done);
      if (n === 0) break;
      done += n;
    }
    if (done === 0) throw new NodevisorError(code, `${what} ${source} is empty`);
    return done === bytes.length ? bytes : bytes.subarray(0, done);
  } catch (e) {
    if (e instanceof NodevisorError) throw e;
    throw new NodevisorError(code, `cannot read ${what} ${source}: ${(e as Error).message}`, { cause: e });
  } finally {
    closeSync(fd);
  }
}
