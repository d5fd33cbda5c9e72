import { expect } from 'chai';
import type { BusDevice } from '../src/devices/device.js';
import {
  DualPic,
  ELCR_BASE,
  PIC_MASTER_BASE,
  PIC_SLAVE_BASE,
  PicCmd,
  PicIcw4,
} from '../src/irqchip/pic.js';

/** A PIC with its three devices mapped at their PC ports, and its INT output recorded. */
class Harness {
  readonly outputs: boolean[] = [];
  readonly pic: DualPic;
  private readonly ports: ReadonlyArray<readonly [number, BusDevice]>;

  constructor(buffer = DualPic.allocate()) {
    this.pic = new DualPic(buffer, { onOutput: (high) => this.outputs.push(high) });
    this.ports = [
      [PIC_MASTER_BASE, this.pic.master],
      [PIC_SLAVE_BASE, this.pic.slave],
      [ELCR_BASE, this.pic.elcr],
    ];
  }

  private find(port: number): [BusDevice, number] {
    for (const [base, dev] of this.ports) if (port >= base && port < base + 2) return [dev, port - base];
    throw new Error(`unmapped port 0x${port.toString(16)}`);
  }

  outb(value: number, port: number): void {
    const [dev, offset] = this.find(port);
    dev.write(offset, 1, value, 0);
  }

  inb(port: number): number {
    const [dev, offset] = this.find(port);
    return dev.read(offset, 1, 0);
  }

  /** arch/x86/kernel/i8259.c init_8259A, with the vector bases given, then the IMRs. */
  initLinux(
    masterBase = 0x30,
    slaveBase = 0x38,
    opts: { autoEoi?: boolean; masterImr?: number; slaveImr?: number } = {},
  ): void {
    this.outb(0xff, 0x21);
    this.outb(0x11, 0x20); // ICW1: edge, cascade, ICW4 needed
    this.outb(masterBase, 0x21); // ICW2
    this.outb(1 << 2, 0x21); // ICW3: slave on IR2
    this.outb(opts.autoEoi ? PicIcw4.Mode8086 | PicIcw4.AutoEoi : PicIcw4.Mode8086, 0x21); // ICW4
    this.outb(0x11, 0xa0);
    this.outb(slaveBase, 0xa1);
    this.outb(2, 0xa1); // ICW3: slave ID 2
    this.outb(PicIcw4.Mode8086, 0xa1);
    this.outb(opts.masterImr ?? 0x00, 0x21);
    this.outb(opts.slaveImr ?? 0x00, 0xa1);
  }

  /** Linux's mask_and_ack_8259A EOIs: specific EOI, to the master's cascade too for a slave IRQ. */
  eoi(irq: number): void {
    if (irq & 8) {
      this.outb(PicCmd.SpecificEoi + (irq & 7), 0xa0);
      this.outb(PicCmd.SpecificEoi + 2, 0x20);
    } else {
      this.outb(PicCmd.SpecificEoi + irq, 0x20);
    }
  }

  readIsr(port: number): number {
    this.outb(PicCmd.Ocw3ReadIsr, port);
    const v = this.inb(port);
    this.outb(PicCmd.Ocw3ReadIrr, port);
    return v;
  }

  takeOutputs(): boolean[] {
    return this.outputs.splice(0);
  }
}

describe('DualPic', () => {
  let h: Harness;
  let pic: DualPic;

  beforeEach(() => {
    h = new Harness();
    pic = h.pic;
  });

  describe('power-on and initialisation', () => {
    it('powers on masked, with no output even when lines rise', () => {
      expect(h.inb(0x21)).to.equal(0xff);
      expect(h.inb(0xa1)).to.equal(0xff);
      pic.setLevel(1, true);
      pic.setLevel(12, true);
      expect(pic.hasInterrupt()).to.equal(false);
      expect(h.outputs).to.deep.equal([]);
      expect(h.inb(0x20)).to.equal(0x02); // IRR latched nonetheless
    });

    it('passes the Linux probe (IMR reads back what was written)', () => {
      h.outb(0xff, 0x21);
      expect(h.inb(0x21)).to.equal(0xff);
      h.outb(0xfb, 0x21);
      expect(h.inb(0x21)).to.equal(0xfb);
    });

    it('runs the Linux init sequence and delivers master and slave vectors', () => {
      h.initLinux(0x30, 0x38);
      const s = pic.state();
      expect(s.master).to.include({ vectorBase: 0x30, imr: 0, isr: 0, initialising: false, autoEoi: false });
      expect(s.slave).to.include({ vectorBase: 0x38, imr: 0, isr: 0, initialising: false });

      pic.setLevel(1, true);
      expect(h.takeOutputs()).to.deep.equal([true]);
      expect(pic.acknowledge()).to.equal(0x31);
      expect(h.takeOutputs()).to.deep.equal([false]);
      expect(h.readIsr(0x20)).to.equal(0x02);
      h.eoi(1);
      expect(h.readIsr(0x20)).to.equal(0);

      pic.setLevel(12, true);
      expect(h.takeOutputs()).to.deep.equal([true]);
      expect(pic.acknowledge()).to.equal(0x3c);
      expect(h.takeOutputs()).to.deep.equal([false]);
      expect(h.readIsr(0x20)).to.equal(0x04);
      expect(h.readIsr(0xa0)).to.equal(0x10);
      h.eoi(12);
      expect(h.readIsr(0x20)).to.equal(0);
      expect(h.readIsr(0xa0)).to.equal(0);
      expect(h.outputs).to.deep.equal([]);
    });

    it('accepts the BIOS-style bases 0x08/0x70 and Linux 0x20/0x28', () => {
      h.initLinux(0x08, 0x70);
      pic.setLevel(0, true);
      pic.setLevel(8, true);
      expect(pic.acknowledge()).to.equal(0x08);
      h.eoi(0);
      expect(pic.acknowledge()).to.equal(0x70);
      h.initLinux(0x20, 0x28);
      pic.setLevel(14, false);
      pic.setLevel(14, true);
      expect(pic.acknowledge()).to.equal(0x2e);
    });

    it('skips ICW3 in single mode and ICW4 when ICW1 does not ask for it', () => {
      h.outb(PicCmd.Icw1 | PicCmd.Icw1Single, 0x20); // no ICW4
      h.outb(0x40, 0x21); // ICW2, then operational
      expect(pic.state().master.initialising).to.equal(false);
      h.outb(0xfd, 0x21); // OCW1: only IR1 unmasked
      expect(h.inb(0x21)).to.equal(0xfd);
      pic.setLevel(1, true);
      expect(pic.acknowledge()).to.equal(0x41);
    });

    it('ICW1 resets the edge sense, IMR, ISR, priority and read select', () => {
      h.initLinux();
      pic.setLevel(3, true);
      pic.setLevel(4, true);
      expect(pic.acknowledge()).to.equal(0x33); // 3 in service, 4 pending
      h.outb(PicCmd.SetPriority | 5, 0x20); // IR6 highest
      h.outb(PicCmd.Ocw3ReadIsr, 0x20);
      h.outb(0xff, 0x21);
      h.takeOutputs();

      h.outb(0x11, 0x20);
      const m = pic.state().master;
      expect(m).to.include({ irr: 0, isr: 0, imr: 0, highestPriorityIrq: 0, initialising: true });
      expect(h.inb(0x20)).to.equal(0); // read select back to IRR
      h.outb(0x30, 0x21);
      h.outb(0x04, 0x21);
      h.outb(0x01, 0x21);
      // IR3 and IR4 are still high, but only a new rising edge requests.
      pic.setLevel(3, true);
      expect(pic.hasInterrupt()).to.equal(false);
      pic.setLevel(4, false);
      pic.setLevel(4, true);
      expect(pic.acknowledge()).to.equal(0x34);
    });
  });

  describe('priority and EOI', () => {
    beforeEach(() => {
      h.initLinux();
      h.takeOutputs();
    });

    it('serves the highest priority first and nests only higher priorities', () => {
      pic.setLevel(5, true);
      pic.setLevel(3, true);
      expect(pic.acknowledge()).to.equal(0x33);
      expect(pic.hasInterrupt()).to.equal(false); // 5 is lower than in-service 3
      pic.setLevel(1, true);
      expect(pic.hasInterrupt()).to.equal(true); // 1 outranks 3
      expect(pic.acknowledge()).to.equal(0x31);
      expect(h.readIsr(0x20)).to.equal(0x0a);
      h.outb(PicCmd.NonSpecificEoi, 0x20); // clears the highest in service: 1
      expect(h.readIsr(0x20)).to.equal(0x08);
      expect(pic.hasInterrupt()).to.equal(false);
      h.outb(PicCmd.NonSpecificEoi, 0x20);
      expect(pic.acknowledge()).to.equal(0x35);
      expect(h.takeOutputs()).to.deep.equal([true, false, true, false, true, false]);
    });

    it('orders slave requests by their position behind master IR2', () => {
      pic.setLevel(3, true);
      pic.setLevel(8, true);
      pic.setLevel(1, true);
      expect(pic.acknowledge()).to.equal(0x31);
      h.eoi(1);
      expect(pic.acknowledge()).to.equal(0x38); // IR2 (slave) before IR3
      h.eoi(8);
      expect(pic.acknowledge()).to.equal(0x33);
    });

    it('nests a higher slave request only in special fully nested mode', () => {
      pic.setLevel(10, true);
      expect(pic.acknowledge()).to.equal(0x3a);
      pic.setLevel(9, true); // slave IR1 outranks slave IR2, but master IR2 is in service
      expect(pic.hasInterrupt()).to.equal(false);
      h.eoi(10);
      expect(pic.acknowledge()).to.equal(0x39);
      h.eoi(9);

      // Same again with SFNM on the master (ICW4 bit 4).
      h.outb(0x11, 0x20);
      h.outb(0x30, 0x21);
      h.outb(0x04, 0x21);
      h.outb(PicIcw4.Mode8086 | PicIcw4.SpecialFullyNested, 0x21);
      pic.setLevel(10, false);
      pic.setLevel(10, true);
      expect(pic.acknowledge()).to.equal(0x3a);
      pic.setLevel(9, false);
      pic.setLevel(9, true);
      expect(pic.hasInterrupt()).to.equal(true);
      expect(pic.acknowledge()).to.equal(0x39);
      expect(h.readIsr(0xa0)).to.equal(0x06);
    });

    it('clears exactly the named level on a specific EOI', () => {
      pic.setLevel(6, true);
      expect(pic.acknowledge()).to.equal(0x36);
      pic.setLevel(4, true);
      expect(pic.acknowledge()).to.equal(0x34);
      h.outb(PicCmd.SpecificEoi | 6, 0x20);
      expect(h.readIsr(0x20)).to.equal(0x10);
      h.outb(PicCmd.SpecificEoi | 4, 0x20);
      expect(h.readIsr(0x20)).to.equal(0);
    });

    it('does not set ISR in auto-EOI mode', () => {
      h.initLinux(0x30, 0x38, { autoEoi: true });
      pic.setLevel(3, true);
      pic.setLevel(5, true);
      expect(pic.acknowledge()).to.equal(0x33);
      expect(h.readIsr(0x20)).to.equal(0);
      expect(pic.hasInterrupt()).to.equal(true); // nothing in service blocks 5
      expect(pic.acknowledge()).to.equal(0x35);
      expect(pic.hasInterrupt()).to.equal(false);
    });

    it('rotates on non-specific EOI: the served level becomes lowest', () => {
      pic.setLevel(3, true);
      expect(pic.acknowledge()).to.equal(0x33);
      h.outb(PicCmd.RotateOnNonSpecificEoi, 0x20);
      expect(pic.state().master.highestPriorityIrq).to.equal(4);
      expect(h.readIsr(0x20)).to.equal(0);
      pic.setLevel(3, false);
      pic.setLevel(3, true);
      pic.setLevel(0, true);
      pic.setLevel(7, true);
      expect(pic.acknowledge()).to.equal(0x37); // order is 4 5 6 7 0 1 2 3
      h.outb(PicCmd.RotateOnSpecificEoi | 7, 0x20); // now 0 1 2 ... 7
      expect(pic.acknowledge()).to.equal(0x30);
      h.eoi(0);
      expect(pic.acknowledge()).to.equal(0x33);
    });

    it('sets priority explicitly: the named level becomes lowest', () => {
      h.outb(PicCmd.SetPriority | 4, 0x20);
      pic.setLevel(1, true);
      pic.setLevel(6, true);
      expect(pic.acknowledge()).to.equal(0x36);
      // 6 in service, 1 ranks lower (order 5 6 7 0 1 2 3 4) so it waits.
      expect(pic.hasInterrupt()).to.equal(false);
      h.outb(PicCmd.NonSpecificEoi, 0x20);
      expect(pic.acknowledge()).to.equal(0x31);
    });

    it('rotates in auto-EOI mode when asked to', () => {
      h.initLinux(0x30, 0x38, { autoEoi: true });
      h.outb(PicCmd.SetRotateInAutoEoi, 0x20);
      pic.setLevel(1, true);
      expect(pic.acknowledge()).to.equal(0x31);
      expect(pic.state().master.highestPriorityIrq).to.equal(2);
      h.outb(PicCmd.ClearRotateInAutoEoi, 0x20);
      pic.setLevel(5, true);
      expect(pic.acknowledge()).to.equal(0x35);
      expect(pic.state().master.highestPriorityIrq).to.equal(2);
    });
  });

  describe('OCW3', () => {
    beforeEach(() => {
      h.initLinux();
      h.takeOutputs();
    });

    it('selects IRR or ISR for command-port reads; the data port reads IMR', () => {
      pic.setLevel(4, true);
      pic.setLevel(6, true);
      expect(h.inb(0x20)).to.equal(0x50);
      expect(pic.acknowledge()).to.equal(0x34);
      expect(h.inb(0x20)).to.equal(0x40);
      h.outb(PicCmd.Ocw3ReadIsr, 0x20);
      expect(h.inb(0x20)).to.equal(0x10);
      expect(h.inb(0x20)).to.equal(0x10); // the selection sticks
      h.outb(PicCmd.Ocw3, 0x20); // RR=0: selection unchanged
      expect(h.inb(0x20)).to.equal(0x10);
      h.outb(PicCmd.Ocw3ReadIrr, 0x20);
      expect(h.inb(0x20)).to.equal(0x40);
      h.outb(0x5a, 0x21);
      expect(h.inb(0x21)).to.equal(0x5a);
    });

    it('answers a poll with the request, accepting it, for one read only', () => {
      pic.setLevel(5, true);
      h.outb(PicCmd.Ocw3Poll, 0x20);
      expect(h.inb(0x20)).to.equal(0x85);
      expect(h.readIsr(0x20)).to.equal(0x20);
      expect(h.inb(0x20)).to.equal(0); // plain IRR read again
      h.outb(PicCmd.Ocw3Poll, 0x20);
      expect(h.inb(0x21)).to.equal(0); // nothing requesting: I bit clear
      expect(h.inb(0x21)).to.equal(0x00); // IMR again
    });

    it('polls the slave separately after the master reports IR2', () => {
      pic.setLevel(11, true);
      h.outb(PicCmd.Ocw3Poll, 0x20);
      expect(h.inb(0x20)).to.equal(0x82);
      h.outb(PicCmd.Ocw3Poll, 0xa0);
      expect(h.inb(0xa0)).to.equal(0x83);
      expect(h.readIsr(0x20)).to.equal(0x04);
      expect(h.readIsr(0xa0)).to.equal(0x08);
    });

    it('special mask mode lets lower levels in while the in-service level is masked', () => {
      pic.setLevel(3, true);
      expect(pic.acknowledge()).to.equal(0x33);
      pic.setLevel(5, true);
      expect(pic.hasInterrupt()).to.equal(false);
      h.outb(PicCmd.Ocw3SetSpecialMask, 0x20);
      expect(pic.hasInterrupt()).to.equal(false); // IR3 unmasked still inhibits
      h.outb(0x08, 0x21); // mask IR3
      expect(pic.hasInterrupt()).to.equal(true);
      expect(pic.state().master.specialMask).to.equal(true);
      expect(pic.acknowledge()).to.equal(0x35);
      expect(h.readIsr(0x20)).to.equal(0x28);
      h.outb(PicCmd.SpecificEoi | 5, 0x20);
      h.outb(PicCmd.Ocw3ClearSpecialMask, 0x20);
      pic.setLevel(6, true);
      expect(pic.hasInterrupt()).to.equal(false); // normal nesting: IR3 in service
      h.outb(PicCmd.SpecificEoi | 3, 0x20);
      expect(pic.acknowledge()).to.equal(0x36);
    });
  });

  describe('triggering', () => {
    beforeEach(() => {
      h.initLinux();
      h.takeOutputs();
    });

    it('latches edge requests on the rising edge only', () => {
      pic.setLevel(4, true);
      expect(pic.acknowledge()).to.equal(0x34);
      h.eoi(4);
      pic.setLevel(4, true); // still high: no new edge
      expect(pic.hasInterrupt()).to.equal(false);
      pic.setLevel(4, false);
      expect(h.inb(0x20)).to.equal(0);
      pic.setLevel(4, true);
      expect(pic.hasInterrupt()).to.equal(true);
      // The latch survives the line dropping before INTA.
      pic.setLevel(4, false);
      expect(pic.acknowledge()).to.equal(0x34);
    });

    it('keeps masked requests pending in IRR until unmasked', () => {
      h.outb(0x10, 0x21);
      pic.setLevel(4, true);
      expect(pic.hasInterrupt()).to.equal(false);
      expect(h.inb(0x20)).to.equal(0x10);
      h.outb(0x00, 0x21);
      expect(pic.acknowledge()).to.equal(0x34);
    });

    it('ELCR: writable except IRQ 0, 1, 2, 8, 13', () => {
      h.outb(0xff, 0x4d0);
      h.outb(0xff, 0x4d1);
      expect(h.inb(0x4d0)).to.equal(0xf8);
      expect(h.inb(0x4d1)).to.equal(0xde);
      h.outb(0x00, 0x4d0);
      expect(h.inb(0x4d0)).to.equal(0x00);
    });

    it('ELCR level inputs request while high and re-request after EOI', () => {
      h.outb(0x0c, 0x4d1); // IRQ 10, 11 level
      pic.setLevel(11, true);
      expect(pic.acknowledge()).to.equal(0x3b);
      expect(h.inb(0xa0)).to.equal(0x08); // IRR still follows the line
      h.eoi(11);
      expect(pic.hasInterrupt()).to.equal(true);
      expect(pic.acknowledge()).to.equal(0x3b);
      pic.setLevel(11, false);
      expect(h.inb(0xa0)).to.equal(0);
      h.eoi(11);
      expect(pic.hasInterrupt()).to.equal(false);
    });

    it('switching an input to level makes IRR follow the line at once', () => {
      pic.setLevel(5, true);
      pic.setLevel(5, false); // edge latched, line now low
      h.outb(0x20, 0x4d0);
      expect(h.inb(0x20)).to.equal(0);
      expect(pic.hasInterrupt()).to.equal(false);
      pic.setLevel(5, true);
      expect(pic.acknowledge()).to.equal(0x35);
    });

    it('answers a vanished master request with spurious IRQ7 and no ISR bit', () => {
      h.outb(0x20, 0x4d0); // IRQ 5 level
      pic.setLevel(5, true);
      pic.setLevel(5, false);
      expect(h.takeOutputs()).to.deep.equal([true, false]);
      expect(pic.acknowledge()).to.equal(0x37);
      expect(h.readIsr(0x20)).to.equal(0);
      expect(h.outputs).to.deep.equal([]);
    });

    it('answers a vanished slave request with spurious IRQ15, the master taking IR2', () => {
      h.outb(0x08, 0x4d1); // IRQ 11 level
      pic.setLevel(11, true);
      pic.setLevel(11, false); // gone; master IR2 already latched the edge
      expect(pic.hasInterrupt()).to.equal(true);
      expect(pic.acknowledge()).to.equal(0x3f);
      expect(h.readIsr(0xa0)).to.equal(0);
      expect(h.readIsr(0x20)).to.equal(0x04);
      h.outb(PicCmd.SpecificEoi | 2, 0x20); // what Linux does for a spurious IRQ15
      expect(h.readIsr(0x20)).to.equal(0);
      expect(pic.hasInterrupt()).to.equal(false);
    });

    it('rejects IRQ 2 (the cascade) and out-of-range IRQs', () => {
      expect(() => pic.setLevel(2, true)).to.throw(RangeError, /cascade/);
      expect(() => pic.setLevel(16, true)).to.throw(RangeError);
      expect(() => pic.setLevel(-1, true)).to.throw(RangeError);
    });
  });

  describe('output and views', () => {
    it('reports each INT transition exactly once, in order', () => {
      h.initLinux(0x30, 0x38, { masterImr: 0x00, slaveImr: 0x00 });
      expect(h.takeOutputs()).to.deep.equal([]);
      pic.setLevel(3, true); // up
      pic.setLevel(4, true); // still up
      h.outb(0xff, 0x21); // masked: down
      h.outb(0x00, 0x21); // up
      expect(pic.acknowledge()).to.equal(0x33); // down: 4 is below in-service 3
      h.eoi(3); // up (4)
      expect(pic.acknowledge()).to.equal(0x34); // down
      pic.setLevel(9, true); // up through the slave
      h.outb(0x04, 0x21); // master IR2 masked: down
      h.outb(0x00, 0x21); // up
      expect(pic.acknowledge()).to.equal(0x39); // down
      expect(h.takeOutputs()).to.deep.equal([true, false, true, false, true, false, true, false, true, false]);
      expect(pic.hasInterrupt()).to.equal(false);
    });

    it('splits word accesses into consecutive ports', () => {
      h.initLinux();
      h.pic.master.write(0, 2, 0xa50b, 0); // OCW3 read ISR, then IMR = 0xa5
      expect(h.inb(0x21)).to.equal(0xa5);
      pic.setLevel(4, true);
      expect(pic.acknowledge()).to.equal(0x34);
      expect(h.pic.master.read(0, 2, 0)).to.equal(0xa510);
      expect(h.pic.master.read(1, 2, 0)).to.equal(0xffa5);
      expect(h.pic.elcr.read(0, 4, 0)).to.equal(0xffff0000);
    });

    it('shares one state between views, with the output reported by the acting view', () => {
      const buffer = DualPic.allocate();
      const a = new Harness(buffer);
      const b = new Harness(buffer);
      a.initLinux();
      b.pic.setLevel(1, true);
      expect(a.pic.hasInterrupt()).to.equal(true);
      expect(a.pic.acknowledge()).to.equal(0x31);
      expect(b.outputs).to.deep.equal([true]);
      expect(a.outputs).to.deep.equal([false]);
    });

    it('resets to the power-on state, dropping the output', () => {
      h.initLinux();
      h.outb(0x20, 0x4d0);
      pic.setLevel(5, true);
      h.takeOutputs();
      pic.reset();
      expect(h.takeOutputs()).to.deep.equal([false]);
      const s = pic.state();
      expect(s.master).to.include({ imr: 0xff, irr: 0, isr: 0, elcr: 0, vectorBase: 0, lines: 0x20 });
    });
  });
});
