import { homedir } from 'node:os';
import { join } from 'node:path';

/** nodevisor's cache directory: $XDG_CACHE_HOME/nodevisor, else ~/.cache/nodevisor. */
export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'nodevisor');
}
