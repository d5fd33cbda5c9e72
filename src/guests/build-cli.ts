import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { buildDemo, DEMO_BINARY } from './demo.js';

// Run by `npm run build`: leaves the demo guest where `nodevisor run` finds it.
mkdirSync(dirname(DEMO_BINARY), { recursive: true });
copyFileSync(buildDemo(), DEMO_BINARY);
