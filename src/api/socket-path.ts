import { lstatSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import { NodevisorError, errnoCode } from '../kvm/errors.js';

/** True if something accepts connections on the Unix socket at `path`. */
function isLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const done = (live: boolean): void => {
      s.destroy();
      resolve(live);
    };
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.setTimeout(2000, () => done(true)); // a listener too busy to accept is still someone's
  });
}

/**
 * Makes `path` free for a new socket: nothing there, or a stale socket
 * left by a process that died (removed). Refuses a live socket (another
 * VM's) and anything that is not a socket.
 */
export async function claimSocketPath(path: string, what: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw new NodevisorError('EAPISOCKET', `cannot use ${path} for the ${what}: ${(e as Error).message}`);
  }
  if (!isSocket) throw new NodevisorError('EAPISOCKET', `${path} exists and is not a socket: not replacing it with the ${what}`);
  if (await isLive(path)) throw new NodevisorError('EAPISOCKET', `${path} is in use: another process is listening there (a running VM?)`);
  try {
    unlinkSync(path);
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') throw new NodevisorError('EAPISOCKET', `cannot remove the stale socket ${path}: ${(e as Error).message}`);
  }
}
