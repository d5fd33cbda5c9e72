/** The last bytes of a stream of console output, as text. */
export class TextTail {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.limit) this.size -= this.chunks.shift()!.length;
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.limit)).toString('latin1');
  }
}

/** The reason in the last "Kernel panic - not syncing: ..." line of `console`, if any. */
export function panicMessage(console: string): string | undefined {
  const lines = [...console.matchAll(/Kernel panic - not syncing: ([^\r\n]*)/g)];
  const last = lines[lines.length - 1];
  return last ? last[1]!.trim() : undefined;
}

/**
 * A reset after the firmware gave up: SeaBIOS prints "No bootable device."
 * and, once `etc/boot-fail-wait` has passed, resets. What it said about
 * each device it tried ("Boot failed: not a bootable disk") becomes the
 * detail; null when the console shows no such failure.
 */
export function firmwareBootFailure(text: string): string | null {
  const tail = text.slice(text.lastIndexOf('SeaBIOS ('));
  if (!/No bootable device/.test(tail)) return null;
  const reasons = [...tail.matchAll(/Boot failed: ([^\r\n]*)/g)].map((m) => m[1]!.trim());
  return [...new Set(reasons)].join('; ');
}
