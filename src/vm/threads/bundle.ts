import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';
import type { BundleManifest, ThreadName } from './entry.js';

export const BUNDLED_THREADS: readonly ThreadName[] = ['vcpu-worker', 'device-timer'];

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * A CommonJS bundle has no `import.meta`: each module's own URL becomes
 * its path relative to the bundle, resolved when the bundle runs, so
 * `new URL('../../../', import.meta.url)` (the addon's way to find build/)
 * still means what it meant in that module, wherever the package lives.
 */
const moduleUrls: Plugin = {
  name: 'module-urls',
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, (args) => {
      const text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = relative(HERE, args.path);
      return { contents: text.replaceAll('import.meta.url', `__nodevisor_module_url(${JSON.stringify(rel)})`), loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

// Bundled ES modules keep strict mode; the helper backs moduleUrls.
const BANNER = `"use strict";
const __nodevisor_module_url = (p) => require("node:url").pathToFileURL(require("node:path").join(__dirname, p)).href;`;

/**
 * Bundles one thread entry of dist/ (tsc's output) with all it imports
 * into `NAME.bundle.cjs` beside it, and lists the inputs in
 * `NAME.bundle.json` so entry.ts can tell a stale bundle. CommonJS because
 * a worker that starts from a CommonJS file never sets up Node's ES module
 * loader (about 1 MiB per thread). Needs esbuild (a dev dependency).
 */
export async function bundleThread(name: ThreadName): Promise<{ bytes: number; inputs: number }> {
  const { build } = await import('esbuild');
  const entry = join(HERE, `${name}.js`);
  const outfile = join(HERE, `${name}.bundle.cjs`);
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    sourcemap: 'linked',
    metafile: true,
    banner: { js: BANNER },
    plugins: [moduleUrls],
    logLevel: 'silent',
  });
  // An `import.meta` left behind would be undefined at run time.
  if (result.warnings.length) throw new Error(`bundling ${name}: ${result.warnings.map((w) => w.text).join('; ')}`);
  const cwd = process.cwd();
  const inputs = Object.keys(result.metafile.inputs).map((p) => relative(HERE, resolve(cwd, p)));
  const manifest: BundleManifest = { entry: `./${name}.js`, inputs: inputs.map((p) => (p.startsWith('.') ? p : `./${p}`)) };
  writeFileSync(join(HERE, `${name}.bundle.json`), JSON.stringify(manifest, null, 1) + '\n');
  return { bytes: readFileSync(outfile).length, inputs: inputs.length };
}
