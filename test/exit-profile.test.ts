import { expect } from 'chai';
import { ExitKind, ExitProfileRecorder, allocateExitProfile, readExitProfile } from '../src/vcpu/exit-profile.js';
import { formatExitProfile } from '../src/vm/exit-profile-table.js';

describe('exit profile', () => {
  it('counts exits per kind and address, per vCPU, and merges the vCPUs, most exits first', () => {
    const buffer = allocateExitProfile(2);
    const a = new ExitProfileRecorder(buffer, 0);
    const b = new ExitProfileRecorder(buffer, 1);
    let named = 0;
    const name = (n: string) => () => (named++, n);
    for (let i = 0; i < 3; i++) a.record(ExitKind.PioOut, 0x3f8, 1000, name('uart16550'));
    b.record(ExitKind.PioOut, 0x3f8, 2000, name('uart16550'));
    b.record(ExitKind.PioIn, 0x3f8, 500, name('uart16550'));
    a.record(ExitKind.MmioWrite, 0xfee000b0, 3000, name('lapic'));
    a.record(ExitKind.MmioWrite, 0x1_0000_00b0, 10, name('far'));
    a.record(ExitKind.Other, 5, 0, name('Hlt'));
    expect(named, 'a name is asked for once per new entry').to.equal(6);
    expect(readExitProfile(buffer, 2)).to.deep.equal([
      { kind: 'pio-out', address: 0x3f8, device: 'uart16550', exits: 4, vmmNs: 5000 },
      { kind: 'exit', address: 5, device: 'Hlt', exits: 1, vmmNs: 0 },
      { kind: 'pio-in', address: 0x3f8, device: 'uart16550', exits: 1, vmmNs: 500 },
      { kind: 'mmio-write', address: 0xfee000b0, device: 'lapic', exits: 1, vmmNs: 3000 },
      { kind: 'mmio-write', address: 0x1_0000_00b0, device: 'far', exits: 1, vmmNs: 10 },
    ]);
  });

  it('counts what no longer fits in the table as "other" instead of losing it', () => {
    const buffer = allocateExitProfile(1);
    const r = new ExitProfileRecorder(buffer, 0);
    for (let a = 0; a < 2000; a++) r.record(ExitKind.MmioRead, 0x1000 * a, 1, () => 'dev');
    const entries = readExitProfile(buffer, 1);
    expect(entries.reduce((n, e) => n + e.exits, 0)).to.equal(2000);
    const other = entries.find((e) => e.kind === 'other');
    expect(other!.exits).to.equal(2000 - (entries.length - 1));
  });

  it('prints a table with shares and the VMM time per exit', () => {
    const text = formatExitProfile([
      { kind: 'pio-out', address: 0x3f8, device: 'uart16550', exits: 3, vmmNs: 6000 },
      { kind: 'exit', address: 5, device: 'Hlt', exits: 1, vmmNs: 0 },
    ]);
    expect(text).to.match(/^exits\s+share\s+kind\s+address\s+device\s+VMM us\/exit$/m);
    expect(text).to.match(/^\s*3\s+75\.0%\s+pio-out\s+0x3f8\s+uart16550\s+2\.0$/m);
    expect(text).to.match(/^\s*1\s+25\.0%\s+exit\s+Hlt$/m);
    expect(text).to.match(/total: 4 exits$/);
    expect(formatExitProfile([])).to.equal('no exits recorded');
  });
});
