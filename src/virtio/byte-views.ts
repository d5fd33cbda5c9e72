/**
 * Byte ranges over a list of views (the iovec of a chain), for the few
 * header bytes a device reads or patches in place.
 */

/** Calls `copy` for each piece of [at, at + length) of the concatenated `views`; returns the bytes covered. */
function eachPiece(views: readonly Uint8Array[], at: number, length: number, copy: (view: Uint8Array, viewAt: number, done: number, n: number) => void): number {
  let done = 0;
  for (const v of views) {
    if (done === length) break;
    if (at >= v.length) {
      at -= v.length;
      continue;
    }
    const n = Math.min(v.length - at, length - done);
    copy(v, at, done, n);
    done += n;
    at = 0;
  }
  return done;
}

/** Copies `out.length` bytes from offset `at` of the concatenated `views` into `out`; returns how many there were. */
export function copyFromViews(views: readonly Uint8Array[], at: number, out: Uint8Array): number {
  return eachPiece(views, at, out.length, (v, from, done, n) => out.set(v.subarray(from, from + n), done));
}

/** Copies `data` to offset `at` of the concatenated `views`; returns how many bytes fitted. */
export function copyToViews(views: readonly Uint8Array[], at: number, data: Uint8Array): number {
  return eachPiece(views, at, data.length, (v, to, done, n) => v.set(data.subarray(done, done + n), to));
}
