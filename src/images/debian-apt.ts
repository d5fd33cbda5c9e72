/**
 * The Debian tooling nodevisor uses to fetch stock packages without
 * installing them: `apt-cache` to resolve the cloud kernel's meta package to
 * its versioned image package, `apt-get download` to fetch .deb files into a
 * directory of ours (no root, no dpkg database changes), and `dpkg-deb -x`
 * to unpack them. The parsers are pure so tests can feed them captured text.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants, copyFileSync, existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { NodevisorError } from '../kvm/errors.js';

/** The meta package that always depends on the current cloud kernel image. */
export const KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';
/** busybox built statically: one binary that can be the whole user space. */
export const BUSYBOX_PACKAGE = 'busybox-static';

const TOOLS = ['apt-get', 'apt-cache', 'dpkg-deb'] as const;

/**
 * The versioned kernel package ("linux-image-6.1.0-56-cloud-amd64") named in
 * `apt-cache depends linux-image-cloud-amd64` output, or undefined when the
 * output names none (an unknown package prints nothing on stdout).
 * Alternatives ("|Depends:") and virtual packages ("<...>") are skipped: the
 * meta package has one plain, exact dependency.
 */
export function parseKernelDependency(dependsOutput: string): string | undefined {
  for (const line of dependsOutput.split('\n')) {
    const m = /^\s+Depends:\s+(linux-image-\S+)\s*$/.exec(line);
    if (m && !m[1]!.startsWith('<') && m[1] !== KERNEL_META_PACKAGE) return m[1];
  }
  return undefined;
}

/** The kernel release ("6.1.0-56-cloud-amd64") of a versioned image package name. */
export function kernelRelease(imagePackage: string): string {
  const m = /^linux-image-(\d+\.\d+\S*)$/.exec(imagePackage);
  if (!m) throw new RangeError(`"${imagePackage}" is not a versioned linux-image package name`);
  return m[1]!;
}

/** The .deb in `files` that `apt-get download PACKAGE` wrote ("PACKAGE_VERSION_ARCH.deb"). */
export function debFileFor(pkg: string, files: readonly string[]): string | undefined {
  return files.find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
}

/** True when `tool` is an executable in one of PATH's directories. */
export function onPath(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Throws a NodevisorError naming what to install when apt-get, apt-cache or dpkg-deb is missing. */
export function requireDebianTools(): void {
  const missing = TOOLS.filter((t) => !onPath(t));
  if (missing.length) {
    throw new NodevisorError(
      'ENODEBTOOLS',
      `fetching the Debian guest image needs ${missing.join(', ')}, which ${missing.length > 1 ? 'are' : 'is'} not on PATH: run it on Debian or Ubuntu (apt and dpkg, \`apt-get install apt dpkg\`), or pass your own kernel and initrd to nodevisor run`,
    );
  }
}

function run(cmd: string, args: string[], cwd?: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function stderrOf(e: unknown): string {
  const s = (e as { stderr?: unknown }).stderr;
  return (typeof s === 'string' ? s : Buffer.isBuffer(s) ? s.toString('utf8') : (e as Error).message).trim();
}

/** The versioned kernel image package the cloud meta package currently depends on. */
export function resolveKernelPackage(): string {
  let out = '';
  try {
    out = run('apt-cache', ['depends', KERNEL_META_PACKAGE]);
  } catch (e) {
    throw new NodevisorError('EAPTLISTS', `\`apt-cache depends ${KERNEL_META_PACKAGE}\` failed (${stderrOf(e)}): the package lists may be empty; run \`apt-get update\` (as root) and try again`, { cause: e });
  }
  const pkg = parseKernelDependency(out);
  if (!pkg) {
    throw new NodevisorError('EAPTLISTS', `apt knows no ${KERNEL_META_PACKAGE} package: the package lists are empty or lack Debian's main component; run \`apt-get update\` (as root) and try again`);
  }
  return pkg;
}

/** Downloads PACKAGE's .deb into `dir` (unless one is there) and returns its path. */
export function downloadDeb(pkg: string, dir: string, log: (line: string) => void): string {
  const have = debFileFor(pkg, readdirSync(dir));
  if (have) return join(dir, have);
  log(`downloading ${pkg} with apt-get download`);
  try {
    run('apt-get', ['download', pkg], dir);
  } catch (e) {
    const detail = stderrOf(e);
    // A 404 means the lists name a version the mirror has since replaced.
    const hint = /Unable to locate|no installation candidate|Can't select|404/i.test(detail)
      ? 'the package lists may be empty or stale; run `apt-get update` (as root) and try again'
      : 'check the network and the sources in /etc/apt/sources.list (and run `apt-get update`), then try again';
    throw new NodevisorError('EDEBDOWNLOAD', `\`apt-get download ${pkg}\` failed: ${detail}\n${hint}`, { cause: e });
  }
  const got = debFileFor(pkg, readdirSync(dir));
  if (!got) throw new NodevisorError('EDEBDOWNLOAD', `\`apt-get download ${pkg}\` reported success but left no ${pkg}_*.deb in ${dir}`);
  return join(dir, got);
}

/** Unpacks a .deb's files into `dir` (dpkg-deb -x: no scripts run, nothing installed). */
export function extractDeb(deb: string, dir: string): void {
  try {
    run('dpkg-deb', ['-x', deb, dir]);
  } catch (e) {
    throw new NodevisorError('EDEBEXTRACT', `\`dpkg-deb -x ${deb} ${dir}\` failed: ${stderrOf(e)}; delete ${deb} so the next fetch downloads it again`, { cause: e });
  }
}

/** Writes through a temporary name, so a crash never leaves a truncated file under the final one. */
export function writeAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function copyAtomic(from: string, to: string): void {
  const tmp = `${to}.${process.pid}.tmp`;
  copyFileSync(from, tmp);
  renameSync(tmp, to);
}

/** Unpacks `deb` into a scratch folder, copies `member` out to `to`, and removes the scratch folder. */
export function copyFromDeb(deb: string, member: string, to: string): void {
  const scratch = join(to, '..', `.extract-${process.pid}`);
  rmSync(scratch, { recursive: true, force: true });
  try {
    extractDeb(deb, scratch);
    const file = join(scratch, member);
    if (!existsSync(file)) throw new NodevisorError('EDEBEXTRACT', `${basename(deb)} has no /${member}; delete ${deb} and fetch again`);
    copyAtomic(file, to);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** A .deb file's package version without its epoch: "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb" -> "1.35.0-4+deb12u1+b1". */
export function debPackageVersion(deb: string): string {
  return decodeURIComponent(basename(deb).split('_')[1] ?? 'unknown').replace(/^\d+:/, '');
}
