import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { NodevisorError } from '../kvm/errors.js';
import { PACKAGE_ROOT } from '../guests/build.js';
import { cacheDir } from './cache.js';

/** Debian's linux-source package leaves the tarball here. */
export const LINUX_SOURCE_TARBALL = '/usr/src/linux-source-6.1.tar.xz';
export const TEST_KERNEL_FRAGMENT = join(PACKAGE_ROOT, 'images', 'test-kernel.config');
const BUILD_PACKAGES = 'linux-source-6.1 bc bison flex libelf-dev libssl-dev make gcc';

/** Where the test kernel built from the current fragment lives (it may not exist yet). */
export function testKernelPath(): string {
  const hash = createHash('sha256');
  hash.update(readFileSync(TEST_KERNEL_FRAGMENT));
  hash.update(LINUX_SOURCE_TARBALL);
  return join(cacheDir(), 'test-kernel', hash.digest('hex').slice(0, 12), 'bzImage');
}

/** The test kernel if it has been built, else undefined. */
export function findTestKernel(): string | undefined {
  const p = testKernelPath();
  return existsSync(p) ? p : undefined;
}

/**
 * Builds the small test kernel: `make tinyconfig`, the repository's config
 * fragment merged over it, `make bzImage`. ~3-5 minutes on 2 cores. Cached
 * by the fragment's content; returns the bzImage path.
 */
export function buildTestKernel(options: { jobs?: number; quiet?: boolean } = {}): string {
  const out = testKernelPath();
  if (existsSync(out)) return out;
  if (!existsSync(LINUX_SOURCE_TARBALL)) {
    throw new NodevisorError('EKERNELSRC', `${LINUX_SOURCE_TARBALL} is missing: install Debian's kernel source and build tools first (sudo apt-get install ${BUILD_PACKAGES})`);
  }
  const work = join(cacheDir(), 'test-kernel', 'src');
  const tree = join(work, 'linux-source-6.1');
  const stdio = options.quiet ? 'ignore' : 'inherit';
  const run = (cmd: string, args: string[], cwd = tree): void => {
    try {
      execFileSync(cmd, args, { cwd, stdio: ['ignore', stdio, stdio] });
    } catch (e) {
      throw new NodevisorError('EKERNELBUILD', `building the test kernel failed at \`${cmd} ${args.join(' ')}\` in ${cwd}: ${(e as Error).message}`);
    }
  };
  if (!existsSync(join(tree, 'Makefile'))) {
    rmSync(work, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    run('tar', ['xf', LINUX_SOURCE_TARBALL], work);
  }
  run('make', ['tinyconfig']);
  run(join(tree, 'scripts/kconfig/merge_config.sh'), ['-m', '.config', TEST_KERNEL_FRAGMENT]);
  run('make', ['olddefconfig']);
  run('make', [`-j${options.jobs ?? cpus().length}`, 'bzImage']);
  mkdirSync(join(out, '..'), { recursive: true });
  copyFileSync(join(tree, 'arch/x86/boot/bzImage'), out);
  return out;
}
