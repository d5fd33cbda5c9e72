/**
 * Byte ranges over a list of views (the iovec of a chain), for the few
 * header bytes a device reads or patches in place.
 */

/** Copies `out.length` bytes from offset `at` of the concatenated `views` into `out`; returns how many there were. */
export function copyFromViews(views: readonly Uint8Array[], at: number, out: Uint8Array): number {
  let done = 0;
  for (const v of views) {
    if (done === out.length) break;
    if (at >= v.length) {
      at -= v.length;
      continue;
    }
    const n = Math.min(v.length - at, out.length - done);
    out.set(v.subarray(at, at + n), done);
    done += n;
    at = 0;
  }
  return done;
}

/** Copies `data` to offset `at` of the concatenated `views`; returns how many bytes fitted. */
export function copyToViews(views: readonly Uint8Array[], at: number, data: Uint8Array): number {
  let done = 0;
  for (const v of views) {
    if (done === data.length) break;
    if (at >= v.length) {
      at -= v.length;
      continue;
    }
    const n = Math.min(v.length - at, data.length - done);
    v.set(data.subarray(done, done + n), at);
    done += n;
    at = 0;
  }
  return done;
}

/** Total bytes of `views`. */
export function viewsLength(views: readonly Uint8Array[]): number {
  let n = 0;
  for (const v of views) n += v.length;
  return n;
}
