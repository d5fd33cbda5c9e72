/** The benchmark statistics live in src/bench/stats.ts (shared with `nodevisor bench`). */
export { median, quantile, spread, fmt } from '../../src/bench/stats.js';
