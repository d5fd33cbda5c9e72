import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../guests/build.js';

/**
 * Compiles a C reference program from bench/ref/NAME.c into build/bench
 * (rebuilt when the source is newer) and returns its path. The references
 * are minimal C VMMs that run the same guests as nodevisor, so benchmarks
 * can report ratios measured in the same run.
 */
export function buildReference(name: string): string {
  const src = join(PACKAGE_ROOT, 'bench', 'ref', `${name}.c`);
  const outDir = join(PACKAGE_ROOT, 'build', 'bench');
  const out = join(outDir, `${name}-ref`);
  mkdirSync(outDir, { recursive: true });
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-o', out, src, '-lpthread'], { stdio: 'inherit' });
  }
  return out;
}
