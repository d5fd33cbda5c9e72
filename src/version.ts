/** nodevisor's version (package.json's); snapshots and reports record it. */
export const VERSION: string = '0.1.0';
