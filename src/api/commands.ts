/**
 * The API's commands: one entry each, used by the socket server (params
 * check, action), by `nodevisor ctl` (arguments, output for people) and by
 * the help texts. Adding a command is adding an entry here.
 */
import { resolve } from 'node:path';
import { JSONRPCErrorException } from 'json-rpc-2.0';
import { NodevisorError } from '../kvm/errors.js';
import { monotonicClock } from '../sync/clock.js';
import { formatExitProfile } from '../vm/exit-profile-table.js';
import { EVENT_NAMES, ErrorCode, PROTOCOL_VERSION, type ApiVm, type EventName } from './protocol.js';

/** The connection a command came in on. */
export interface CommandContext {
  vm: ApiVm;
  /** Seconds (monotonic) when the VM's API started. */
  startedAt: number;
  subscribe(events: readonly EventName[]): EventName[];
}

export interface Command<P = unknown, R = unknown> {
  name: string;
  /** One line for help texts. */
  summary: string;
  /** `nodevisor ctl` arguments after the command name, for its usage line. */
  args?: string;
  /** Checks JSON-RPC params (throw `invalidParams`). */
  params(raw: unknown): P;
  run(ctx: CommandContext, params: P): R | Promise<R>;
  /** `nodevisor ctl`: the command's arguments as params. */
  fromArgs?(words: string[]): unknown;
  /** `nodevisor ctl`: the result for people (without --json). */
  show(result: R): string;
}

export const invalidParams = (message: string): JSONRPCErrorException => new JSONRPCErrorException(message, ErrorCode.InvalidParams);

/** Runs `f`, turning the VM's refusals (wrong state) into JSON-RPC errors with nodevisor's code. */
async function vmAction<T>(f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof NodevisorError) throw new JSONRPCErrorException(e.message, ErrorCode.VmState, { code: e.code });
    throw e;
  }
}

function record(raw: unknown): Record<string, unknown> {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidParams('params must be an object');
  return raw as Record<string, unknown>;
}

const noParams = (raw: unknown): Record<string, never> => {
  const p = record(raw);
  const extra = Object.keys(p);
  if (extra.length) throw invalidParams(`unexpected parameter "${extra[0]}"`);
  return {};
};

function define<P, R>(c: Command<P, R>): Command {
  return c as unknown as Command;
}

/** A command that changes the VM's run state and answers with the new one. */
function stateCommand(name: string, summary: string, action: (vm: ApiVm) => Promise<void>): Command {
  return define({
    name,
    summary,
    params: noParams,
    run: async ({ vm }) => {
      await vmAction(() => action(vm));
      return { state: vm.runState };
    },
    show: (r) => r.state,
  });
}

export const COMMANDS: readonly Command[] = [
  define({
    name: 'status',
    summary: 'the VM: state, vCPUs, memory, irqchip mode, uptime, protocol version',
    params: noParams,
    run: ({ vm, startedAt }) => ({
      protocol: PROTOCOL_VERSION,
      state: vm.runState,
      vcpus: vm.vcpus,
      memoryBytes: vm.memorySize,
      irqchip: vm.irqchip,
      uptimeSeconds: monotonicClock.nowNs() / 1e9 - startedAt,
      pid: process.pid,
    }),
    show: (r) => `${r.state}: ${r.vcpus} vCPU${r.vcpus === 1 ? '' : 's'}, ${r.memoryBytes / 2 ** 20} MiB, irqchip ${r.irqchip}, up ${r.uptimeSeconds.toFixed(1)} s (pid ${r.pid}, protocol ${r.protocol})`,
  }),
  define({
    name: 'stats',
    summary: 'cumulative counters per vCPU and virtio device, with the time they were read (for rates)',
    params: noParams,
    run: ({ vm }) => ({ timeSeconds: monotonicClock.nowNs() / 1e9, state: vm.runState, ...vm.stats() }),
    show: (r) =>
      r.vcpus
        .map((v) => `vCPU ${v.index} ${v.state}: ${v.exits} exits, ${v.injections} injections, guest ${v.guestSeconds.toFixed(3)} s, VMM ${v.vmmSeconds.toFixed(3)} s, halted ${v.haltSeconds.toFixed(3)} s`)
        .concat(r.virtio.map((d) => `${d.name} (00:${d.device.toString(16).padStart(2, '0')}.0): ${d.requests?.completed ?? 0} requests, ${d.notifications.exits + d.notifications.ioeventfd} notifications`))
        .join('\n'),
  }),
  define({
    name: 'exit-profile',
    summary: 'exits by port, MMIO address and reason so far, with the VMM time per exit (needs `nodevisor run --exit-profile`)',
    params: noParams,
    run: ({ vm }) => {
      const entries = vm.exitProfile();
      if (entries === null) throw new JSONRPCErrorException('this VM records no exit profile: start it with --exit-profile (library: exitProfile: true)', ErrorCode.VmState, { code: 'ENOPROFILE' });
      return { timeSeconds: monotonicClock.nowNs() / 1e9, entries };
    },
    show: (r) => formatExitProfile(r.entries),
  }),
  stateCommand('pause', 'stop every vCPU outside the guest and hold the guest clocks', (vm) => vm.pause()),
  stateCommand('resume', 'let a paused VM run on', (vm) => vm.resume()),
  define({
    name: 'snapshot',
    summary: 'write a snapshot to DIR (pause, quiesce, save, resume unless "resume": false); continue it with `nodevisor run --restore DIR`',
    args: 'DIR [--paused]',
    params: (raw) => {
      const p = record(raw);
      const extra = Object.keys(p).filter((k) => k !== 'dir' && k !== 'resume');
      if (extra.length) throw invalidParams(`unexpected parameter "${extra[0]}"`);
      if (typeof p.dir !== 'string' || p.dir === '') throw invalidParams('snapshot needs "dir", the directory to write it to');
      if (p.resume !== undefined && typeof p.resume !== 'boolean') throw invalidParams('"resume" must be true or false');
      // Relative to the VM's working directory: the client's may differ, so ctl sends absolute paths.
      return { dir: resolve(p.dir), resume: p.resume !== false };
    },
    run: async ({ vm }, p) => {
      const info = await vmAction(() => vm.snapshot(p.dir, { resume: p.resume }));
      return { dir: info.dir, ramBytes: info.ramBytes, seconds: info.seconds, state: vm.runState };
    },
    fromArgs: (words) => {
      const paused = words.includes('--paused');
      const rest = words.filter((w) => w !== '--paused');
      return { dir: rest[0] === undefined ? '' : resolve(rest[0]), ...(paused ? { resume: false } : {}), ...(rest.length > 1 ? { extra: rest.slice(1) } : {}) };
    },
    show: (r) => `snapshot written to ${r.dir} (${(r.ramBytes / 2 ** 20).toFixed(1)} MiB of RAM data, ${r.seconds.toFixed(2)} s); the VM is ${r.state}`,
  }),
  define({
    name: 'power-button',
    summary: 'press the ACPI power button (an ACPI guest shuts down)',
    params: noParams,
    run: ({ vm }) => {
      vm.powerButton();
      return {};
    },
    show: () => 'power button pressed',
  }),
  define({
    name: 'stop',
    summary: 'stop the VM now (the `run` process exits with status 8) and answer with the result',
    params: noParams,
    run: async ({ vm }) => {
      const r = await vmAction(() => vm.stop());
      return { reason: r.reason, exitStatus: r.exitStatus, message: r.message };
    },
    show: (r) => r.message,
  }),
  define({
    name: 'console-input',
    summary: 'type text into the guest console (UTF-8; `base64` for raw bytes)',
    args: 'TEXT',
    params: (raw) => {
      const p = record(raw);
      const { data, base64 } = p;
      if ((data === undefined) === (base64 === undefined)) throw invalidParams('console-input needs "data" (a string) or "base64"');
      if (data !== undefined && typeof data !== 'string') throw invalidParams('"data" must be a string');
      if (base64 !== undefined && (typeof base64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64))) throw invalidParams('"base64" must be base64 text');
      return { bytes: data !== undefined ? Buffer.from(data as string, 'utf8') : Buffer.from(base64 as string, 'base64') };
    },
    run: ({ vm }, p) => {
      vm.sendConsoleInput(p.bytes);
      return { bytes: p.bytes.length };
    },
    // A shell's "\n" arrives as two characters; ctl turns the usual escapes into bytes.
    fromArgs: (words) => ({ data: unescape(words.join(' ')) }),
    show: (r) => `sent ${r.bytes} byte${r.bytes === 1 ? '' : 's'}`,
  }),
  define({
    name: 'subscribe',
    summary: `receive events as "event" notifications: ${EVENT_NAMES.join(', ')} (all by default)`,
    args: `[${EVENT_NAMES.join('|')}]...`,
    params: (raw) => {
      const p = record(raw);
      const events = p.events ?? [...EVENT_NAMES];
      if (!Array.isArray(events) || !events.every((e): e is EventName => (EVENT_NAMES as readonly unknown[]).includes(e))) {
        throw invalidParams(`"events" must be a list of ${EVENT_NAMES.join(', ')}`);
      }
      return { events };
    },
    run: (ctx, p) => ({ events: ctx.subscribe(p.events) }),
    fromArgs: (words) => (words.length ? { events: words } : {}),
    show: (r) => `subscribed to ${r.events.join(', ')}`,
  }),
];

export const commandNamed = (name: string): Command | undefined => COMMANDS.find((c) => c.name === name);

/** `\n`, `\r`, `\t`, `\e`, `\\` and `\xHH` as the bytes they stand for. */
export function unescape(text: string): string {
  return text.replace(/\\(x[0-9a-fA-F]{2}|[nrte\\])/g, (_, e: string) => {
    if (e[0] === 'x') return String.fromCharCode(parseInt(e.slice(1), 16));
    return { n: '\n', r: '\r', t: '\t', e: '\x1b', '\\': '\\' }[e]!;
  });
}
