/**
 * The guest-physical address map of a PC: RAM from 0, the PCI hole below
 * 4 GiB (which holds the IOAPIC at 0xFEC00000 and the LAPIC at 0xFEE00000),
 * and whatever RAM does not fit below the hole placed above 4 GiB.
 */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** Start of the PCI hole; RAM beyond this size moves above 4 GiB. */
export const PCI_HOLE_START = 3 * GiB;
export const HIGH_RAM_START = 4 * GiB;
/** One memory slot / SharedArrayBuffer covers at most this much. */
export const MAX_REGION = 2 * GiB;
export const MIN_MEMORY = 4 * MiB;
/** A typed array may span at most this much; keep regions well inside it. */
export const MAX_MEMORY = 1024 * GiB;

export interface RamRange {
  gpa: number;
  size: number;
}

/** RAM ranges for `size` bytes of guest memory, split so none exceeds MAX_REGION. */
export function ramRanges(size: number): RamRange[] {
  const low = Math.min(size, PCI_HOLE_START);
  const ranges: RamRange[] = [];
  const push = (gpa: number, len: number): void => {
    for (let at = 0; at < len; at += MAX_REGION) ranges.push({ gpa: gpa + at, size: Math.min(MAX_REGION, len - at) });
  };
  push(0, low);
  if (size > low) push(HIGH_RAM_START, size - low);
  return ranges;
}

/** Parses sizes like "512M", "2G", "65536K", "1048576" (bytes) as the CLI accepts them. */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*$/.exec(text);
  if (!m) throw new RangeError(`cannot parse size "${text}": use a number with an optional K, M, G or T suffix (e.g. 512M)`);
  const unit = { '': 1, k: KiB, m: MiB, g: GiB, t: 1024 * GiB }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * unit);
}

export function formatSize(bytes: number): string {
  for (const [unit, n] of [['G', GiB], ['M', MiB], ['K', KiB]] as const) {
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes}`;
}
