import { expect } from 'chai';
import type { IrqLines } from '../src/devices/device.js';
import {
  ACPI_PM_LENGTH,
  AcpiPm,
  type AcpiPmAllocateOptions,
  type AcpiPmState,
  PM1A_CNT,
  PM1A_EN,
  PM1A_STS,
  Pm1Cnt,
  Pm1Event,
  PM_TIMER_HZ,
  PM_TMR,
} from '../src/devices/acpi-pm.js';
import type { FakeClock } from '../src/sync/clock.js';
import { deviceHost } from './helpers/recording.js';

const SCI = 9;
const S5 = 5;

/** The nanosecond at which the PM timer has counted `ticks` ticks. */
function nsAtTick(ticks: number): number {
  const hz = BigInt(PM_TIMER_HZ);
  return Number((BigInt(ticks) * 1_000_000_000n + hz - 1n) / hz);
}

/** The PM timer's value at `ns`, computed exactly. */
function timerAt(ns: number): number {
  return Number(((BigInt(ns) * BigInt(PM_TIMER_HZ)) / 1_000_000_000n) % (1n << 24n));
}

function setup(options?: AcpiPmAllocateOptions, startNs = 0) {
  const state = AcpiPm.allocate(options);
  const { host, irq, vm, clock } = deviceHost({ gsi: SCI, startNs });
  const pm = new AcpiPm(state, host, { sciIrq: SCI, s5SlpTyp: S5 });
  const rd = (offset: number, size: 1 | 2 | 4 = 2): number => pm.read(offset, size, 0);
  const wr = (offset: number, value: number, size: 1 | 2 | 4 = 2): void => pm.write(offset, size, value, 0);
  return { state, irq, vm, clock, pm, rd, wr };
}

function otherView(state: AcpiPmState, irq: IrqLines, clock: FakeClock): AcpiPm {
  return new AcpiPm(state, deviceHost({ irq, clock }).host, { sciIrq: SCI, s5SlpTyp: S5 });
}

describe('AcpiPm', () => {
  describe('layout and reset', () => {
    it('places PM1a_STS, PM1a_EN, PM1a_CNT and PM_TMR in a 12-byte block', () => {
      expect([PM1A_STS, PM1A_EN, PM1A_CNT, PM_TMR, ACPI_PM_LENGTH]).to.deep.equal([0, 2, 4, 8, 12]);
    });

    it('comes up with nothing pending and SCI_EN set', () => {
      const { rd, irq, vm } = setup();
      expect(rd(PM1A_STS)).to.equal(0);
      expect(rd(PM1A_EN)).to.equal(0);
      expect(rd(PM1A_CNT)).to.equal(Pm1Cnt.SCI_EN);
      expect(rd(PM_TMR, 4)).to.equal(0);
      expect(irq.take()).to.deep.equal([]);
      expect(vm.stops).to.deep.equal([]);
    });

    it('can come up with SCI_EN clear', () => {
      const { rd } = setup({ sciEnabled: false });
      expect(rd(PM1A_CNT)).to.equal(0);
    });

    it('reads reserved bytes inside the block as 0 and bytes past it as 0xff', () => {
      const { rd, wr } = setup();
      wr(6, 0xffff);
      expect(rd(6)).to.equal(0);
      expect(rd(7, 1)).to.equal(0);
      expect(rd(PM_TMR + 3, 2)).to.equal(0xff00);
    });
  });

  describe('PM timer', () => {
    it('counts at 3.579545 MHz from the clock', () => {
      const { rd, clock } = setup();
      clock.set(1_000_000_000);
      expect(rd(PM_TMR, 4)).to.equal(PM_TIMER_HZ);
      clock.set(1_000);
      expect(rd(PM_TMR, 4)).to.equal(3);
      clock.set(nsAtTick(1234567) - 1);
      expect(rd(PM_TMR, 4)).to.equal(1234566);
      clock.set(nsAtTick(1234567));
      expect(rd(PM_TMR, 4)).to.equal(1234567);
    });

    it('is 24 bits wide and wraps', () => {
      const { rd, clock } = setup();
      clock.set(nsAtTick((1 << 24) - 1));
      expect(rd(PM_TMR, 4)).to.equal(0xffffff);
      clock.set(nsAtTick((1 << 24) + 5));
      expect(rd(PM_TMR, 4)).to.equal(5);
      clock.set(10_000_000_000);
      expect(rd(PM_TMR, 4)).to.equal(35_795_450 - 2 * (1 << 24));
    });

    it('stays exact for clock values of days and beyond', () => {
      const { rd, clock } = setup();
      for (const ns of [86_400_000_000_123, 1e15 + 123_456_789, 2 ** 52 + 7, 2 ** 53 - 1]) {
        clock.set(ns);
        expect(rd(PM_TMR, 4), `at ${ns} ns`).to.equal(timerAt(ns));
      }
    });

    it('serves byte and word reads of the counter', () => {
      const { rd, clock } = setup();
      clock.set(nsAtTick(0xabcdef));
      expect([0, 1, 2, 3].map((i) => rd(PM_TMR + i, 1))).to.deep.equal([0xef, 0xcd, 0xab, 0x00]);
      expect(rd(PM_TMR, 2)).to.equal(0xcdef);
      expect(rd(PM_TMR + 2, 2)).to.equal(0x00ab);
    });

    it('ignores writes', () => {
      const { rd, wr, clock } = setup();
      clock.set(nsAtTick(100));
      wr(PM_TMR, 0x123456, 4);
      expect(rd(PM_TMR, 4)).to.equal(100);
    });
  });

  describe('TMR_STS', () => {
    it('is set once bit 23 of the counter toggles and cleared by writing 1', () => {
      const { rd, wr, clock } = setup();
      clock.set(nsAtTick(1 << 23) - 1);
      expect(rd(PM1A_STS)).to.equal(0);
      clock.set(nsAtTick(1 << 23));
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR);
      wr(PM1A_STS, 0);
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR);
      wr(PM1A_STS, Pm1Event.TMR);
      expect(rd(PM1A_STS)).to.equal(0);

      // The wrap of the counter toggles bit 23 too.
      clock.set(nsAtTick(1 << 24) - 1);
      expect(rd(PM1A_STS)).to.equal(0);
      clock.set(nsAtTick(1 << 24));
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR);
      expect(rd(PM_TMR, 4)).to.equal(0);
    });

    it('reports several toggles between looks as one', () => {
      const { rd, wr, clock } = setup();
      clock.set(nsAtTick(5 * (1 << 23) + 17));
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR);
      wr(PM1A_STS, Pm1Event.TMR);
      clock.set(nsAtTick(6 * (1 << 23) - 1));
      expect(rd(PM1A_STS)).to.equal(0);
    });

    it('counts toggles from when the device was created, not from the clock origin', () => {
      const { rd, clock } = setup({}, nsAtTick(3 * (1 << 23) + 10));
      expect(rd(PM1A_STS)).to.equal(0);
      clock.set(nsAtTick(4 * (1 << 23)));
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR);
    });

    it('raises the SCI with TMR_EN, noticed at the next access', () => {
      const { rd, wr, clock, irq } = setup();
      wr(PM1A_EN, Pm1Event.TMR);
      clock.set(nsAtTick(1 << 23));
      expect(irq.take()).to.deep.equal([]);
      rd(PM_TMR, 4);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR);
      wr(PM1A_STS, Pm1Event.TMR);
      expect(irq.take()).to.deep.equal([false]);
    });

    it('raises the SCI from poll() without a guest access', () => {
      const { pm, wr, clock, irq } = setup();
      wr(PM1A_EN, Pm1Event.TMR);
      pm.poll();
      expect(irq.take()).to.deep.equal([]);
      clock.set(nsAtTick(1 << 23));
      pm.poll();
      pm.poll();
      expect(irq.take()).to.deep.equal([true]);
    });

    it('drops the SCI when TMR_EN is cleared while TMR_STS stays set', () => {
      const { rd, wr, clock, irq } = setup();
      clock.set(nsAtTick(1 << 23));
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR);
      wr(PM1A_EN, Pm1Event.TMR);
      wr(PM1A_EN, 0);
      expect(irq.take()).to.deep.equal([true, false]);
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR);
    });
  });

  describe('power button', () => {
    it('sets PWRBTN_STS, and raises the SCI only while PWRBTN_EN is set', () => {
      const { pm, rd, wr, irq } = setup();
      pm.pressPowerButton();
      expect(irq.take()).to.deep.equal([]);
      expect(rd(PM1A_STS)).to.equal(Pm1Event.PWRBTN);
      wr(PM1A_EN, Pm1Event.PWRBTN);
      expect(irq.take()).to.deep.equal([true]);
      wr(PM1A_STS, Pm1Event.PWRBTN);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(PM1A_STS)).to.equal(0);

      pm.pressPowerButton();
      pm.pressPowerButton();
      expect(irq.take()).to.deep.equal([true]);
      wr(PM1A_STS, Pm1Event.PWRBTN);
      expect(irq.take()).to.deep.equal([false]);
    });

    it('gates the SCI with SCI_EN', () => {
      const { pm, rd, wr, irq } = setup({ sciEnabled: false });
      wr(PM1A_EN, Pm1Event.PWRBTN);
      pm.pressPowerButton();
      expect(irq.take()).to.deep.equal([]);
      wr(PM1A_CNT, Pm1Cnt.SCI_EN);
      expect(irq.take()).to.deep.equal([true]);
      wr(PM1A_CNT, 0);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(PM1A_STS)).to.equal(Pm1Event.PWRBTN);
    });

    it('is seen by every view of the same state, with the SCI driven once', () => {
      const { state, wr, rd, irq, clock } = setup();
      const other = otherView(state, irq, clock);
      wr(PM1A_EN, Pm1Event.PWRBTN);
      other.pressPowerButton();
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(PM1A_STS)).to.equal(Pm1Event.PWRBTN);
      other.write(PM1A_EN, 2, Pm1Event.PWRBTN, 1);
      expect(irq.take()).to.deep.equal([]);
      wr(PM1A_STS, Pm1Event.PWRBTN);
      expect(irq.take()).to.deep.equal([false]);
      expect(other.read(PM1A_STS, 2, 1)).to.equal(0);
    });
  });

  describe('PM1 register access', () => {
    it('clears only the status bits written as 1, whatever the access size', () => {
      const { pm, rd, wr, clock } = setup();
      clock.set(nsAtTick(1 << 23));
      pm.pressPowerButton();
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR | Pm1Event.PWRBTN);
      wr(PM1A_STS + 1, 0x00, 1);
      wr(PM1A_STS, 0xfe, 1);
      expect(rd(PM1A_STS)).to.equal(Pm1Event.TMR | Pm1Event.PWRBTN);
      wr(PM1A_STS, 0x01, 1);
      expect(rd(PM1A_STS)).to.equal(Pm1Event.PWRBTN);
      wr(PM1A_STS + 1, 0x01, 1);
      expect(rd(PM1A_STS)).to.equal(0);
    });

    it('serves byte reads of each half of a 16-bit register', () => {
      const { pm, rd, wr } = setup();
      pm.pressPowerButton();
      wr(PM1A_EN, Pm1Event.PWRBTN | Pm1Event.TMR);
      wr(PM1A_CNT, (S5 << Pm1Cnt.SLP_TYP_SHIFT) | Pm1Cnt.SCI_EN);
      expect([0, 1, 2, 3, 4, 5].map((i) => rd(i, 1))).to.deep.equal([0x00, 0x01, 0x01, 0x01, 0x01, S5 << 2]);
    });

    it('writes status and enable together with a 32-bit access at PM1a_EVT_BLK', () => {
      const { pm, rd, wr } = setup();
      pm.pressPowerButton();
      wr(PM1A_STS, (Pm1Event.TMR << 16) | Pm1Event.PWRBTN, 4);
      expect(rd(PM1A_STS, 4)).to.equal(Pm1Event.TMR << 16);
      wr(PM1A_EN + 1, 0x01, 1);
      expect(rd(PM1A_EN)).to.equal(Pm1Event.TMR | Pm1Event.PWRBTN);
      wr(PM1A_EN, 0x00, 1);
      expect(rd(PM1A_EN)).to.equal(Pm1Event.PWRBTN);
    });

    it('keeps only the implemented enable and control bits', () => {
      const { rd, wr } = setup();
      wr(PM1A_EN, 0xffff);
      expect(rd(PM1A_EN)).to.equal(Pm1Event.TMR | Pm1Event.GBL | Pm1Event.PWRBTN | Pm1Event.RTC);
      wr(PM1A_CNT, 0xffff & ~Pm1Cnt.SLP_EN);
      expect(rd(PM1A_CNT)).to.equal(Pm1Cnt.SCI_EN | Pm1Cnt.SLP_TYP_MASK);
    });
  });

  describe('sleep control', () => {
    it('powers off when SLP_EN is written with the S5 sleep type', () => {
      const { rd, wr, vm } = setup();
      wr(PM1A_CNT, (S5 << Pm1Cnt.SLP_TYP_SHIFT) | Pm1Cnt.SCI_EN);
      expect(vm.stops).to.deep.equal([]);
      wr(PM1A_CNT, (S5 << Pm1Cnt.SLP_TYP_SHIFT) | Pm1Cnt.SLP_EN | Pm1Cnt.SCI_EN);
      expect(vm.stops).to.deep.equal([{ kind: 'poweroff' }]);
      expect(rd(PM1A_CNT)).to.equal((S5 << Pm1Cnt.SLP_TYP_SHIFT) | Pm1Cnt.SCI_EN);
      expect(vm.logs).to.deep.equal([]);
    });

    it('powers off on a byte write of the high half of PM1a_CNT', () => {
      const { wr, vm } = setup();
      wr(PM1A_CNT + 1, ((S5 << Pm1Cnt.SLP_TYP_SHIFT) | Pm1Cnt.SLP_EN) >> 8, 1);
      expect(vm.stops).to.deep.equal([{ kind: 'poweroff' }]);
    });

    it('ignores other sleep types with a warning, reporting an immediate wake', () => {
      const { rd, wr, vm, irq } = setup();
      wr(PM1A_EN, Pm1Event.TMR | Pm1Event.PWRBTN);
      for (const slpTyp of [0, 1, 2, 3, 4, 6, 7]) {
        wr(PM1A_CNT, (slpTyp << Pm1Cnt.SLP_TYP_SHIFT) | Pm1Cnt.SLP_EN | Pm1Cnt.SCI_EN);
        expect(rd(PM1A_STS)).to.equal(Pm1Event.WAK);
        wr(PM1A_STS, Pm1Event.WAK);
        expect(rd(PM1A_STS)).to.equal(0);
      }
      expect(vm.stops).to.deep.equal([]);
      expect(vm.logs).to.have.length(7);
      for (const [level, message] of vm.logs) {
        expect(level).to.equal('warn');
        expect(message).to.match(/sleep type \d/);
      }
      expect(irq.take()).to.deep.equal([]);
    });
  });
});
