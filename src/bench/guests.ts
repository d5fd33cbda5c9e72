import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildGuest, GUEST_LIB, PACKAGE_ROOT } from '../guests/build.js';
import type { FlatImage } from '../vm/options.js';

/** Benchmark guests: guests/bench/<name>.c on the C kit (guests/lib/kit.h, start64.S). */
export const BENCH_GUESTS = join(PACKAGE_ROOT, 'guests', 'bench');

export interface KitGuestOptions {
  /** Extra C sources from guests/bench, linked before the guest's own. */
  with?: string[];
  /** Headers from guests/bench the sources include. */
  headers?: string[];
  defines?: Record<string, string | number>;
  startup?: 'all' | 'sipi';
}

/**
 * Builds guests/bench/<name>.c with the guest kit into a long-mode flat
 * image loaded at 1 MiB (the shipped counterpart of the tests' kitImage).
 * buildGuest caches by the hash of its sources and the kit, not of other
 * headers, so the listed headers' hash goes in as a define: editing one
 * rebuilds the guest instead of reusing a stale binary.
 */
export function kitGuest(name: string, options: KitGuestOptions = {}): FlatImage {
  const loadAddress = 0x100000;
  const defines = { ...options.defines };
  if (options.headers?.length) {
    const h = createHash('sha256');
    for (const header of options.headers) h.update(readFileSync(join(BENCH_GUESTS, header)));
    defines.BENCH_HEADERS_SHA = `0x${h.digest('hex').slice(0, 12)}`;
  }
  const source = buildGuest({
    sources: [join(GUEST_LIB, 'start64.S'), ...(options.with ?? []).map((s) => join(BENCH_GUESTS, s)), join(BENCH_GUESTS, `${name}.c`)],
    loadAddress,
    defines,
  });
  return { source, mode: 'long', loadAddress, startup: options.startup ?? 'all' };
}
