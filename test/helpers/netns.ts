import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

/**
 * Network namespaces for the virtio-net tests: each test makes its own
 * (`ip netns add`), with loopback up and IPv6 off (so the kernel sends no
 * router solicitations of its own), moves the VM's tap into it, and runs
 * its peers there (`ip netns exec`). Nothing touches the host's own
 * interfaces or addresses. Namespaces are deleted when the test ends and,
 * should a test die first, when the process exits.
 */

const live = new Set<string>();
process.on('exit', () => {
  for (const name of live) {
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
});

/** Why namespace tests cannot run here, or undefined if they can (root, iproute2, /dev/net/tun). */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'network namespaces and tap devices need root';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun is missing';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (`ip`) is not installed';
  }
  return undefined;
}

/** A fresh interface name: "nv" and 10 hex digits (IFNAMSIZ allows 15). */
export function uniqueIfName(prefix = 'nv'): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

/** The compiled peer program (test/helpers/net-peer.ts). */
export const NET_PEER = fileURLToPath(new URL('./net-peer.js', import.meta.url));

export class NetNamespace {
  private constructor(readonly name: string) {}

  static create(): NetNamespace {
    const ns = new NetNamespace(uniqueIfName('nvns'));
    execFileSync('ip', ['netns', 'add', ns.name]);
    live.add(ns.name);
    ns.exec('ip', ['link', 'set', 'lo', 'up']);
    ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    return ns;
  }

  /** Runs a command inside the namespace; returns its stdout. */
  exec(cmd: string, args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, cmd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /**
   * Moves host interface `dev` (the VM's tap, in this process's namespace)
   * here, gives it `mac` and `address` and brings it up; `neighbours` are
   * added as permanent entries, so the kernel never needs ARP for them.
   */
  adopt(dev: string, o: { address: string; mac?: string; neighbours?: ReadonlyArray<{ ip: string; mac: string }> }): void {
    execFileSync('ip', ['link', 'set', dev, 'netns', this.name]);
    if (o.mac) this.exec('ip', ['link', 'set', 'dev', dev, 'address', o.mac]);
    this.exec('ip', ['addr', 'add', o.address, 'dev', dev]);
    this.exec('ip', ['link', 'set', 'dev', dev, 'up']);
    for (const n of o.neighbours ?? []) this.exec('ip', ['neigh', 'replace', n.ip, 'lladdr', n.mac, 'dev', dev, 'nud', 'permanent']);
  }

  /** Starts a net-peer.ts mode inside the namespace; resolves once it prints "ready". */
  async peer(args: string[]): Promise<NetPeer> {
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, NET_PEER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const peer = new NetPeer(child);
    await peer.line(/^ready/);
    return peer;
  }

  delete(): void {
    if (!live.delete(this.name)) return;
    execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
  }
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
