/**
 * `nodevisor top PATH`: a live per-vCPU view of a running VM through its
 * API socket. It only asks the VM for `stats` once per interval; the
 * counters behind it are the vCPU threads' shared stats rows, so watching
 * costs the vCPUs nothing (measured: micro.exit-rtt.with-top).
 */
import { parseArgs } from 'node:util';
import { ApiClient } from '../api/client.js';
import { rates, type StatsSnapshot, type TopSample } from './rates.js';
import { renderTop } from './render.js';
import { joinNegativeValues } from '../args.js';

export class TopUsageError extends Error {}

export const TOP_HELP = `Usage: nodevisor top PATH [--interval SECONDS] [--once] [--json]

A live view of the VM whose API socket is PATH (nodevisor run --api-socket
PATH), refreshed every interval (default 1 s): per vCPU its state (in guest,
in VMM, halted, paused), exits per second and the busiest exit reasons,
interrupts injected per second, IPIs sent and received per second (user
irqchip), and the share of time in the guest, in the VMM, halted and
paused; per virtio device requests and queue notifications per second; the
irqchip mode. q or Ctrl-C quits.

  --interval SECONDS  time between samples (default 1; 0.05 to 3600)
  --once              print one sample (two stats reads an interval apart) and exit
  --json              with --once: the sample as JSON; without: one JSON line per sample

Exit status: 0; 1 if the VM cannot be reached; 64 bad usage.`;

/** Polls `stats` every `intervalMs` and hands each rate sample to `onSample` until stopped or the VM goes away. */
export class StatsWatcher {
  private last?: StatsSnapshot;
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly client: ApiClient,
    private readonly intervalMs: number,
    private readonly onSample: (s: TopSample) => void,
  ) {}

  async start(): Promise<void> {
    this.last = await this.client.request<StatsSnapshot>('stats');
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const next = await this.client.request<StatsSnapshot>('stats');
      this.onSample(rates(this.last!, next));
      this.last = next;
    } catch {
      this.stop();
    } finally {
      this.busy = false;
    }
  }
}

export async function topCommand(argv: string[], out: NodeJS.WriteStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(`${TOP_HELP}\n`);
    return 0;
  }
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(argv),
    allowPositionals: true,
    options: { interval: { type: 'string' }, once: { type: 'boolean' }, json: { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new TopUsageError('top needs the VM\'s API socket path (see nodevisor top --help)');
  const interval = values.interval === undefined ? 1 : Number(values.interval);
  if (!Number.isFinite(interval) || interval < 0.05 || interval > 3600) throw new TopUsageError(`--interval must be a number of seconds from 0.05 to 3600 (got "${values.interval}")`);
  const path = positionals[0]!;
  return ApiClient.with(path, err, async (client) => {
    try {
      if (values.once) {
        const a = await client.request<StatsSnapshot>('stats');
        await new Promise((r) => setTimeout(r, interval * 1000));
        const s = rates(a, await client.request<StatsSnapshot>('stats'));
        out.write(`${values.json ? JSON.stringify(s, null, 2) : renderTop(s, path)}\n`);
        return 0;
      }
      await live(client, path, interval, values.json ?? false, out);
      return 0;
    } catch (e) {
      err.write(`nodevisor: top: ${(e as Error).message}\n`);
      return 1;
    }
  });
}

/** Refreshes until q/Ctrl-C (on a terminal), SIGINT, or the VM closing the connection. */
function live(client: ApiClient, path: string, interval: number, json: boolean, out: NodeJS.WriteStream): Promise<void> {
  const tty = out.isTTY === true && !json;
  return new Promise((resolve, reject) => {
    const watcher = new StatsWatcher(client, interval * 1000, (s) => {
      // Home, clear: a redraw in place (two escape sequences need no library).
      if (tty) out.write(`\x1b[H\x1b[2J${renderTop(s, path)}\n`);
      else out.write(`${json ? JSON.stringify(s) : `${renderTop(s, path)}\n`}\n`);
    });
    const stdin = process.stdin;
    const keys = tty && stdin.isTTY === true;
    const finish = (): void => {
      watcher.stop();
      process.off('SIGINT', finish);
      if (keys) {
        stdin.setRawMode(false);
        stdin.pause();
      }
      resolve();
    };
    process.once('SIGINT', finish);
    client.once('close', finish);
    if (keys) {
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', (b: Buffer) => {
        if (b.includes(0x71) || b.includes(0x03)) finish();
      });
    }
    watcher.start().catch(reject);
  });
}
