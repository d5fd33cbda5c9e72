import { BUNDLED_THREADS, bundleThread } from './bundle.js';

// Run by `npm run build`, after tsc: see entry.ts for why threads start from bundles.
for (const name of BUNDLED_THREADS) await bundleThread(name);
