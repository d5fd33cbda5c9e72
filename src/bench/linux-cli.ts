/** The linux suite's command-line options (`nodevisor bench linux ...`), checked before anything runs. */
import { parseSize } from '../memory/layout.js';
import { IRQCHIP_MODES } from '../vm/options.js';
import { MAX_POLL_NS } from '../vm/vm-config.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { LinuxBenchOptions, LinuxVariant } from './linux.js';

export class LinuxUsageError extends Error {}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;
interface Token {
  kind: string;
  name?: string;
  value?: string;
}

const LINUX_FLAGS = ['kernel', 'irqchip', 'memory', 'cmdline-append', 'halt-poll-ns', 'io-poll-ns', 'seconds', 'workload', 'workload-arg', 'ab-kernel', 'ab'];

function irqchipOf(text: string, flag: string): IrqchipMode {
  if (!(IRQCHIP_MODES as readonly string[]).includes(text)) throw new LinuxUsageError(`${flag} must be one of ${IRQCHIP_MODES.join(', ')} (got "${text}")`);
  return text as IrqchipMode;
}

function memoryOf(text: string, flag: string): string {
  try {
    parseSize(text);
  } catch (e) {
    throw new LinuxUsageError(`${flag}: ${(e as Error).message}`);
  }
  return text;
}

const AB_KEYS = 'irqchip, memory, kernel, cmdline-append, halt-poll-ns or io-poll-ns';

function nsOf(text: string, flag: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_POLL_NS) throw new LinuxUsageError(`${flag} must be a whole number of ns from 0 to ${MAX_POLL_NS} (got "${text}")`);
  return n;
}

/** `--ab KEY=VALUE` settings. */
function abSetting(variant: LinuxVariant, spec: string): void {
  const eq = spec.indexOf('=');
  const key = eq < 0 ? spec : spec.slice(0, eq);
  const value = eq < 0 ? '' : spec.slice(eq + 1);
  if (eq < 0 || value === '') throw new LinuxUsageError(`--ab needs KEY=VALUE, with KEY one of ${AB_KEYS} (got "${spec}")`);
  if (key === 'irqchip') variant.irqchip = irqchipOf(value, '--ab irqchip');
  else if (key === 'memory') variant.memory = memoryOf(value, '--ab memory');
  else if (key === 'kernel') variant.kernel = value;
  else if (key === 'cmdline-append') variant.cmdlineAppend = value;
  else if (key === 'halt-poll-ns') variant.haltPollNs = nsOf(value, '--ab halt-poll-ns');
  else if (key === 'io-poll-ns') variant.ioPollNs = nsOf(value, '--ab io-poll-ns');
  else throw new LinuxUsageError(`--ab: unknown setting "${key}": use ${AB_KEYS}`);
}

/** The linux suite's options, or undefined when none was given; throws LinuxUsageError on misuse. */
export function linuxOptions(values: Values, tokens: readonly Token[] | undefined, suites: readonly string[]): LinuxBenchOptions | undefined {
  const given = LINUX_FLAGS.filter((f) => values[f] !== undefined);
  if (given.length === 0) return undefined;
  if (!suites.includes('linux')) throw new LinuxUsageError(`--${given[0]} is an option of the linux suite: run \`nodevisor bench linux --${given[0]} ...\``);
  const o: LinuxBenchOptions = {};
  const str = (f: string): string | undefined => values[f] as string | undefined;
  if (str('kernel') !== undefined) o.kernel = str('kernel');
  if (str('irqchip') !== undefined) o.irqchip = irqchipOf(str('irqchip')!, '--irqchip');
  if (str('memory') !== undefined) o.memory = memoryOf(str('memory')!, '--memory');
  if (str('cmdline-append') !== undefined) o.cmdlineAppend = str('cmdline-append');
  if (str('halt-poll-ns') !== undefined) o.haltPollNs = nsOf(str('halt-poll-ns')!, '--halt-poll-ns');
  if (str('io-poll-ns') !== undefined) o.ioPollNs = nsOf(str('io-poll-ns')!, '--io-poll-ns');
  if (str('seconds') !== undefined) {
    const s = Number(str('seconds'));
    if (!/^\d+(\.\d+)?$/.test(str('seconds')!.trim()) || !(s > 0) || s > 3600) throw new LinuxUsageError(`--seconds must be a number of seconds above 0, at most 3600 (got "${str('seconds')}")`);
    o.seconds = s;
  }
  // --workload-arg belongs to the --workload before it: walk the tokens in order.
  const workloads: { program: string; args: string[] }[] = [];
  for (const t of tokens ?? []) {
    if (t.kind !== 'option') continue;
    if (t.name === 'workload') workloads.push({ program: t.value!, args: [] });
    else if (t.name === 'workload-arg') {
      const last = workloads[workloads.length - 1];
      if (!last) throw new LinuxUsageError('--workload-arg must follow the --workload it belongs to');
      last.args.push(t.value!);
    }
  }
  if (workloads.length) o.workloads = workloads;
  const ab: LinuxVariant = {};
  if (str('ab-kernel') !== undefined) ab.kernel = str('ab-kernel');
  for (const spec of (values.ab as string[] | undefined) ?? []) abSetting(ab, spec);
  if (Object.keys(ab).length) o.ab = ab;
  return o;
}
