/**
 * The static programs nodevisor puts into Linux guests (guests/linux/*.c):
 * `init` (our /init), `nvbench` (the workloads of `nodevisor bench
 * linux`) and `nvnet` (the TCP workloads of `nodevisor bench virtio-net`),
 * which also run on the host as the reference. Built with
 * musl-gcc (Debian's musl-tools: binaries of tens of KiB, and the guest
 * kernel's emulated initramfs unpacking costs about 2.6 s per MiB here)
 * when it is installed, else with `gcc -static` against glibc (~0.8 MiB
 * each). Cached by source, compiler and flags.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT } from '../guests/build.js';
import { NodevisorError } from '../kvm/errors.js';
import { onPath } from './debian-apt.js';

export type GuestProgram = 'init' | 'nvbench' | 'nvnet';

const SOURCES: Record<GuestProgram, string> = {
  init: join(PACKAGE_ROOT, 'guests', 'linux', 'init.c'),
  nvbench: join(PACKAGE_ROOT, 'guests', 'linux', 'nvbench.c'),
  nvnet: join(PACKAGE_ROOT, 'guests', 'linux', 'nvnet.c'),
};

const FLAGS = ['-static', '-O2', '-Wall', '-pthread', '-s'];

/** The C compiler used for guest programs: musl-gcc where installed, else gcc (glibc, static). */
export function guestCompiler(): string {
  return onPath('musl-gcc') ? 'musl-gcc' : 'gcc';
}

/** Builds (once) guests/linux/<program>.c as a static x86-64 executable; returns its path. */
export function guestProgram(program: GuestProgram): string {
  const source = SOURCES[program];
  const cc = guestCompiler();
  const hash = createHash('sha256').update(readFileSync(source)).update(JSON.stringify([cc, FLAGS]));
  // The headers beside the sources (metric.h) are part of every program.
  const dir = dirname(source);
  for (const h of readdirSync(dir).filter((f) => f.endsWith('.h')).sort()) hash.update(readFileSync(join(dir, h)));
  const key = hash.digest('hex').slice(0, 12);
  const out = join(PACKAGE_ROOT, 'build', 'linux', `${program}-${key}`);
  if (existsSync(out)) return out;
  mkdirSync(join(out, '..'), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    execFileSync(cc, [...FLAGS, '-o', tmp, source], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: Buffer }).stderr?.toString().trim();
    const hint = cc === 'gcc' ? ' (static linking needs libc6-dev; or install musl-tools for smaller programs)' : '';
    throw new NodevisorError('EGUESTBUILD', `building ${program} from ${source} with ${cc} failed${hint}: ${stderr || (e as Error).message}`, { cause: e });
  }
  renameSync(tmp, out);
  return out;
}
