import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

/**
 * Network namespaces for virtio-net's benchmark and tests: each run makes
 * its own (`ip netns add`), with loopback up and IPv6 off (so the kernel
 * sends no router solicitations of its own), moves the VM's tap into it or
 * joins two with a veth pair, and runs its peers there (`ip netns exec`).
 * Nothing touches the host's own interfaces or addresses. Namespaces are
 * deleted when their user is done and, should it die first, when the
 * process exits.
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

/** Why namespaces and taps cannot be used here, or undefined if they can (root, iproute2, /dev/net/tun). */
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

/** A fresh interface or namespace name: `prefix` and 10 hex digits (IFNAMSIZ allows 15). */
export function uniqueIfName(prefix = 'nv'): string {
  return `${prefix}${randomBytes(5).toString('hex')}`;
}

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

  /** Starts a command inside the namespace, stdio piped. */
  spawn(cmd: string, args: string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  /**
   * Moves host interface `dev` (the VM's tap, in this process's namespace)
   * here, gives it `mac` and `address` and brings it up; `neighbours` are
   * added as permanent entries, so the kernel never needs ARP for them.
   */
  adopt(dev: string, o: { address: string; mac?: string; neighbours?: ReadonlyArray<{ ip: string; mac: string }> }): void {
    execFileSync('ip', ['link', 'set', dev, 'netns', this.name]);
    this.configure(dev, o);
  }

  /** A veth pair between this namespace and `other`, with an address at each end, up. */
  linkTo(other: NetNamespace, o: { address: string; otherAddress: string }): void {
    const here = uniqueIfName('nvv');
    const there = uniqueIfName('nvv');
    execFileSync('ip', ['link', 'add', here, 'netns', this.name, 'type', 'veth', 'peer', 'name', there, 'netns', other.name]);
    this.configure(here, { address: o.address });
    other.configure(there, { address: o.otherAddress });
  }

  delete(): void {
    if (!live.delete(this.name)) return;
    execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
  }

  private configure(dev: string, o: { address: string; mac?: string; neighbours?: ReadonlyArray<{ ip: string; mac: string }> }): void {
    if (o.mac) this.exec('ip', ['link', 'set', 'dev', dev, 'address', o.mac]);
    this.exec('ip', ['addr', 'add', o.address, 'dev', dev]);
    this.exec('ip', ['link', 'set', 'dev', dev, 'up']);
    for (const n of o.neighbours ?? []) this.exec('ip', ['neigh', 'replace', n.ip, 'lladdr', n.mac, 'dev', dev, 'nud', 'permanent']);
  }
}
