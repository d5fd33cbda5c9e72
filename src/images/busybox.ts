/**
 * Debian's busybox-static, fetched with `apt-get download` (no root, nothing
 * installed) and kept in cacheDir()/busybox/: a shell and the usual tools in
 * one static binary that runs in any guest initramfs.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodevisorError } from '../kvm/errors.js';
import { cacheDir } from './cache.js';
import { BUSYBOX_PACKAGE, copyFromDeb, debPackageVersion, downloadDeb, requireDebianTools } from './debian-apt.js';
import { isStaticX86_64Elf } from './elf-info.js';

export interface FetchBusyboxOptions {
  /** Where it is kept; default cacheDir()/busybox. */
  cacheDir?: string;
  log?: (line: string) => void;
}

/** The cached busybox binary if one has been fetched, else undefined. */
export function cachedBusybox(dir: string = join(cacheDir(), 'busybox')): string | undefined {
  if (!existsSync(dir)) return undefined;
  const have = readdirSync(dir).filter((f) => /^busybox-\S+$/.test(f) && !f.endsWith('.tmp')).sort();
  return have.length ? join(dir, have[have.length - 1]!) : undefined;
}

/** The path of a static busybox: the cached one, else Debian's busybox-static fetched now. */
export function fetchBusybox(options: FetchBusyboxOptions = {}): string {
  const dir = options.cacheDir ?? join(cacheDir(), 'busybox');
  const have = cachedBusybox(dir);
  if (have) return have;
  requireDebianTools();
  const debs = join(dir, 'debs');
  mkdirSync(debs, { recursive: true });
  const deb = downloadDeb(BUSYBOX_PACKAGE, debs, options.log ?? ((): void => {}));
  const out = join(dir, `busybox-${debPackageVersion(deb)}`);
  copyFromDeb(deb, 'bin/busybox', out);
  chmodSync(out, 0o755);
  if (!isStaticX86_64Elf(readFileSync(out))) throw new NodevisorError('EBUSYBOX', `${out} (from ${deb}) is not a static x86-64 executable`);
  return out;
}

/**
 * The applets a busybox binary provides, as "bin/sh", "sbin/poweroff", ...
 * (`busybox --list-full`: a static x86-64 busybox runs on the host too).
 */
export function busyboxApplets(busybox: string): string[] {
  let out: string;
  try {
    out = execFileSync(busybox, ['--list-full'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new NodevisorError('EBUSYBOX', `cannot list the applets of ${busybox}: ${(e as Error).message}`, { cause: e });
  }
  return out.split('\n').map((l) => l.trim().replace(/^\/+/, '')).filter((l) => l && !l.includes('..'));
}
