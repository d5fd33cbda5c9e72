import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { netnsUnavailable, type NetNamespace } from '../../src/bench/netns.js';
import { findPasst } from '../../src/vm/passt.js';

/**
 * Peers for the virtio-net tests, run in the test's own network namespace
 * (src/bench/netns.ts): net-peer.ts modes that print "ready" once
 * listening and answer commands with JSON lines.
 */
export { NetNamespace, netnsUnavailable, uniqueIfName } from '../../src/bench/netns.js';

/**
 * Skips the calling test or suite when what it needs is missing here
 * (root for taps and namespaces, or Debian's passt); where CI sets
 * NODEVISOR_REQUIRE_NET it fails instead.
 */
export function netOrSkip(ctx: Mocha.Context, needs: 'namespaces' | 'passt'): void {
  const why = needs === 'passt' ? (findPasst() ? undefined : 'passt is not installed (apt-get install passt)') : netnsUnavailable();
  if (!why) return;
  if (process.env.NODEVISOR_REQUIRE_NET) throw new Error(`virtio-net tests cannot run here: ${why} (NODEVISOR_REQUIRE_NET is set)`);
  ctx.skip();
}

/** The compiled peer program (test/helpers/net-peer.ts). */
export const NET_PEER = fileURLToPath(new URL('./net-peer.js', import.meta.url));

/** Starts a net-peer.ts mode inside `ns`; resolves once it prints "ready". */
export async function startPeer(ns: NetNamespace, args: string[]): Promise<NetPeer> {
  const peer = new NetPeer(ns.spawn(process.execPath, [NET_PEER, ...args]));
  await peer.line(/^ready/);
  return peer;
}

/** A peer process: JSON lines out, commands in. */
export class NetPeer {
  private readonly lines: string[] = [];
  private waiter?: () => void;
  stderr = '';
  exited = false;

  constructor(readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => {
      this.lines.push(l);
      this.waiter?.();
    });
    child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    child.on('exit', () => {
      this.exited = true;
      this.waiter?.();
    });
  }

  /** The next line matching `pattern` (earlier non-matching lines are skipped). */
  async line(pattern: RegExp, timeoutMs = 30000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.lines.findIndex((l) => pattern.test(l));
      if (i >= 0) return this.lines.splice(0, i + 1).pop()!;
      if (this.exited) throw new Error(`the peer exited without printing ${pattern}: ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the peer printed no ${pattern} within ${timeoutMs} ms: ${this.stderr}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Sends a command line and returns the JSON of its reply line (an object or an array). */
  async ask<T>(command: string): Promise<T> {
    this.child.stdin!.write(`${command}\n`);
    return JSON.parse(await this.line(/^[[{]/)) as T;
  }

  stop(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }
}
