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
export const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

/**
 * Starts `command` and times it until `marker` appears on its output, then
 * ends it. Timing starts before the process is spawned: "from process start"
 * includes Node's own start-up and the VMM's set-up, as a user sees it.
 */
export async function timeToMarker(command: string, args: readonly string[], marker: string, timeoutMs: number): Promise<BootAttempt> {
  const r = await timeToMarkers(command, args, [marker], timeoutMs);
  return { seconds: r.seconds[0]!, tail: r.tail };
}

/**
 * Like `timeToMarker` for several markers in the order they appear (the
 * stages of a boot): seconds from process start to each, null for those
 * that never came. The process is ended at the last one.
 */
export function timeToMarkers(command: string, args: readonly string[], markers: readonly string[], timeoutMs: number): Promise<{ seconds: Array<number | null>; tail: string }> {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const seen: Array<number | null> = markers.map(() => null);
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve({ seconds: seen, tail: out.split('\n').slice(-12).join('\n') });
    };
    const onData = (chunk: Buffer): void => {
      out += chunk.toString('latin1');
      const now = Number(process.hrtime.bigint() - t0) / 1e9;
      markers.forEach((m, i) => {
        if (seen[i] === null && out.includes(m)) seen[i] = now;
      });
      if (out.length > 1 << 20) out = out.slice(-(1 << 19));
      if (seen[seen.length - 1] !== null) finish();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('error', (e) => {
      out += `\n${e.message}`;
      finish();
    });
    child.on('exit', finish);
    const timer = setTimeout(finish, timeoutMs);
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
