import { expect } from 'chai';

export interface CpioMember {
  mode: number;
  rdevMajor: number;
  rdevMinor: number;
  data: Buffer;
}

/** Reads a newc archive back (the kernel's view of it), keyed by path. */
export function parseCpio(archive: Buffer): Map<string, CpioMember> {
  const out = new Map<string, CpioMember>();
  let at = 0;
  const align = (n: number): number => (n + 3) & ~3;
  for (;;) {
    expect(archive.toString('latin1', at, at + 6)).to.equal('070701');
    const f = (i: number): number => parseInt(archive.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const [mode, size, rdevMajor, rdevMinor, nameSize] = [f(1), f(6), f(9), f(10), f(11)];
    const name = archive.toString('utf8', at + 110, at + 110 + nameSize - 1);
    at = align(at + 110 + nameSize);
    if (name === 'TRAILER!!!') return out;
    out.set(name, { mode, rdevMajor, rdevMinor, data: archive.subarray(at, at + size) });
    at = align(at + size);
  }
}
