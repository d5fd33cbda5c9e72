import { expect } from 'chai';
import { I440fxPmc, PamArea, PamMode, PAM_SEGMENTS, pamModes, segmentIndex, type PamMode as Mode } from '../src/devices/i440fx-pam.js';
import { PciConfigSpace } from '../src/devices/pci-config.js';
import { PCI_HOST_BRIDGE_ID } from '../src/devices/pci-host.js';
import { GuestMemory } from '../src/memory/guest-memory.js';

function pmc(onChange?: (m: Mode[], b: Mode[]) => void): { pmc: I440fxPmc; bridge: PciConfigSpace } {
  const bridge = new PciConfigSpace(PciConfigSpace.allocate({ ...PCI_HOST_BRIDGE_ID }));
  return { pmc: new I440fxPmc(I440fxPmc.allocate(), bridge, onChange), bridge };
}

describe('i440FX PAM registers (shadow RAM attributes of 0xC0000-0xFFFFF)', () => {
  it('covers 0xC0000-0xEFFFF in twelve 16 KiB segments and 0xF0000-0xFFFFF in one 64 KiB segment', () => {
    expect(PAM_SEGMENTS.map((s) => [s.start, s.size])).to.deep.equal([
      ...Array.from({ length: 12 }, (_, i) => [0xc0000 + i * 0x4000, 0x4000]),
      [0xf0000, 0x10000],
    ]);
    expect(segmentIndex(0xc0000)).to.equal(0);
    expect(segmentIndex(0xeffff)).to.equal(11);
    expect(segmentIndex(0xfffff)).to.equal(12);
  });
  it('power on with every segment on the bus (reads come from the BIOS flash)', () => {
    expect(pmc().pmc.modes().every((m) => m === PamMode.Bus)).to.equal(true);
  });
  it('keeps only the RE/WE bits: PAM0 its upper pair, PAM1-6 both pairs', () => {
    const { pmc: p } = pmc();
    p.configWrite(0x58, 4, 0xffffffff);
    p.configWrite(0x5c, 4, 0xffffffff);
    expect(p.configRead(0x59, 1)).to.equal(0x30);
    expect(p.configRead(0x5a, 2)).to.equal(0x3333);
    expect(p.configRead(0x5c, 4)).to.equal(0x33333333);
    expect(p.modes().every((m) => m === PamMode.ReadWrite)).to.equal(true);
  });
  it('passes the rest of the configuration space to the bridge', () => {
    const { pmc: p } = pmc();
    expect(p.configRead(0, 4)).to.equal(0x12378086);
    // The byte at 0x58 is the bridge's (0, writes ignored); PAM0 keeps 0x10 of 0x11.
    p.configWrite(0x58, 4, 0x11111111);
    expect(p.configRead(0x58, 4)).to.equal(0x11111000);
  });
  it('decodes the fields segment by segment, low nibble first', () => {
    const regs = [0x10, 0x31, 0x00, 0x00, 0x00, 0x00, 0x02];
    const modes = pamModes(regs);
    expect(modes[0]).to.equal(PamMode.ReadOnly);
    expect(modes[1]).to.equal(PamMode.ReadWrite);
    expect(modes[10]).to.equal(PamMode.WriteOnly);
    expect(modes[12]).to.equal(PamMode.ReadOnly);
  });
  it('tells the memory map about a change (new and old modes), once per write that changes something', () => {
    const calls: Array<[Mode[], Mode[]]> = [];
    const { pmc: p } = pmc((m, b) => calls.push([m, b]));
    p.configWrite(0x59, 1, 0x30);
    p.configWrite(0x59, 1, 0x30);
    expect(calls.length).to.equal(1);
    expect(calls[0]![0][12]).to.equal(PamMode.ReadWrite);
    expect(calls[0]![1][12]).to.equal(PamMode.Bus);
  });

  describe('accesses that reach the VMM (no memory slot takes them)', () => {
    const ram = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(2 * 1024 * 1024) }]);
    const rom = Uint8Array.from({ length: 0x40000 }, (_, i) => i & 0xff);
    const modes: Mode[] = PAM_SEGMENTS.map(() => PamMode.Bus);
    const area = new PamArea({ modes: () => modes }, ram, rom);
    it('reads the flash image (which ends at 1 MiB) in bus mode and drops writes', () => {
      area.write(0x30010, 1, 0x55);
      expect(ram.readU8(0xf0010)).to.equal(0);
      expect(area.read(0x30010, 2)).to.equal(0x1110);
    });
    it('writes DRAM but reads the flash in write-only mode', () => {
      modes[12] = PamMode.WriteOnly;
      area.write(0x30020, 4, 0xdeadbeef);
      expect(ram.readU32(0xf0020)).to.equal(0xdeadbeef);
      expect(area.read(0x30020, 1)).to.equal(0x20);
    });
    it('reads DRAM and drops writes in read-only mode', () => {
      modes[12] = PamMode.ReadOnly;
      area.write(0x30020, 1, 0);
      expect(area.read(0x30020, 4)).to.equal(0xdeadbeef);
    });
    it('reads 0xFF on the bus where a small image does not reach', () => {
      const small = new PamArea({ modes: () => PAM_SEGMENTS.map(() => PamMode.Bus) }, ram, new Uint8Array(0x20000));
      expect(small.read(0, 4)).to.equal(0xffffffff);
      expect(small.read(0x20000, 1)).to.equal(0);
    });
  });
});

describe('i440FX PAM registers in a snapshot', () => {
  it('come back as saved, and loading them says which modes to map', () => {
    const state = I440fxPmc.allocate();
    const p = new I440fxPmc(state, new PciConfigSpace(PciConfigSpace.allocate({ ...PCI_HOST_BRIDGE_ID })));
    p.configWrite(0x59, 1, 0x30); // PAM0: the F segment read/write
    p.configWrite(0x5d, 1, 0x11); // PAM4: 0xD8000-0xDFFFF read-only
    const fresh = I440fxPmc.allocate();
    const modes = I440fxPmc.load(fresh, I440fxPmc.save(state));
    expect(modes).to.deep.equal(p.modes());
    expect(modes[12]).to.equal(PamMode.ReadWrite);
    expect(modes.slice(6, 8)).to.deep.equal([PamMode.ReadOnly, PamMode.ReadOnly]);
    const q = new I440fxPmc(fresh, new PciConfigSpace(PciConfigSpace.allocate({ ...PCI_HOST_BRIDGE_ID })));
    expect([0x59, 0x5d].map((o) => q.configRead(o, 1))).to.deep.equal([0x30, 0x11]);
  });
});
