/**
 * A one-line progress bar on stderr while a benchmark runs. Drawn only on a
 * terminal: piped or redirected stderr (CI logs) gets nothing, not a stream
 * of carriage returns.
 */
import type { BenchProgress } from './runner.js';

const BAR = 24;

export class ProgressBar {
  readonly enabled: boolean;
  private last = '';
  private readonly began = performance.now();

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.enabled = stream.isTTY === true;
  }

  update(p: BenchProgress): void {
    if (!this.enabled) return;
    const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
    const filled = Math.round(frac * BAR);
    const secs = Math.round((performance.now() - this.began) / 1000);
    const line = `${p.suite} [${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ${p.done}/${p.total} ${secs}s ${p.label}`;
    const width = (this.stream.columns || 80) - 1;
    this.draw(line.length > width ? `${line.slice(0, width - 1)}…` : line);
  }

  /** Prints a line above the bar. */
  log(line: string): void {
    if (!this.enabled) {
      this.stream.write(`${line}\n`);
      return;
    }
    const bar = this.last;
    this.clear();
    this.stream.write(`${line}\n`);
    if (bar) this.draw(bar);
  }

  clear(): void {
    if (this.enabled && this.last) this.stream.write('\r\x1b[2K');
    this.last = '';
  }

  private draw(line: string): void {
    this.stream.write(`\r\x1b[2K${line}`);
    this.last = line;
  }
}
