/**
 * `nodevisor bench`: runs suites, prints a table, optionally writes JSON
 * and SVG charts and compares with a baseline. Returns the exit status.
 */
import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { joinNegativeValues } from '../args.js';
import { NodevisorError } from '../kvm/errors.js';
import { compareToBaseline, parseTolerances, type ToleranceOverrides } from './compare.js';
import { compareAb } from './ab.js';
import { linuxOptions, LinuxUsageError } from './linux-cli.js';
import type { LinuxBenchOptions } from './linux.js';
import { ProgressBar } from './progress.js';
import { formatReport, readReportFile, writeReportJson } from './report.js';
import type { BenchReport } from './report-types.js';
import { DEFAULT_REPETITIONS, runBenchmark } from './runner.js';
import { DEFAULT_SUITES, SUITES } from './suites.js';
import { writeCharts } from './svg.js';

/** Exit statuses of `nodevisor bench`. */
export const BenchExit = { ok: 0, regressed: 1, strictInconclusive: 2, suiteFailed: 3, usage: 64 } as const;

export function benchUsage(): string {
  const suites = [...SUITES.values()].map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join('\n');
  const defaults = DEFAULT_SUITES.filter((n) => SUITES.has(n)).join(' and ');
  return `Usage: nodevisor bench [suite...] [options]

Runs benchmark suites (default: ${defaults}) and prints the median, spread
and sample count of every metric. With --baseline, compares with an earlier
--json report and fails when a metric regressed beyond its tolerance.

Suites:
${suites}

Options:
  --repetitions N     samples per metric (default ${DEFAULT_REPETITIONS})
  --max-vcpus N       largest vCPU count for scaling runs (default: host CPUs, here ${availableParallelism()})
  --only ID,...       only these metric ids or dotted prefixes (e.g. micro.ipi-rtt); repeatable
  --json FILE         write the report: raw samples, summaries, machine, settings, comparison
  --svg DIR           write charts: scaling vs ideal, latency distributions per irqchip mode
  --baseline FILE     compare with a report written by --json
  --tolerance T       allowed relative change: for every metric (0.15 or 15%), or
                      for an id or prefix (micro.ipi-rtt.user=0.3); repeatable,
                      the most specific wins; default: each metric's own
  --strict            inconclusive or missing metrics fail too
  --verbose           print every repetition's value

Options of the linux suite (nodevisor bench linux ...):
  --kernel FILE       the bzImage to boot (default: the test kernel)
  --irqchip MODE      user (default), split or kernel
  --memory SIZE       guest RAM (default 256M)
  --cmdline-append T  appended to the kernel command line
  --halt-poll-ns N    halted vCPUs poll up to N ns (default: the VM's; see
                      nodevisor run --help)
  --io-poll-ns N      idle I/O threads poll up to N ns (default: the VM's)
  --seconds S         how long each workload runs per boot (default 2)
  --workload PROG     run your static program instead of the built-in
                      workloads (repeatable); it gets NODEVISOR_VCPUS in its
                      environment and prints lines
                      "metric NAME VALUE UNIT higher|lower"
  --workload-arg A    an argument for the --workload before it (repeatable)
  --ab-kernel FILE    A/B run: B boots this kernel, A the --kernel one
  --ab KEY=VALUE      A/B run: B differs from A in irqchip, memory, kernel,
                      cmdline-append, halt-poll-ns or io-poll-ns (repeatable);
                      A and B boot alternately and B is compared against A
                      with the rules below
  --list              list the suites and exit
  -h, --help          show this help

A change counts only when it exceeds the tolerance and the two runs' sample
bands (p10-p90 from 10 samples, else min-max) do not overlap; a metric whose
noise exceeds its tolerance is "inconclusive", never "pass".

Exit status: 0 no regression; 1 a metric regressed; 2 with --strict, a
metric was inconclusive or missing; 3 a suite failed; 64 bad usage or an
unreadable baseline.`;
}

interface BenchArgs {
  suites: string[];
  repetitions: number;
  maxVcpus: number;
  only?: string[];
  json?: string;
  svg?: string;
  baseline?: BenchReport;
  baselineFile?: string;
  tolerances: ToleranceOverrides;
  strict: boolean;
  verbose: boolean;
  linux?: LinuxBenchOptions;
}

class UsageError extends Error {}

function positiveInt(name: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer (got "${text}")`);
  return n;
}

function writableDirOf(file: string, flag: string): void {
  const dir = dirname(resolve(file));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--${flag} ${file}: directory ${dir} does not exist`);
}

/** Parses and checks everything before any benchmark runs: a typo should not cost a ten-minute run. */
function parse(args: string[]): BenchArgs | 'help' | 'list' {
  const { values, positionals, tokens } = parseArgs({
    args: joinNegativeValues(args),
    allowPositionals: true,
    options: {
      repetitions: { type: 'string' },
      'max-vcpus': { type: 'string' },
      only: { type: 'string', multiple: true },
      json: { type: 'string' },
      svg: { type: 'string' },
      baseline: { type: 'string' },
      tolerance: { type: 'string', multiple: true },
      strict: { type: 'boolean' },
      verbose: { type: 'boolean', short: 'v' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      kernel: { type: 'string' },
      irqchip: { type: 'string' },
      memory: { type: 'string' },
      'cmdline-append': { type: 'string' },
      'halt-poll-ns': { type: 'string' },
      'io-poll-ns': { type: 'string' },
      seconds: { type: 'string' },
      workload: { type: 'string', multiple: true },
      'workload-arg': { type: 'string', multiple: true },
      'ab-kernel': { type: 'string' },
      ab: { type: 'string', multiple: true },
    },
    tokens: true,
  });
  if (values.help) return 'help';
  if (values.list) return 'list';
  for (const s of positionals) if (!SUITES.has(s)) throw new UsageError(`unknown suite "${s}": available: ${[...SUITES.keys()].join(', ')}`);
  const only = values.only?.flatMap((o) => o.split(',')).map((o) => o.trim()).filter((o) => o);
  if (values.json !== undefined) writableDirOf(values.json, 'json');
  if (values.svg !== undefined && existsSync(values.svg) && !statSync(values.svg).isDirectory()) throw new UsageError(`--svg ${values.svg} exists and is not a directory`);
  const out: BenchArgs = {
    suites: positionals,
    repetitions: positiveInt('repetitions', values.repetitions, DEFAULT_REPETITIONS),
    maxVcpus: positiveInt('max-vcpus', values['max-vcpus'], availableParallelism()),
    only: only?.length ? only : undefined,
    json: values.json,
    svg: values.svg,
    tolerances: parseTolerances(values.tolerance ?? []),
    strict: values.strict ?? false,
    verbose: values.verbose ?? false,
  };
  const abRun = values['ab-kernel'] !== undefined || (values.ab?.length ?? 0) > 0;
  if (values.tolerance?.length && values.baseline === undefined && !abRun) throw new UsageError('--tolerance applies to a comparison: give --baseline FILE (or an A/B run) too');
  if (values.baseline !== undefined) {
    out.baseline = readReportFile(values.baseline);
    out.baselineFile = values.baseline;
  }
  out.linux = linuxOptions(values, tokens, positionals);
  if (out.linux?.ab && out.baseline) throw new UsageError('an A/B run compares B against A: it cannot take --baseline too');
  return out;
}

export async function benchCommand(args: string[]): Promise<number> {
  let a: ReturnType<typeof parse>;
  try {
    a = parse(args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof LinuxUsageError || e instanceof NodevisorError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`nodevisor bench: ${(e as Error).message}\n`);
      return BenchExit.usage;
    }
    throw e;
  }
  if (a === 'help') {
    process.stdout.write(`${benchUsage()}\n`);
    return BenchExit.ok;
  }
  if (a === 'list') {
    for (const s of SUITES.values()) process.stdout.write(`${s.name}\t${s.description}\n`);
    return BenchExit.ok;
  }
  const bar = new ProgressBar();
  let report: BenchReport;
  try {
    report = await runBenchmark({
      suites: a.suites,
      repetitions: a.repetitions,
      maxVcpus: a.maxVcpus,
      only: a.only,
      linux: a.linux,
      onProgress: (p) => bar.update(p),
      onLog: (suite, message) => a.verbose && bar.log(`${suite}: ${message}`),
    });
  } catch (e) {
    bar.clear();
    if (e instanceof NodevisorError) {
      process.stderr.write(`nodevisor bench: ${e.message}\n`);
      return BenchExit.usage;
    }
    throw e;
  } finally {
    bar.clear();
  }
  if (a.baseline) report.comparison = compareToBaseline(report, a.baseline, { tolerances: a.tolerances, strict: a.strict, source: a.baselineFile });
  else if (report.ab) report.comparison = compareAb(report, { tolerances: a.tolerances, strict: a.strict });
  process.stdout.write(formatReport(report));
  if (a.json) {
    writeReportJson(a.json, report);
    process.stdout.write(`\nreport written to ${a.json}\n`);
  }
  if (a.svg) {
    const files = writeCharts(report, a.svg);
    process.stdout.write(files.length ? `charts written: ${files.join(', ')}\n` : `no charts: the report has no scaling or per-irqchip metrics\n`);
  }
  if (report.suites.some((s) => s.error)) return BenchExit.suiteFailed;
  return report.comparison?.exitStatus ?? BenchExit.ok;
}
