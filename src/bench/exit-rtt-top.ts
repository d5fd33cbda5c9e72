/**
 * `nodevisor top` attached to the exit round-trip guest: the VM serves its
 * API socket and an API client polls `stats` the way `top` does, but 100
 * times a second (100x top's default), for the whole run. Compared with the
 * same guest unwatched in the same repetition, it shows what watching costs
 * the vCPU's exit path (nothing is expected: the counters are shared memory
 * the vCPU writes anyway, and serving `stats` happens on the main thread).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiServer } from '../api/server.js';
import { ApiClient } from '../api/client.js';
import { StatsWatcher } from '../top/cli.js';
import type { Vm } from '../vm/vm.js';

export const TOP_POLL_MS = 100;

/** Starts the API socket and a polling `top` client on `vm`; the result ends both. */
export async function attachTop(vm: Vm): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'nodevisor-bench-top-'));
  const server = new ApiServer({ path: join(dir, 'api.sock'), vm, version: 'bench' });
  await server.listen();
  const client = await ApiClient.connect(server.path);
  let samples = 0;
  const watcher = new StatsWatcher(client, TOP_POLL_MS, () => samples++);
  await watcher.start();
  return async () => {
    watcher.stop();
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    if (samples === 0) throw new Error('the top client took no sample during the run');
  };
}
