/** The C reference builder lives in src/bench/c-reference.ts (shared with `nodevisor bench`). */
export { buildReference } from '../../src/bench/c-reference.js';
