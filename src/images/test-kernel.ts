import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { NodevisorError } from '../kvm/errors.js';
import { PACKAGE_ROOT } from '../guests/build.js';
import { cacheDir } from './cache.js';

/** Debian's linux-source-6.12 package (Linux 6.12 LTS) leaves the tarball here. */
export const LINUX_SOURCE_TARBALL = '/usr/src/linux-source-6.12.tar.xz';
export const TEST_KERNEL_FRAGMENT = join(PACKAGE_ROOT, 'images', 'test-kernel.config');
export const BUILD_PACKAGES = 'linux-source-6.12 bc bison flex libelf-dev libssl-dev lz4 cpio patch make gcc';
const SOURCE_DIR = 'linux-source-6.12';

/**
 * The patches applied to the kernel source, in name order: every
 * `images/*.patch` (today the SYSCALL completion that lets user space run on
 * software-virtualising hosts; see images/syscall-fetch-fault.patch).
 */
export function testKernelPatches(): string[] {
  const dir = join(PACKAGE_ROOT, 'images');
  return readdirSync(dir).filter((f) => f.endsWith('.patch')).sort().map((f) => join(dir, f));
}

/** Hash of everything the build depends on: source, fragment, patches. */
function buildInputsHash(): string {
  const hash = createHash('sha256');
  hash.update(LINUX_SOURCE_TARBALL);
  hash.update(readFileSync(TEST_KERNEL_FRAGMENT));
  for (const p of testKernelPatches()) hash.update(readFileSync(p));
  return hash.digest('hex').slice(0, 12);
}

/** Where the test kernel built from the current inputs lives (it may not exist yet). */
export function testKernelPath(): string {
  return join(cacheDir(), 'test-kernel', buildInputsHash(), 'bzImage');
}

/** The test kernel if it has been built, else undefined. */
export function findTestKernel(): string | undefined {
  const p = testKernelPath();
  return existsSync(p) ? p : undefined;
}

/**
 * Builds the small test kernel: Debian's 6.12 source with the patches in
 * `images/`, `make tinyconfig`, the repository's config fragment merged over
 * it, `make bzImage`. ~6 minutes on 2 cores. Cached by its inputs (source,
 * fragment, patches); returns the bzImage path.
 */
export function buildTestKernel(options: { jobs?: number; quiet?: boolean } = {}): string {
  const out = testKernelPath();
  if (existsSync(out)) return out;
  if (!existsSync(LINUX_SOURCE_TARBALL)) {
    throw new NodevisorError('EKERNELSRC', `${LINUX_SOURCE_TARBALL} is missing: install Debian's kernel source and build tools first (sudo apt-get install ${BUILD_PACKAGES})`);
  }
  const work = join(cacheDir(), 'test-kernel', 'src');
  const tree = join(work, SOURCE_DIR);
  const stdio = options.quiet ? 'ignore' : 'inherit';
  const run = (cmd: string, args: string[], cwd = tree): void => {
    try {
      execFileSync(cmd, args, { cwd, stdio: ['ignore', stdio, stdio] });
    } catch (e) {
      throw new NodevisorError('EKERNELBUILD', `building the test kernel failed at \`${cmd} ${args.join(' ')}\` in ${cwd}: ${(e as Error).message}`);
    }
  };
  // The tree is reused across builds (incremental make) only while it holds
  // exactly this source with exactly these patches; anything else starts over.
  const patches = testKernelPatches();
  const patchHash = createHash('sha256');
  patchHash.update(LINUX_SOURCE_TARBALL);
  for (const p of patches) patchHash.update(readFileSync(p));
  const stamp = join(tree, '.nodevisor-patches');
  const wanted = patchHash.digest('hex');
  if (!existsSync(join(tree, 'Makefile')) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== wanted) {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    run('tar', ['xf', LINUX_SOURCE_TARBALL], work);
    for (const p of patches) run('patch', ['-p1', '--forward', '--quiet', '-i', p]);
    writeFileSync(stamp, wanted);
  }
  run('make', ['tinyconfig']);
  run(join(tree, 'scripts/kconfig/merge_config.sh'), ['-m', '.config', TEST_KERNEL_FRAGMENT]);
  run('make', ['olddefconfig']);
  run('make', [`-j${options.jobs ?? cpus().length}`, 'bzImage']);
  mkdirSync(join(out, '..'), { recursive: true });
  copyFileSync(join(tree, 'arch/x86/boot/bzImage'), out);
  copyFileSync(join(tree, '.config'), join(out, '..', 'config'));
  copyFileSync(join(tree, 'vmlinux'), join(out, '..', 'vmlinux'));
  return out;
}
