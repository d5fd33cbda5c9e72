/**
 * `nodevisor bench linux`: the test kernel (or yours) booted once per vCPU
 * count, workloads run inside it (nvbench's built-ins, or your static
 * programs), and the same built-ins run as host threads right after each
 * boot as the reference. With an A/B variant (another kernel, irqchip,
 * memory, command line), A and B boot alternately, ABAB..., so both see the
 * same machine and load, and the runner compares B against A.
 */
import { randomFillSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NodevisorError } from '../kvm/errors.js';
import { buildInitramfs } from '../images/initramfs.js';
import { guestProgram } from '../images/guest-programs.js';
import { findTestKernel } from '../images/test-kernel.js';
import { elfInterpreter } from '../images/elf-info.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { TestKnobs } from '../vcpu/test-knobs.js';
import type { BenchContext, Metric, Suite, SuiteResult } from './types.js';
import { suiteSelected, vcpuCounts } from './select.js';
import { runLinuxGuest } from './linux-guest.js';
import type { WorkloadMetric } from './linux-protocol.js';
import { linuxKey, linuxMetrics } from './linux-metrics.js';
import { BUILTIN_WORKLOADS, builtinWorkload, runOnHost, userWorkload, type Workload } from './linux-workloads.js';

/** What a Linux guest run uses; B of an A/B run overrides some of it. */
export interface LinuxVariant {
  /** A bzImage; default the test kernel (`nodevisor image build-test-kernel`). */
  kernel?: string;
  irqchip?: IrqchipMode;
  /** Guest RAM (default 256M). */
  memory?: string;
  /** Appended to the default kernel command line. */
  cmdlineAppend?: string;
  /** VmOptions haltPollNs and ioPollNs; default the VM's. */
  haltPollNs?: number;
  ioPollNs?: number;
  testKnobs?: TestKnobs;
}

export interface LinuxBenchOptions extends LinuxVariant {
  /** Seconds each workload runs per boot (default 2). */
  seconds?: number;
  /** Your static programs (they replace the built-in workloads); each gets its args. */
  workloads?: { program: string; args: string[] }[];
  /** An A/B run: B is A with these changes. */
  ab?: LinuxVariant;
}

export const DEFAULT_LINUX_SECONDS = 2;
const DEFAULT_MEMORY = '256M';
const DISK_BYTES = 64 << 20;
const BOOT_BUDGET_MS = 300_000;

interface ResolvedVariant {
  label: string;
  kernel: string;
  irqchip: IrqchipMode;
  memory: string;
  cmdline?: string;
  haltPollNs?: number;
  ioPollNs?: number;
  testKnobs?: TestKnobs;
}

function checkFile(path: string, what: string): void {
  if (!existsSync(path) || !statSync(path).isFile()) throw new NodevisorError('EBENCH', `${what} ${path} does not exist or is not a regular file`);
}

function resolveVariant(v: LinuxVariant, base?: ResolvedVariant): ResolvedVariant {
  const kernel = v.kernel ?? base?.kernel ?? findTestKernel();
  if (!kernel) throw new NodevisorError('EBENCH', 'the linux suite needs a kernel: build the test kernel (`nodevisor image build-test-kernel`) or give --kernel');
  checkFile(kernel, 'kernel');
  const irqchip = v.irqchip ?? base?.irqchip ?? 'user';
  const memory = v.memory ?? base?.memory ?? DEFAULT_MEMORY;
  const append = [base?.cmdline, v.cmdlineAppend].filter(Boolean).join(' ') || undefined;
  const testKnobs = v.testKnobs;
  const haltPollNs = v.haltPollNs ?? base?.haltPollNs;
  const ioPollNs = v.ioPollNs ?? base?.ioPollNs;
  const label = [
    basename(kernel) === 'bzImage' ? kernel : basename(kernel),
    `irqchip ${irqchip}`,
    memory,
    ...(append ? [`cmdline +"${append}"`] : []),
    ...(haltPollNs !== undefined ? [`halt poll ${haltPollNs} ns`] : []),
    ...(ioPollNs !== undefined ? [`I/O poll ${ioPollNs} ns`] : []),
    ...(testKnobs ? [`test knobs ${JSON.stringify(testKnobs)}`] : []),
  ].join(', ');
  return { label, kernel, irqchip, memory, cmdline: append, ...(haltPollNs !== undefined ? { haltPollNs } : {}), ...(ioPollNs !== undefined ? { ioPollNs } : {}), testKnobs };
}

/** The kernel command line for a variant: nodevisor's default plus what the variant appends. */
function cmdlineOf(v: ResolvedVariant): string | undefined {
  return v.cmdline ? `console=ttyS0 ${v.cmdline}` : undefined;
}

function push<K, T>(map: Map<K, T[]>, key: K, value: T): void {
  map.set(key, [...(map.get(key) ?? []), value]);
}

async function run(ctx: BenchContext): Promise<SuiteResult> {
  const o = ctx.linux ?? {};
  const seconds = o.seconds ?? DEFAULT_LINUX_SECONDS;
  if (!(seconds > 0 && seconds <= 3600)) throw new NodevisorError('EBENCH', `the workload duration must be between 0 and 3600 seconds (got ${seconds})`);
  const a = resolveVariant(o);
  const variants = o.ab ? [a, resolveVariant(o.ab, a)] : [a];
  const counts = vcpuCounts(ctx.maxVcpus);
  const nvbench = guestProgram('nvbench');
  const dir = mkdtempSync(join(tmpdir(), 'nodevisor-bench-linux-'));
  const notes: string[] = [];
  try {
    let workloads: Workload[];
    const files: { path: string; data: Uint8Array }[] = [];
    const image = join(dir, 'disk.img');
    if (o.workloads?.length) {
      workloads = o.workloads.map((u) => userWorkload(u.program, u.args));
      const names = new Set<string>();
      for (const u of o.workloads) {
        checkFile(u.program, 'workload');
        const name = basename(u.program);
        if (names.has(name)) throw new NodevisorError('EBENCH', `two workloads are named ${name}: give them different file names`);
        names.add(name);
        const bytes = readFileSync(u.program);
        if (elfInterpreter(bytes)) throw new NodevisorError('EBENCH', `workload ${u.program} is dynamically linked: the guest has no libraries; link it with -static`);
        files.push({ path: `bin/${name}`, data: bytes });
      }
    } else {
      workloads = BUILTIN_WORKLOADS.filter((w) => suiteSelected(`linux.${w}`, ctx.only)).map((w) => builtinWorkload(w, seconds, nvbench, image));
      files.push({ path: 'bin/nvbench', data: readFileSync(nvbench) });
    }
    const disks = workloads.some((w) => w.name === 'disk') ? [{ path: image, readonly: true }] : [];
    if (disks.length) {
      const bytes = Buffer.alloc(DISK_BYTES);
      randomFillSync(bytes);
      writeFileSync(image, bytes);
    }
    const initrd = buildInitramfs({ files, runList: workloads.map((w) => w.guestCommand) });
    const timeoutMs = BOOT_BUDGET_MS + workloads.length * (seconds * 2000 + 60_000);

    const guest = variants.map(() => new Map<string, WorkloadMetric[][]>());
    const boot = variants.map(() => new Map<number, number[]>());
    const host = new Map<string, WorkloadMetric[][]>();
    const steps = ctx.repetitions * counts.length * (variants.length + 1);
    let done = 0;
    for (let rep = 0; rep < ctx.repetitions; rep++) {
      for (const n of counts) {
        for (const [i, v] of variants.entries()) {
          const who = `${variants.length > 1 ? `${'AB'[i]}, ` : ''}${n} vCPU${n === 1 ? '' : 's'}, repetition ${rep + 1}/${ctx.repetitions}`;
          const r = await runLinuxGuest({
            kernel: v.kernel,
            initrd,
            vcpus: n,
            memory: v.memory,
            irqchip: v.irqchip,
            cmdline: cmdlineOf(v),
            disks,
            ...(v.haltPollNs !== undefined ? { haltPollNs: v.haltPollNs } : {}),
            ...(v.ioPollNs !== undefined ? { ioPollNs: v.ioPollNs } : {}),
            testKnobs: v.testKnobs,
            timeoutMs,
            onMilestone: (label) => ctx.progress(done, steps, `linux: ${who}: ${label}`),
          });
          ctx.log(`${who}: /init after ${r.bootSeconds.toFixed(1)} s`);
          done++;
          push(boot[i]!, n, r.bootSeconds);
          workloads.forEach((w, k) => push(guest[i]!, linuxKey(w.name, n), r.commands[k]?.metrics ?? []));
        }
        const env = { ...process.env, NODEVISOR_VCPUS: String(n) };
        for (const w of workloads) {
          if (!w.hostArgv) continue;
          ctx.progress(done, steps, `linux: host reference for ${n} vCPU${n === 1 ? '' : 's'}: ${w.name}`);
          push(host, linuxKey(w.name, n), await runOnHost(w.hostArgv(n), env, seconds * 1000 + 60_000));
        }
        done++;
      }
    }
    ctx.progress(steps, steps, 'linux: done');
    const metricsOf = (i: number): Metric[] =>
      linuxMetrics({
        counts,
        workloads,
        guest: guest[i]!,
        host,
        boot: boot[i]!,
        context: { irqchip: variants[i]!.irqchip, kernel: basename(variants[i]!.kernel), memory: variants[i]!.memory, seconds },
      });
    notes.push(`A: ${a.label}`);
    if (workloads.some((w) => !w.hostArgv)) notes.push('user workloads have no host reference: only their own metrics are reported');
    const result: SuiteResult = { suite: 'linux', metrics: metricsOf(0), notes };
    if (variants.length > 1) result.ab = { a: a.label, b: variants[1]!.label, metrics: metricsOf(1), notes: [`B: ${variants[1]!.label}`] };
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const linuxSuite: Suite = {
  name: 'linux',
  description: 'the Linux test kernel at 1, 2, 4... vCPUs running workloads in user space (CPU, wake-up ping-pong, lock, fork, disk) against host threads; A/B kernels or options',
  run,
};
