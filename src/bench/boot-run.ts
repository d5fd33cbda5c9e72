import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** What one boot attempt saw. */
export interface BootAttempt {
  /** Seconds from process start to the marker, or null if it never appeared. */
  seconds: number | null;
  /** The last console lines, for the report when the marker did not come. */
  tail: string;
}

export const RUN_INIT = 'Run /init as init process';
const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

/**
 * Starts `command` and times it until `marker` appears on its output, then
 * ends it. Timing starts before the process is spawned: "from process start"
 * includes Node's own start-up and the VMM's set-up, as a user sees it.
 */
export function timeToMarker(command: string, args: readonly string[], marker: string, timeoutMs: number): Promise<BootAttempt> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const finish = (seconds: number | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve({ seconds, tail: out.split('\n').slice(-12).join('\n') });
    };
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('latin1');
      if (out.length > 1 << 20) out = out.slice(-(1 << 19));
      if (out.includes(marker)) finish(Number(process.hrtime.bigint() - t0) / 1e9);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => {
      out += `\n${e.message}`;
      finish(null);
    });
    child.on('exit', () => finish(out.includes(marker) ? Number(process.hrtime.bigint() - t0) / 1e9 : null));
    const timer = setTimeout(() => finish(null), timeoutMs);
  });
}

/** nodevisor's own CLI booting `kernel` to /init. */
export function bootNodevisor(kernel: string, initrd: string, vcpus: number, memory: string, cmdline: string, timeoutMs: number): Promise<BootAttempt> {
  return timeToMarker(process.execPath, [CLI, 'run', '--quiet', '--kernel', kernel, '--initrd', initrd, '--smp', String(vcpus), '--memory', memory, '--cmdline', cmdline], RUN_INIT, timeoutMs);
}

/** The same boot under QEMU with KVM (same kernel, command line, memory, vCPUs). */
export function bootQemu(qemu: string, kernel: string, initrd: string, vcpus: number, memory: string, cmdline: string, timeoutMs: number): Promise<BootAttempt> {
  const args = ['-enable-kvm', '-cpu', 'host', '-m', memory, '-smp', String(vcpus), '-kernel', kernel, '-initrd', initrd, '-append', cmdline, '-nographic', '-no-reboot', '-nodefaults', '-serial', 'stdio'];
  return timeToMarker(qemu, args, RUN_INIT, timeoutMs);
}
