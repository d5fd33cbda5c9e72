import { NodevisorError } from '../kvm/errors.js';
import { VIRTIO_NET_MAX_PAIRS } from '../virtio/net.js';
import { validTapName } from '../virtio/net-tap.js';
import { formatMac, parseMac, randomMac } from '../virtio/net-mac.js';

/**
 * A NIC as the VM options describe it, and `--net` as the CLI spells it:
 * `tap=NAME[,mac=MAC][,queues=N]` or
 * `user[,mac=MAC][,hostfwd=tcp:[HOSTADDR]:HOSTPORT-:GUESTPORT]...`.
 */

/** A tap device on the host (opened, or created if it does not exist; needs CAP_NET_ADMIN). */
export interface TapNetOptions {
  kind: 'tap';
  /** The tap's interface name. */
  name: string;
  /** The guest's MAC address, e.g. "52:54:00:12:34:56" (default: 52:54:00 and three random bytes). */
  mac?: string;
  /** Queue pairs (1-8; default one per vCPU up to 4, or 1 for an existing tap made without multi_queue). */
  queues?: number;
}

/** A host port forwarded to the guest (QEMU's hostfwd). */
export interface HostForward {
  protocol: 'tcp' | 'udp';
  /** The host address to listen on (default: every address). */
  hostAddress?: string;
  hostPort: number;
  guestPort: number;
}

/** Rootless user-mode networking through passt (Debian's `passt` package): DHCP, DNS forwarding, outbound TCP/UDP. */
export interface UserNetOptions {
  kind: 'user';
  mac?: string;
  hostfwd?: HostForward[];
}

export type NetOptions = TapNetOptions | UserNetOptions;

/** Queue pairs a tap gets by default: one per vCPU up to this. */
export const DEFAULT_NET_PAIRS = 4;

const bad = (message: string): NodevisorError => new NodevisorError('ENET', message);

function parsePort(text: string, what: string, spec: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw bad(`bad hostfwd "${spec}": the ${what} port must be 1-65535 (got "${text}")`);
  return n;
}

/** `tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT` (QEMU's syntax; the guest address, if given, is ignored: passt forwards to the guest's). */
export function parseHostForward(spec: string): HostForward {
  const m = /^(tcp|udp):([^:]*):([^-]*)-([^:]*):(.*)$/.exec(spec);
  if (!m) throw bad(`bad hostfwd "${spec}": write tcp:HOSTADDR:HOSTPORT-:GUESTPORT, e.g. tcp:127.0.0.1:2222-:22`);
  const hostAddress = m[2]!;
  if (hostAddress && !/^\d{1,3}(\.\d{1,3}){3}$/.test(hostAddress)) throw bad(`bad hostfwd "${spec}": the host address must be an IPv4 address like 127.0.0.1 (or empty for all)`);
  return { protocol: m[1] as 'tcp' | 'udp', ...(hostAddress ? { hostAddress } : {}), hostPort: parsePort(m[3]!, 'host', spec), guestPort: parsePort(m[5]!, 'guest', spec) };
}

/** Parses one `--net` value. */
export function parseNetSpec(text: string): NetOptions {
  const [head = '', ...rest] = text.split(',');
  const keys = new Map<string, string[]>();
  for (const kv of rest) {
    const at = kv.indexOf('=');
    if (at <= 0) throw bad(`--net ${text}: "${kv}" is not KEY=VALUE`);
    const k = kv.slice(0, at);
    keys.set(k, [...(keys.get(k) ?? []), kv.slice(at + 1)]);
  }
  const one = (k: string): string | undefined => {
    const v = keys.get(k);
    if (v && v.length > 1) throw bad(`--net ${text}: ${k}= is given twice`);
    return v?.[0];
  };
  const allow = (allowed: string[]): void => {
    for (const k of keys.keys()) if (!allowed.includes(k)) throw bad(`--net ${text}: unknown option "${k}" (${head.startsWith('tap') ? 'tap' : head} takes ${allowed.join(', ')})`);
  };
  const mac = one('mac');
  if (head.startsWith('tap=')) {
    allow(['mac', 'queues']);
    const q = one('queues');
    const queues = q === undefined ? undefined : Number(q);
    if (queues !== undefined && (!/^\d+$/.test(q!) || queues < 1 || queues > VIRTIO_NET_MAX_PAIRS)) throw bad(`--net ${text}: queues must be 1-${VIRTIO_NET_MAX_PAIRS} (got "${q}")`);
    return { kind: 'tap', name: head.slice(4), ...(mac !== undefined ? { mac } : {}), ...(queues !== undefined ? { queues } : {}) };
  }
  if (head === 'user') {
    allow(['mac', 'hostfwd']);
    return { kind: 'user', ...(mac !== undefined ? { mac } : {}), hostfwd: (keys.get('hostfwd') ?? []).map(parseHostForward) };
  }
  throw bad(`--net ${text}: start with tap=NAME or user (e.g. --net tap=tap0,queues=2 or --net user,hostfwd=tcp:127.0.0.1:2222-:22)`);
}

/** A NIC's checked options: its MAC bytes and queue pairs. */
export interface CheckedNet {
  readonly options: NetOptions;
  readonly mac: number[];
}

/** Checks every NIC's options (names, MACs, queue counts, duplicates) before anything is opened. */
export function checkNetOptions(nets: readonly NetOptions[]): CheckedNet[] {
  const macs = new Map<string, number>();
  const taps = new Set<string>();
  return nets.map((o, i) => {
    if (o.kind !== 'tap' && o.kind !== 'user') throw bad(`net ${i}: kind must be "tap" or "user" (got "${(o as { kind: unknown }).kind}")`);
    if (o.kind === 'tap') {
      if (!validTapName(o.name)) throw bad(`net ${i}: "${o.name}" is not a valid interface name (1-15 bytes, no "/", ":" or blanks)`);
      if (taps.has(o.name)) throw bad(`tap device ${o.name} is given twice: each NIC needs its own tap`);
      taps.add(o.name);
      if (o.queues !== undefined && (!Number.isInteger(o.queues) || o.queues < 1 || o.queues > VIRTIO_NET_MAX_PAIRS)) throw bad(`tap ${o.name}: queues must be 1-${VIRTIO_NET_MAX_PAIRS} (got ${o.queues})`);
    } else {
      for (const f of o.hostfwd ?? []) parseHostForward(`${f.protocol}:${f.hostAddress ?? ''}:${f.hostPort}-:${f.guestPort}`);
    }
    const mac = o.mac === undefined ? randomMac() : parseMac(o.mac);
    const key = formatMac(mac);
    if (macs.has(key)) throw bad(`MAC address ${key} is given to two NICs (${macs.get(key)} and ${i})`);
    macs.set(key, i);
    return { options: o, mac };
  });
}
