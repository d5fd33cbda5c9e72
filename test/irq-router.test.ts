import { expect } from 'chai';
import { Ioapic, IoapicMmio, IoapicReg } from '../src/irqchip/ioapic.js';
import { DEFAULT_ISA_OVERRIDES, intiFlags, IrqRouter, isaRoutes, type IrqInputs } from '../src/irqchip/irq-router.js';
import { DualPic } from '../src/irqchip/pic.js';
import type { ApicMessage } from '../src/irqchip/types.js';

class RecordingInputs implements IrqInputs {
  readonly calls: Array<[number, boolean]> = [];
  setLevel(line: number, high: boolean): void {
    this.calls.push([line, high]);
  }
}

describe('IrqRouter', () => {
  it('exports the PC override table: IRQ 0 on GSI 2, conforming flags', () => {
    expect(DEFAULT_ISA_OVERRIDES).to.deep.equal([{ isaIrq: 0, gsi: 2, polarity: 'conforming', trigger: 'conforming' }]);
    expect(intiFlags(DEFAULT_ISA_OVERRIDES[0]!)).to.equal(0);
    expect(intiFlags({ polarity: 'active-high', trigger: 'level' })).to.equal(0xd);
    expect(intiFlags({ polarity: 'active-low', trigger: 'level' })).to.equal(0xf);
    expect(intiFlags({ polarity: 'active-high', trigger: 'edge' })).to.equal(0x5);
  });

  it('routes ISA IRQs to the PIC and (overridden) IOAPIC pins, GSI 16-23 to the IOAPIC only', () => {
    const routes = isaRoutes();
    expect(routes).to.have.length(24);
    expect(routes[0]).to.deep.equal({ picIrq: 0, ioapicPin: 2 });
    expect(routes[1]).to.deep.equal({ picIrq: 1, ioapicPin: 1 });
    expect(routes[2]).to.deep.equal({ picIrq: null, ioapicPin: null });
    expect(routes[8]).to.deep.equal({ picIrq: 8, ioapicPin: 8 });
    expect(routes[15]).to.deep.equal({ picIrq: 15, ioapicPin: 15 });
    expect(routes[16]).to.deep.equal({ picIrq: null, ioapicPin: 16 });
    expect(routes[23]).to.deep.equal({ picIrq: null, ioapicPin: 23 });
  });

  it('drives both chips for ISA lines and only the IOAPIC above 15', () => {
    const pic = new RecordingInputs();
    const ioapic = new RecordingInputs();
    const router = new IrqRouter({ pic, ioapic });
    router.setLevel(0, true);
    router.setLevel(4, true);
    router.setLevel(4, false);
    router.setLevel(19, true);
    expect(pic.calls).to.deep.equal([
      [0, true],
      [4, true],
      [4, false],
    ]);
    expect(ioapic.calls).to.deep.equal([
      [2, true],
      [4, true],
      [4, false],
      [19, true],
    ]);
  });

  it('throws RangeError for lines that do not exist or lead nowhere', () => {
    const router = new IrqRouter({ pic: new RecordingInputs(), ioapic: new RecordingInputs() });
    expect(() => router.setLevel(2, true)).to.throw(RangeError, /GSI 2 .*cascade/);
    expect(() => router.setLevel(24, true)).to.throw(RangeError, /GSI 24/);
    expect(() => router.setLevel(-1, true)).to.throw(RangeError);
    expect(() => router.setLevel(1.5, true)).to.throw(RangeError);
    expect(() => router.setLevel(Number.NaN, true)).to.throw(RangeError);
    expect(() => router.route(2)).to.throw(RangeError);
    expect(router.route(0)).to.deep.equal({ picIrq: 0, ioapicPin: 2 });
  });

  it('works with either chip absent', () => {
    const ioapic = new RecordingInputs();
    new IrqRouter({ ioapic }).setLevel(0, true);
    expect(ioapic.calls).to.deep.equal([[2, true]]);
    const pic = new RecordingInputs();
    const picOnly = new IrqRouter({ pic });
    picOnly.setLevel(16, true); // the IOAPIC lives elsewhere: nothing to do here
    picOnly.setLevel(3, true);
    expect(pic.calls).to.deep.equal([[3, true]]);
    expect(() => picOnly.setLevel(2, true)).to.throw(RangeError);
  });

  it('applies custom overrides and validates them', () => {
    const routes = isaRoutes([
      { isaIrq: 0, gsi: 2, polarity: 'conforming', trigger: 'conforming' },
      { isaIrq: 9, gsi: 9, polarity: 'active-high', trigger: 'level' },
      { isaIrq: 5, gsi: 10, polarity: 'conforming', trigger: 'conforming' },
    ]);
    expect(routes[9]).to.deep.equal({ picIrq: 9, ioapicPin: 9 });
    expect(routes[5]).to.deep.equal({ picIrq: 5, ioapicPin: 10 });
    expect(routes[10]).to.deep.equal({ picIrq: 10, ioapicPin: null }); // its pin went to IRQ 5
    expect(isaRoutes([])[2]).to.deep.equal({ picIrq: null, ioapicPin: 2 });

    const o = (isaIrq: number, gsi: number) =>
      ({ isaIrq, gsi, polarity: 'conforming', trigger: 'conforming' }) as const;
    expect(() => isaRoutes([o(2, 2)])).to.throw(RangeError, /cascade/);
    expect(() => isaRoutes([o(16, 3)])).to.throw(RangeError);
    expect(() => isaRoutes([o(3, 16)])).to.throw(RangeError, /PCI/);
    expect(() => isaRoutes([o(3, 4), o(3, 5)])).to.throw(RangeError, /two overrides/);
    expect(() => isaRoutes([o(3, 4), o(5, 4)])).to.throw(RangeError, /target GSI 4/);
    expect(() => new IrqRouter({ overrides: [o(3, 24)] })).to.throw(RangeError);
  });

  it('drives a real PIC and IOAPIC: the PIT line reaches PIC IRQ 0 and IOAPIC pin 2', () => {
    const outputs: boolean[] = [];
    const pic = new DualPic(DualPic.allocate(), { onOutput: (high) => outputs.push(high) });
    const messages: ApicMessage[] = [];
    const ioapic = new Ioapic(Ioapic.allocate(), { deliver: (msg) => messages.push(msg) });
    const router = new IrqRouter({ pic, ioapic });

    // PIC: Linux init, vectors 0x30/0x38. IOAPIC: pin 2 edge vector 0x30, pin 2's neighbours masked.
    for (const [port, value] of [
      [0, 0x11],
      [1, 0x30],
      [1, 0x04],
      [1, 0x01],
      [1, 0x00],
    ] as const) {
      pic.master.write(port, 1, value, 0);
    }
    ioapic.write(IoapicMmio.RegSel, 4, IoapicReg.RedirectionTable + 2 * 2, 0);
    ioapic.write(IoapicMmio.Window, 4, 0x30, 0);

    router.setLevel(0, true);
    expect(outputs).to.deep.equal([true]);
    expect(pic.acknowledge()).to.equal(0x30);
    expect(messages.map((m) => [m.vector, m.levelTriggered])).to.deep.equal([[0x30, false]]);
    expect(ioapic.entries()[2]!.lineHigh).to.equal(true);
    expect(ioapic.entries()[0]!.lineHigh).to.equal(false);

    router.setLevel(0, false);
    router.setLevel(20, true);
    expect(ioapic.entries()[20]!.lineHigh).to.equal(true);
    expect(outputs).to.deep.equal([true, false]);
  });
});
