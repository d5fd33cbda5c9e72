import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The VM's thread entries: files beside this one. */
export type ThreadName = 'vcpu-worker' | 'device-timer';

/** Written beside each bundle by bundle.ts: what it was built from, relative to this folder. */
export interface BundleManifest {
  entry: string;
  inputs: string[];
}

/** How a thread's code is loaded, and why when it is not the bundle. */
export interface ThreadEntry {
  url: URL;
  bundled: boolean;
  /** Why the bundle was passed over (missing, or older than one of its inputs). */
  reason?: string;
}

const chosen = new Map<ThreadName, ThreadEntry>();

/**
 * The file a thread starts from. `npm run build` bundles each entry and
 * everything it imports into one CommonJS file (`NAME.bundle.cjs`): one
 * module instead of ~90 saves every thread about 2.5 MiB of loader state
 * and a third of its start-up (see README, Footprint). A bundle older than
 * any file it was built from (a `tsc` run without the bundling step) would
 * run stale code, so then the thread loads the compiled modules instead;
 * `NODEVISOR_UNBUNDLED=1` asks for them always.
 */
export function threadEntry(name: ThreadName): ThreadEntry {
  let entry = chosen.get(name);
  if (!entry) {
    entry = chooseThreadEntry(new URL('./', import.meta.url), name);
    chosen.set(name, entry);
  }
  return entry;
}

/** The bundle of `name` in folder `dir` (a file: URL ending in /) if it is fresh, else its compiled module. */
export function chooseThreadEntry(dir: URL, name: string): ThreadEntry {
  const modules = new URL(`./${name}.js`, dir);
  if (process.env.NODEVISOR_UNBUNDLED === '1') return { url: modules, bundled: false, reason: 'NODEVISOR_UNBUNDLED=1' };
  const bundle = new URL(`./${name}.bundle.cjs`, dir);
  const manifest = new URL(`./${name}.bundle.json`, dir);
  if (!existsSync(bundle) || !existsSync(manifest)) return { url: modules, bundled: false, reason: `${name}.bundle.cjs is not built (npm run build builds it)` };
  const built = statSync(bundle).mtimeMs;
  const { inputs } = JSON.parse(readFileSync(manifest, 'utf8')) as BundleManifest;
  for (const input of inputs) {
    const path = fileURLToPath(new URL(input, dir));
    // npm packs every file with the same time stamp: equal is fresh.
    if (!existsSync(path) || statSync(path).mtimeMs > built) return { url: modules, bundled: false, reason: `${name}.bundle.cjs is older than ${input} (npm run build rebuilds it)` };
  }
  return { url: bundle, bundled: true };
}
