/**
 * A guest image built from Debian's own packages: the stock cloud kernel
 * (linux-image-<release>-cloud-amd64) and an initramfs around busybox-static
 * whose /init is guests/linux/init.sh. It shows nodevisor booting an
 * unmodified distribution kernel; the small test kernel (test-kernel.ts)
 * remains the quick one.
 *
 * Cache layout (cacheDir()/debian/):
 *   debs/*.deb                    what apt-get download fetched
 *   vmlinuz-<release>             the kernel, copied out of its package
 *   busybox-<deb version>         the static busybox, copied out of its package
 *   initrd-<hash>.cpio.gz         per archive content (init.sh, busybox, layout)
 *   image.json                    which kernel and busybox the cache holds
 * Once image.json exists nothing is downloaded again (delete the folder to
 * pick up a newer kernel); a changed init.sh only rebuilds the initrd.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cacheDir } from './cache.js';
import { BUSYBOX_PACKAGE, copyFromDeb, debPackageVersion, downloadDeb, kernelRelease, requireDebianTools, resolveKernelPackage, writeAtomic } from './debian-apt.js';
import { debianInitramfsCpio, INIT_SCRIPT } from './debian-initramfs.js';

export interface DebianImage {
  /** Path of the stock kernel's bzImage. */
  kernel: string;
  /** Path of the gzip'd cpio initramfs. */
  initrd: string;
  /** The kernel release, e.g. "6.1.0-56-cloud-amd64". */
  version: string;
}

export interface FetchDebianOptions {
  /** Where the image is kept; default cacheDir()/debian. */
  cacheDir?: string;
  /** Progress lines (downloads, extraction); default silent. */
  log?: (line: string) => void;
}

interface Manifest {
  version: string;
  /** File names inside the cache folder. */
  kernel: string;
  busybox: string;
}

/** Where fetchDebianImage keeps the image by default: cacheDir()/debian. */
export function debianCacheDir(): string {
  return join(cacheDir(), 'debian');
}

function readManifest(dir: string): Manifest | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, 'image.json'), 'utf8')) as Partial<Manifest>;
    if (typeof m.version !== 'string' || typeof m.kernel !== 'string' || typeof m.busybox !== 'string') return undefined;
    if (!existsSync(join(dir, m.kernel)) || !existsSync(join(dir, m.busybox))) return undefined;
    return m as Manifest;
  } catch {
    return undefined;
  }
}

/**
 * The initrd and its file name, which hashes the uncompressed archive, so any
 * change to init.sh, busybox or the layout gets a new file (archiving is
 * cheap; only the gzip is left for when the file is missing).
 */
function initrdFor(dir: string, busybox: Uint8Array): { path: string; cpio: Uint8Array } {
  const cpio = debianInitramfsCpio(busybox, readFileSync(INIT_SCRIPT));
  const hash = createHash('sha256').update(cpio).digest('hex').slice(0, 12);
  return { path: join(dir, `initrd-${hash}.cpio.gz`), cpio };
}

/** Deletes initrds built from an older init.sh, busybox or layout: nothing uses them any more. */
function removeStaleInitrds(dir: string, keep: string): void {
  for (const f of readdirSync(dir)) {
    if (/^initrd-[0-9a-f]{12}\.cpio\.gz$/.test(f) && f !== keep) rmSync(join(dir, f), { force: true });
  }
}

/** The image's paths if it has been fetched (and its initrd matches the current init.sh), else undefined. */
export function debianImagePaths(options: Pick<FetchDebianOptions, 'cacheDir'> = {}): DebianImage | undefined {
  const dir = options.cacheDir ?? debianCacheDir();
  const m = readManifest(dir);
  if (!m) return undefined;
  const initrd = initrdFor(dir, readFileSync(join(dir, m.busybox))).path;
  return existsSync(initrd) ? { kernel: join(dir, m.kernel), initrd, version: m.version } : undefined;
}

/** Downloads the kernel and busybox packages and copies what the image needs out of them. */
function fetchPackages(dir: string, log: (line: string) => void): Manifest {
  requireDebianTools();
  const debs = join(dir, 'debs');
  mkdirSync(debs, { recursive: true });
  const kernelPackage = resolveKernelPackage();
  const version = kernelRelease(kernelPackage);
  log(`the cloud kernel is ${kernelPackage}`);
  const kernelDeb = downloadDeb(kernelPackage, debs, log);
  const busyboxDeb = downloadDeb(BUSYBOX_PACKAGE, debs, log);

  const kernel = `vmlinuz-${version}`;
  log(`extracting ${basename(kernelDeb)}`);
  copyFromDeb(kernelDeb, `boot/vmlinuz-${version}`, join(dir, kernel));
  const busybox = `busybox-${debPackageVersion(busyboxDeb)}`;
  log(`extracting ${basename(busyboxDeb)}`);
  copyFromDeb(busyboxDeb, 'bin/busybox', join(dir, busybox));

  const manifest: Manifest = { version, kernel, busybox };
  writeAtomic(join(dir, 'image.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * Fetches (once) Debian's stock cloud kernel and busybox-static with
 * `apt-get download`, and builds the initramfs. Needs apt-get, apt-cache and
 * dpkg-deb (Debian or Ubuntu) and current package lists; no root. Later
 * calls return the cached image without touching the network.
 */
export function fetchDebianImage(options: FetchDebianOptions = {}): DebianImage {
  const dir = options.cacheDir ?? debianCacheDir();
  const log = options.log ?? ((): void => {});
  mkdirSync(dir, { recursive: true });
  const manifest = readManifest(dir) ?? fetchPackages(dir, log);

  const initrd = initrdFor(dir, readFileSync(join(dir, manifest.busybox)));
  if (!existsSync(initrd.path)) {
    log(`building ${basename(initrd.path)} (busybox + guests/linux/init.sh)`);
    writeAtomic(initrd.path, gzipSync(initrd.cpio, { level: 9 }));
    removeStaleInitrds(dir, basename(initrd.path));
  }
  return { kernel: join(dir, manifest.kernel), initrd: initrd.path, version: manifest.version };
}
