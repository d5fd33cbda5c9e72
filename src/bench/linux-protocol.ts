/**
 * What comes back from a Linux guest over its console during `nodevisor
 * bench linux`: nodevisor's /init announces each command of its run list
 * and its exit status, and workloads print their results as
 *
 *   metric NAME VALUE UNIT higher|lower
 *
 * NAME is letters, digits, '_', '-' and '.', VALUE a finite number, UNIT
 * anything without blanks. Pure parsing: no VM here.
 */
import type { Better } from './types.js';

export interface WorkloadMetric {
  name: string;
  value: number;
  unit: string;
  better: Better;
}

export interface CommandResult {
  /** 1-based position in the run list. */
  index: number;
  /** The program /init ran. */
  program: string;
  /** Exit status; undefined while it still runs. */
  status?: number;
  metrics: WorkloadMetric[];
}

const METRIC_LINE = /^metric ([A-Za-z0-9_][A-Za-z0-9_.-]*) (\S+) (\S+) (higher|lower)$/;

/** One `metric` line, or null if the line is not one (or its value is not a finite number). */
export function parseMetricLine(line: string): WorkloadMetric | null {
  const m = METRIC_LINE.exec(line.trim());
  if (!m) return null;
  const value = Number(m[2]);
  if (!Number.isFinite(value) || m[2]!.trim() === '') return null;
  return { name: m[1]!, value, unit: m[3]!, better: m[4] as Better };
}

/** Every metric line of a program's own output (the host reference runs). */
export function parseMetricLines(text: string): WorkloadMetric[] {
  return text.split(/\r?\n/).map(parseMetricLine).filter((m): m is WorkloadMetric => m !== null);
}

/**
 * Follows a guest console: which run-list command is running, its metric
 * lines and exit status, and when /init reported the CPUs it sees. Feed it
 * output as it arrives; partial lines wait for their end.
 */
export class InitTranscript {
  readonly commands: CommandResult[] = [];
  /** CPUs /init reported online, once it has. */
  cpusOnline?: number;
  /** /init's own exit status line, once it came. */
  initExitStatus?: number;
  private partial = '';
  private current?: CommandResult;

  constructor(private readonly onLine?: (line: string) => void) {}

  push(text: string): void {
    const lines = (this.partial + text).split('\n');
    this.partial = lines.pop()!;
    for (const raw of lines) this.line(raw.replace(/\r$/, ''));
  }

  private line(line: string): void {
    this.onLine?.(line);
    let m: RegExpExecArray | null;
    if ((m = /^nodevisor-init: (\d+) CPUs online$/.exec(line))) this.cpusOnline = Number(m[1]);
    else if ((m = /^nodevisor-init: run (\d+): (\S+)$/.exec(line))) {
      this.current = { index: Number(m[1]), program: m[2]!, metrics: [] };
      this.commands.push(this.current);
    } else if ((m = /^nodevisor-init: run (\d+) exited with status (\d+)$/.exec(line))) {
      const c = this.commands.find((x) => x.index === Number(m![1]));
      if (c) c.status = Number(m[2]);
      this.current = undefined;
    } else if ((m = /^nodevisor-init: exit status (\d+)$/.exec(line))) this.initExitStatus = Number(m[1]);
    else if (this.current) {
      const metric = parseMetricLine(line);
      if (metric) this.current.metrics.push(metric);
    }
  }
}
