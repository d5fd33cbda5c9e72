import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { native } from '../kvm/addon.js';
import { NodevisorError } from '../kvm/errors.js';
import type { HostForward } from './net-options.js';

/**
 * passt (Debian's `passt` package: the user-mode networking of QEMU,
 * libvirt and podman) as a child process of the VM: it gets one end of a
 * socket pair (`--fd`), speaks QEMU's stream framing on it, answers the
 * guest's DHCP, ARP and DNS, and carries its TCP/UDP through ordinary
 * host sockets, with no privileges. It runs in the foreground and exits
 * when its end of the socket closes (or is killed when the VM stops).
 * Started as root it drops to user nobody; its PID file, written once it
 * is set up (ports bound), tells start-up from failure.
 */

const STARTUP_TIMEOUT_MS = 10_000;
const NOBODY = 65534;

/** The passt executable on PATH, or undefined. */
export function findPasst(path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const p = join(dir, 'passt');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** passt's -t/-u argument for a forward: [ADDR/]HOSTPORT:GUESTPORT. */
export function passtForwardArgs(f: HostForward): string[] {
  return [f.protocol === 'tcp' ? '-t' : '-u', `${f.hostAddress ? `${f.hostAddress}/` : ''}${f.hostPort}:${f.guestPort}`];
}

/** What passt printed on stderr, without its complaints about the missing syslog. */
function meaningful(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^Failed to send \d+ bytes to syslog/.test(l))
    .join('; ');
}

export class PasstProcess {
  private exited = false;
  /** How it exited, once it has. */
  private exit?: string;
  private stderr = '';
  private onExit?: (why: string) => void;

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
  ) {
    child.stderr!.on('data', (b: Buffer) => {
      this.stderr = (this.stderr + b.toString('utf8')).slice(-4096);
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      this.exit = `passt exited (${signal ? `signal ${signal}` : `status ${code}`}${meaningful(this.stderr) ? `: ${meaningful(this.stderr)}` : ''})`;
      this.onExit?.(this.exit);
    });
  }

  /**
   * Starts passt with `forwards`; resolves once it is ready, with the
   * socket to speak to it on (the caller closes it), or fails with a
   * NodevisorError that says why.
   */
  static async start(forwards: readonly HostForward[]): Promise<{ passt: PasstProcess; fd: number }> {
    const exe = findPasst();
    if (!exe) throw new NodevisorError('ENET', 'user-mode networking (--net user) needs passt, which is not installed: apt-get install passt');
    const dir = mkdtempSync(join(tmpdir(), 'nodevisor-passt-'));
    const root = process.getuid?.() === 0;
    // As root passt runs as nobody, which must be able to write its PID file.
    if (root) chownSync(dir, NOBODY, NOBODY);
    const pidFile = join(dir, 'passt.pid');
    const [ours, theirs] = native.socketpair();
    const args = ['--foreground', '--quiet', '--fd', '3', '--pid', pidFile, ...(root ? ['--runas', `${NOBODY}:${NOBODY}`] : []), ...forwards.flatMap(passtForwardArgs)];
    let child: ChildProcess;
    try {
      child = spawn(exe, args, { stdio: ['ignore', 'ignore', 'pipe', theirs] });
    } finally {
      native.close(theirs);
    }
    const passt = new PasstProcess(child, dir);
    try {
      await passt.ready(pidFile);
    } catch (e) {
      native.close(ours);
      await passt.stop();
      throw e;
    }
    return { passt, fd: ours };
  }

  /** Called once if passt exits before `stop()` (at once if it already has), with a line saying how. */
  watch(onExit: (why: string) => void): void {
    if (this.exit !== undefined) onExit(this.exit);
    else this.onExit = onExit;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  private async ready(pidFile: string): Promise<void> {
    const spawnError = new Promise<never>((_, reject) => this.child.once('error', (e) => reject(new NodevisorError('ENET', `cannot start passt: ${e.message}`, { cause: e }))));
    spawnError.catch(() => {});
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    for (;;) {
      if (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim()) return;
      if (this.exited) throw new NodevisorError('ENET', `passt failed to start: ${meaningful(this.stderr) || 'it exited without saying why'}`);
      if (Date.now() > deadline) throw new NodevisorError('ENET', `passt did not finish starting within ${STARTUP_TIMEOUT_MS / 1000} s`);
      await Promise.race([new Promise((r) => setTimeout(r, 20)), spawnError]);
    }
  }

  /** Stops passt (SIGTERM, then SIGKILL) and removes its directory; its exit is then not reported. */
  async stop(): Promise<void> {
    this.onExit = undefined;
    if (!this.exited && this.child.exitCode === null && this.child.pid !== undefined) {
      const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
      this.child.kill('SIGTERM');
      const late = setTimeout(() => this.child.kill('SIGKILL'), 2000);
      await gone;
      clearTimeout(late);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
