/**
 * One boot of a Linux guest for `nodevisor bench linux`: start the VM, follow
 * /init's transcript on the console, report boot milestones, and return
 * every command's metrics once the guest has powered off. Anything else
 * (a panic, a command that fails, no progress before the deadline) is an
 * error that carries the guest's last console lines.
 */
import { Vm } from '../vm/vm.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { TestKnobs } from '../vcpu/test-knobs.js';
import type { NetOptions } from '../vm/net-options.js';
import { InitTranscript, type CommandResult } from './linux-protocol.js';

export interface LinuxGuestOptions {
  kernel: string;
  initrd: Uint8Array;
  vcpus: number;
  memory: string;
  irqchip: IrqchipMode;
  cmdline?: string;
  disks: { path: string; readonly: boolean }[];
  nets?: NetOptions[];
  haltPollNs?: number;
  ioPollNs?: number;
  testKnobs?: TestKnobs;
  /** How long the whole boot and run may take before it is called stuck. */
  timeoutMs: number;
  /** Boot milestones and the command being run, for progress output. */
  onMilestone?: (label: string) => void;
  /** Once the VM has started (its NICs' back ends are open), before the guest gets far. */
  started?: (vm: Vm) => Promise<void> | void;
  /** Every console line, with the VM (e.g. to sample its stats as commands start). */
  onLine?: (line: string, vm: Vm) => void;
}

export interface LinuxGuestRun {
  /** Seconds from starting the VM to /init's first line. */
  bootSeconds: number;
  commands: CommandResult[];
}

const MILESTONES: [RegExp, string][] = [
  [/Linux version \d/, 'kernel started'],
  [/smp: Bringing up secondary CPUs/, 'starting secondary CPUs'],
  [/Run \/init as init process/, 'entering user space'],
];

function tail(text: string, lines = 25): string {
  return text.split('\n').slice(-lines).join('\n');
}

export async function runLinuxGuest(o: LinuxGuestOptions): Promise<LinuxGuestRun> {
  let console = '';
  let bootSeconds: number | undefined;
  const t0 = performance.now();
  let vm: Vm | undefined;
  const transcript = new InitTranscript((line) => {
    if (vm) o.onLine?.(line, vm);
    for (const [re, label] of MILESTONES) if (re.test(line)) o.onMilestone?.(label);
    const run = /^nodevisor-init: run \d+: (\S+)$/.exec(line);
    if (run) o.onMilestone?.(`running ${run[1]!.replace(/^.*\//, '')}`);
    if (bootSeconds === undefined && /^nodevisor-init: \d+ CPUs online$/.test(line)) bootSeconds = (performance.now() - t0) / 1000;
  });
  vm = new Vm({ vcpus: o.vcpus, memory: o.memory, irqchip: o.irqchip, kernel: o.kernel, initrd: o.initrd, cmdline: o.cmdline, disks: o.disks, nets: o.nets, haltPollNs: o.haltPollNs, ioPollNs: o.ioPollNs, testKnobs: o.testKnobs });
  vm.on('console', (chunk: Buffer) => {
    const text = chunk.toString('latin1');
    console = (console + text).slice(-64 * 1024);
    transcript.push(text);
  });
  o.onMilestone?.('booting');
  await vm.start();
  try {
    await o.started?.(vm);
  } catch (e) {
    await vm.stop();
    throw e;
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void vm.stop();
  }, o.timeoutMs);
  const result = await vm.wait();
  clearTimeout(timer);
  const failed = transcript.commands.find((c) => c.status !== undefined && c.status !== 0);
  const where = `${o.vcpus} vCPU${o.vcpus === 1 ? '' : 's'}, irqchip ${o.irqchip}, kernel ${o.kernel}`;
  if (failed) throw new Error(`in the guest (${where}), ${failed.program} exited with status ${failed.status}; last console lines:\n${tail(console)}`);
  if (timedOut) {
    const stage = bootSeconds === undefined ? 'the kernel never reached /init' : 'the workloads did not finish';
    throw new Error(`the guest (${where}) made no progress within ${o.timeoutMs / 1000} s: ${stage}; last console lines:\n${tail(console)}`);
  }
  if (result.reason.kind !== 'poweroff' || transcript.initExitStatus !== 0 || bootSeconds === undefined) {
    const stage = bootSeconds === undefined ? 'before /init started' : 'before its workloads finished';
    throw new Error(`the guest (${where}) stopped ${stage}: ${result.message}; last console lines:\n${tail(console)}`);
  }
  return { bootSeconds, commands: transcript.commands };
}
