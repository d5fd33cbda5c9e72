import { expect } from 'chai';
import type { IrqLines } from '../src/devices/device.js';
import {
  CMOS_SIZE,
  CmosReg,
  CmosRtc,
  type CmosRtcAllocateOptions,
  type CmosRtcState,
  RTC_IRQ,
  RTC_NMI_DISABLE,
  RTC_PORT,
  RTC_PORT_COUNT,
  RtcA,
  RtcB,
  RtcC,
  RtcD,
  RtcPort,
  rtcPeriodTicks,
} from '../src/devices/cmos-rtc.js';
import type { FakeClock } from '../src/sync/clock.js';
import { deviceHost } from './helpers/recording.js';

const IRQ = RTC_IRQ;
/** A leap day, two seconds before midnight (a Thursday). */
const BASE = new Date(Date.UTC(2024, 1, 29, 23, 59, 58));
/** The fake clock's reading when the RTC starts; updates come at T0 + k seconds. */
const T0 = 5_000_000_123;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** ns from the anchor to divider tick `tick`, exactly. */
function nsAtTick32k(tick: number): number {
  return Number((BigInt(tick) * 1_000_000_000n + 32767n) / 32768n);
}

function setup(options: CmosRtcAllocateOptions = {}) {
  const state = CmosRtc.allocate({ baseTime: BASE, ...options });
  const { host, irq, clock } = deviceHost({ gsi: IRQ, startNs: T0 });
  const rtc = new CmosRtc(state, host, { irq: IRQ });
  const rd = (index: number): number => {
    rtc.write(RtcPort.Index, 1, index, 0);
    return rtc.read(RtcPort.Data, 1, 0);
  };
  const wr = (index: number, value: number): void => {
    rtc.write(RtcPort.Index, 1, index, 0);
    rtc.write(RtcPort.Data, 1, value, 0);
  };
  /** Sets the clock to `ns` after the RTC started. */
  const after = (ns: number): void => clock.set(T0 + ns);
  const time = (): number[] =>
    [CmosReg.Century, CmosReg.Year, CmosReg.Month, CmosReg.DayOfMonth, CmosReg.Hours, CmosReg.Minutes, CmosReg.Seconds].map(rd);
  return { state, rtc, irq, clock, rd, wr, after, time };
}

function otherView(state: CmosRtcState, irq: IrqLines, clock: FakeClock): CmosRtc {
  return new CmosRtc(state, deviceHost({ irq, clock }).host, { irq: IRQ });
}

describe('CmosRtc', () => {
  describe('ports and power-up registers', () => {
    it('decodes 0x70-0x71 on IRQ 8 with 128 bytes of CMOS', () => {
      expect([RTC_PORT, RTC_PORT_COUNT, RTC_IRQ, CMOS_SIZE]).to.deep.equal([0x70, 2, 8, 128]);
    });

    it('comes up as a BIOS leaves it: A = 0x26, B = 24-hour BCD, C clear, D = VRT', () => {
      const { rd, irq, rtc } = setup();
      expect(rd(CmosReg.A)).to.equal(0x26);
      expect(rd(CmosReg.B)).to.equal(RtcB.H24);
      expect(rd(CmosReg.C)).to.equal(0);
      expect(rd(CmosReg.D)).to.equal(RtcD.VRT);
      expect(irq.take()).to.deep.equal([]);
      expect(rtc.nextDeadlineNs()).to.equal(Infinity);
    });

    it('reads the index port as 0xff, ignores writes to C and D, and keeps RAM bytes', () => {
      const { rtc, rd, wr } = setup();
      expect(rtc.read(RtcPort.Index, 1, 0)).to.equal(0xff);
      wr(CmosReg.C, 0xff);
      wr(CmosReg.D, 0x00);
      expect(rd(CmosReg.C)).to.equal(0);
      expect(rd(CmosReg.D)).to.equal(RtcD.VRT);
      wr(0x40, 0xa5);
      wr(0x7f, 0x5a);
      expect([rd(0x40), rd(0x7f)]).to.deep.equal([0xa5, 0x5a]);
    });

    it('records the NMI-disable bit of index writes and uses only bits 6:0 as the index', () => {
      const { rtc, rd, wr } = setup();
      expect(rtc.nmiDisabled()).to.equal(false);
      wr(0x40, 0x11);
      rtc.write(RtcPort.Index, 1, RTC_NMI_DISABLE | 0x40, 0);
      expect(rtc.nmiDisabled()).to.equal(true);
      expect(rtc.read(RtcPort.Data, 1, 0)).to.equal(0x11);
      rd(0x40);
      expect(rtc.nmiDisabled()).to.equal(false);
    });
  });

  describe('time registers', () => {
    it('show the base time in BCD, 24-hour, with the century and day of week', () => {
      const { rd, time, rtc } = setup();
      expect(time()).to.deep.equal([0x20, 0x24, 0x02, 0x29, 0x23, 0x59, 0x58]);
      expect(rd(CmosReg.DayOfWeek)).to.equal(5); // Thursday; 1 = Sunday
      expect(rtc.time().toISOString()).to.equal('2024-02-29T23:59:58.000Z');
    });

    it('advance with the clock across a leap day, month and second boundaries', () => {
      const { after, time, rd } = setup();
      after(999_999_999);
      expect(time()).to.deep.equal([0x20, 0x24, 0x02, 0x29, 0x23, 0x59, 0x58]);
      after(1e9);
      expect(time()).to.deep.equal([0x20, 0x24, 0x02, 0x29, 0x23, 0x59, 0x59]);
      after(2e9);
      expect(time()).to.deep.equal([0x20, 0x24, 0x03, 0x01, 0x00, 0x00, 0x00]);
      expect(rd(CmosReg.DayOfWeek)).to.equal(6);
      after(2e9 + 86_400e9 * 366);
      expect(time()).to.deep.equal([0x20, 0x25, 0x03, 0x02, 0x00, 0x00, 0x00]);
    });

    it('show binary values with B.DM set', () => {
      const { wr, time } = setup();
      wr(CmosReg.B, RtcB.H24 | RtcB.DM);
      expect(time()).to.deep.equal([20, 24, 2, 29, 23, 59, 58]);
    });

    it('show 12-hour time with the PM bit, in BCD and binary', () => {
      const { wr, rd, after } = setup();
      wr(CmosReg.B, 0);
      expect(rd(CmosReg.Hours)).to.equal(0x91); // 11 PM
      after(2e9);
      expect(rd(CmosReg.Hours)).to.equal(0x12); // 12 AM
      wr(CmosReg.B, RtcB.DM);
      expect(rd(CmosReg.Hours)).to.equal(12);
      const noon = setup({ baseTime: new Date(Date.UTC(2024, 5, 1, 12, 0, 0)) });
      noon.wr(CmosReg.B, 0);
      expect(noon.rd(CmosReg.Hours)).to.equal(0x92); // 12 PM
      noon.wr(CmosReg.B, RtcB.DM);
      expect(noon.rd(CmosReg.Hours)).to.equal(0x80 | 12);
      const evening = setup();
      evening.wr(CmosReg.B, RtcB.DM);
      expect(evening.rd(CmosReg.Hours)).to.equal(0x80 | 11);
    });

    it('take a written field at once while running, keeping the phase', () => {
      const { wr, time, after } = setup();
      after(300e6);
      wr(CmosReg.Minutes, 0x30);
      expect(time()).to.deep.equal([0x20, 0x24, 0x02, 0x29, 0x23, 0x30, 0x58]);
      after(999_999_999);
      expect(time()).to.deep.equal([0x20, 0x24, 0x02, 0x29, 0x23, 0x30, 0x58]);
      after(1e9);
      expect(time()).to.deep.equal([0x20, 0x24, 0x02, 0x29, 0x23, 0x30, 0x59]);
    });

    it('decode 12-hour writes with the PM bit', () => {
      const { wr, rtc } = setup();
      wr(CmosReg.B, 0);
      wr(CmosReg.Hours, 0x81);
      expect(rtc.time().toISOString()).to.equal('2024-02-29T13:59:58.000Z');
    });

    it('can start from the base time plus a UTC offset, with sub-second phase', () => {
      const { time, after } = setup({ baseTime: new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 750)), utcOffsetMinutes: 90 });
      expect(time()).to.deep.equal([0x20, 0x24, 0x01, 0x01, 0x01, 0x30, 0x00]);
      after(249_999_999);
      expect(time()[6]).to.equal(0x00);
      after(250_000_000);
      expect(time()[6]).to.equal(0x01);
    });
  });

  describe('UIP', () => {
    it('is set for the 244 us (8 divider ticks) before each update', () => {
      const { rd, after, time } = setup();
      after(999_755_859); // tick 32759.99...
      expect(rd(CmosReg.A) & RtcA.UIP).to.equal(0);
      after(999_755_860); // tick 32760
      expect(rd(CmosReg.A) & RtcA.UIP).to.equal(RtcA.UIP);
      after(999_999_999);
      expect(rd(CmosReg.A) & RtcA.UIP).to.equal(RtcA.UIP);
      expect(time()[6]).to.equal(0x58);
      after(1e9);
      expect(rd(CmosReg.A) & RtcA.UIP).to.equal(0);
      expect(time()[6]).to.equal(0x59);
      after(5e9 - 1000);
      expect(rd(CmosReg.A)).to.equal(0x26 | RtcA.UIP);
    });

    it('is clear while SET is held, and cannot be written', () => {
      const { rd, wr, after } = setup();
      after(999_900_000);
      wr(CmosReg.B, RtcB.SET | RtcB.H24);
      expect(rd(CmosReg.A) & RtcA.UIP).to.equal(0);
      wr(CmosReg.B, RtcB.H24);
      wr(CmosReg.A, 0xa6);
      expect(rd(CmosReg.A)).to.equal(0x26 | RtcA.UIP);
    });
  });

  describe('setting the time', () => {
    it('freezes the registers under SET and starts from what was written, keeping the divider phase', () => {
      const { rd, wr, after, time, rtc } = setup();
      after(1.5e9);
      wr(CmosReg.B, RtcB.SET | RtcB.H24);
      expect(time()).to.deep.equal([0x20, 0x24, 0x02, 0x29, 0x23, 0x59, 0x59]);
      after(10e9);
      expect(time()).to.deep.equal([0x20, 0x24, 0x02, 0x29, 0x23, 0x59, 0x59]);
      // 1999-12-31 23:59:59, a Friday, written field by field.
      for (const [index, value] of [
        [CmosReg.Century, 0x19],
        [CmosReg.Year, 0x99],
        [CmosReg.Month, 0x12],
        [CmosReg.DayOfMonth, 0x31],
        [CmosReg.Hours, 0x23],
        [CmosReg.Minutes, 0x59],
        [CmosReg.Seconds, 0x59],
        [CmosReg.DayOfWeek, 0x06],
      ] as const) {
        wr(index, value);
      }
      expect(rd(CmosReg.DayOfWeek)).to.equal(0x06);
      after(10.4e9);
      wr(CmosReg.B, RtcB.H24);
      expect(time()).to.deep.equal([0x19, 0x99, 0x12, 0x31, 0x23, 0x59, 0x59]);
      after(10.999e9);
      expect(time()[6]).to.equal(0x59);
      after(11e9);
      expect(time()).to.deep.equal([0x20, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00]);
      expect(rd(CmosReg.DayOfWeek)).to.equal(7); // Saturday
      expect(rtc.time().toISOString()).to.equal('2000-01-01T00:00:00.000Z');
    });

    it("follows Linux's mc146818_set_time: SET, divider reset, write, restore B, restore A", () => {
      const { rd, wr, after, clock, time } = setup();
      after(3.7e9);
      const b = rd(CmosReg.B);
      wr(CmosReg.B, b | RtcB.SET);
      const a = rd(CmosReg.A);
      wr(CmosReg.A, a | RtcA.DividerReset);
      wr(CmosReg.Seconds, 0x07);
      wr(CmosReg.Minutes, 0x06);
      wr(CmosReg.Hours, 0x05);
      wr(CmosReg.DayOfMonth, 0x04);
      wr(CmosReg.Month, 0x03);
      wr(CmosReg.Year, 0x26);
      wr(CmosReg.B, b);
      after(4e9);
      expect(time()).to.deep.equal([0x20, 0x26, 0x03, 0x04, 0x05, 0x06, 0x07]); // still frozen: divider in reset
      wr(CmosReg.A, a);
      const start = clock.nowNs();
      clock.set(start + 499_999_999);
      expect(time()[6]).to.equal(0x07);
      clock.set(start + 500_000_000);
      expect(time()[6]).to.equal(0x08);
      clock.set(start + 1_500_000_000);
      expect(time()[6]).to.equal(0x09);
    });

    it('stops the clock while the divider is held in reset; the first update comes 500 ms after release', () => {
      const { wr, after, time, rtc, rd } = setup();
      wr(CmosReg.A, 0x20);
      wr(CmosReg.B, RtcB.H24 | RtcB.UIE);
      rd(CmosReg.C);
      after(2.5e9);
      wr(CmosReg.A, RtcA.DividerReset);
      rd(CmosReg.C);
      after(9e9);
      expect(time()).to.deep.equal([0x20, 0x24, 0x03, 0x01, 0x00, 0x00, 0x00]);
      expect(rd(CmosReg.C)).to.equal(0);
      expect(rtc.nextDeadlineNs()).to.equal(Infinity);
      wr(CmosReg.A, 0x20);
      expect(rtc.nextDeadlineNs()).to.equal(T0 + 9.5e9);
      after(9.5e9 - 1);
      expect(time()[6]).to.equal(0x00);
      after(9.5e9);
      expect(time()[6]).to.equal(0x01);
    });

    it('clears UIE when SET is written', () => {
      const { wr, rd } = setup();
      wr(CmosReg.B, RtcB.SET | RtcB.UIE | RtcB.PIE | RtcB.H24);
      expect(rd(CmosReg.B)).to.equal(RtcB.SET | RtcB.PIE | RtcB.H24);
    });
  });

  describe('periodic interrupt', () => {
    it('has the datasheet rates: RS 1-2 = 256/128 Hz, RS 3-15 = 8192 Hz down to 2 Hz', () => {
      expect(rtcPeriodTicks(0)).to.equal(0);
      expect(rtcPeriodTicks(1)).to.equal(128);
      expect(rtcPeriodTicks(2)).to.equal(256);
      for (let rs = 3; rs <= 15; rs++) expect(32768 / rtcPeriodTicks(rs)).to.equal(2 ** (16 - rs));
    });

    for (let rs = 1; rs <= 15; rs++) {
      const hz = 32768 / rtcPeriodTicks(rs);
      it(`RS = ${rs}: ${hz} interrupts in a fake second, one per period, each acknowledged by reading C`, () => {
        const { rtc, irq, clock, rd, wr } = setup();
        wr(CmosReg.A, RtcA.Divider32k | rs);
        wr(CmosReg.B, RtcB.H24 | RtcB.PIE);
        expect(rd(CmosReg.C)).to.equal(0);
        const period = rtcPeriodTicks(rs);
        let k = 0;
        for (;;) {
          const deadline = rtc.nextDeadlineNs();
          if (deadline > T0 + 1e9) break;
          k++;
          expect(deadline).to.equal(T0 + nsAtTick32k(k * period));
          clock.set(deadline - 1);
          rtc.poll();
          expect(irq.take()).to.deep.equal([]);
          clock.set(deadline);
          rtc.poll();
          expect(irq.take()).to.deep.equal([true]);
          expect(rd(CmosReg.C) & (RtcC.IRQF | RtcC.PF)).to.equal(RtcC.IRQF | RtcC.PF);
          expect(irq.take()).to.deep.equal([false]);
        }
        expect(k).to.equal(hz);
        expect(rtc.stats()).to.deep.equal({ interrupts: hz, coalesced: 0 });
      });
    }

    it('sets PF without PIE; enabling PIE then raises the IRQ at once', () => {
      const { rtc, rd, wr, after, irq } = setup();
      after(10e6); // 1024 Hz (RS 6) has ticked
      wr(CmosReg.B, RtcB.H24 | RtcB.PIE);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(CmosReg.C)).to.equal(RtcC.IRQF | RtcC.PF);
      expect(irq.take()).to.deep.equal([false]);
      after(11e6);
      rtc.poll();
      expect(irq.take()).to.deep.equal([true]);
      wr(CmosReg.B, RtcB.H24);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(CmosReg.C)).to.equal(RtcC.PF);
    });

    it('drops the IRQ when the enable bit is cleared while the flag stays set', () => {
      const { rd, wr, after, irq } = setup();
      wr(CmosReg.B, RtcB.H24 | RtcB.PIE);
      after(2e6);
      rd(CmosReg.A);
      expect(irq.take()).to.deep.equal([true]);
      wr(CmosReg.B, RtcB.H24);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(CmosReg.C)).to.equal(RtcC.PF);
    });

    it('raises one edge per C read, counting events it merged as coalesced', () => {
      const { rtc, rd, wr, after, irq } = setup();
      wr(CmosReg.A, RtcA.Divider32k | 15); // 2 Hz
      wr(CmosReg.B, RtcB.H24 | RtcB.PIE);
      after(2.2e9); // 4 periods at once
      rtc.poll();
      expect(irq.take()).to.deep.equal([true]);
      after(3.2e9); // 2 more, while the first is unacknowledged
      rtc.poll();
      expect(irq.take()).to.deep.equal([]);
      expect(rtc.nextDeadlineNs()).to.equal(Infinity);
      expect(rd(CmosReg.C) & RtcC.PF).to.equal(RtcC.PF);
      expect(irq.take()).to.deep.equal([false]);
      expect(rtc.nextDeadlineNs()).to.equal(T0 + 3.5e9);
      expect(rtc.stats()).to.deep.equal({ interrupts: 1, coalesced: 5 });
    });
  });

  describe('alarm interrupt', () => {
    it('fires at the update that makes the time match the alarm registers', () => {
      const { rtc, rd, wr, clock, irq } = setup();
      wr(CmosReg.A, RtcA.Divider32k);
      wr(CmosReg.SecondsAlarm, 0x05);
      wr(CmosReg.MinutesAlarm, 0x00);
      wr(CmosReg.HoursAlarm, 0x00);
      wr(CmosReg.B, RtcB.H24 | RtcB.AIE);
      expect(rtc.nextDeadlineNs()).to.equal(T0 + 7e9); // 2024-03-01 00:00:05
      clock.set(T0 + 7e9 - 1);
      rtc.poll();
      expect(irq.take()).to.deep.equal([]);
      expect(rd(CmosReg.C)).to.equal(RtcC.UF);
      clock.set(T0 + 7e9);
      rtc.poll();
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(CmosReg.C)).to.equal(RtcC.IRQF | RtcC.AF | RtcC.UF);
      expect(irq.take()).to.deep.equal([false]);
      // Next match: a day later.
      expect(rtc.nextDeadlineNs()).to.equal(T0 + 7e9 + 86_400e9);
    });

    it('treats alarm bytes 0xC0-0xFF as "don\'t care"', () => {
      const { rtc, wr, rd, clock } = setup();
      wr(CmosReg.SecondsAlarm, 0x30);
      wr(CmosReg.MinutesAlarm, 0xc0);
      wr(CmosReg.HoursAlarm, 0xff);
      wr(CmosReg.B, RtcB.H24 | RtcB.AIE);
      expect(rtc.nextDeadlineNs()).to.equal(T0 + 32e9); // 00:00:30
      clock.set(T0 + 32e9);
      rd(CmosReg.C);
      expect(rtc.nextDeadlineNs()).to.equal(T0 + 92e9); // 00:01:30
      wr(CmosReg.SecondsAlarm, 0xd5);
      expect(rtc.nextDeadlineNs()).to.equal(T0 + 33e9); // every second
    });

    it('matches in the current format: 12-hour alarm bytes carry the PM bit', () => {
      const { rtc, wr } = setup();
      wr(CmosReg.B, RtcB.AIE); // 12-hour BCD
      wr(CmosReg.SecondsAlarm, 0x00);
      wr(CmosReg.MinutesAlarm, 0x00);
      wr(CmosReg.HoursAlarm, 0x81); // 1 PM
      expect(rtc.nextDeadlineNs()).to.equal(T0 + 2e9 + 13 * 3600e9);
      wr(CmosReg.HoursAlarm, 0x13); // not a valid 12-hour value: never matches
      expect(rtc.nextDeadlineNs()).to.equal(Infinity);
    });

    it('notices a match that a late poll skipped over', () => {
      const { rd, wr, after } = setup();
      wr(CmosReg.SecondsAlarm, 0x10);
      wr(CmosReg.MinutesAlarm, 0x00);
      wr(CmosReg.HoursAlarm, 0x00);
      after(3600e9);
      expect(rd(CmosReg.C) & RtcC.AF).to.equal(RtcC.AF);
      after(3601e9);
      expect(rd(CmosReg.C) & RtcC.AF).to.equal(0);
    });
  });

  describe('update-ended interrupt', () => {
    it('fires once per second with UIE', () => {
      const { rtc, rd, wr, clock, irq } = setup();
      wr(CmosReg.A, RtcA.Divider32k);
      wr(CmosReg.B, RtcB.H24 | RtcB.UIE);
      for (let s = 1; s <= 3; s++) {
        expect(rtc.nextDeadlineNs()).to.equal(T0 + s * 1e9);
        clock.set(T0 + s * 1e9);
        rtc.poll();
        expect(irq.take()).to.deep.equal([true]);
        // (The alarm registers' 00:00:00 also sets AF at midnight, s = 2.)
        expect(rd(CmosReg.C) & (RtcC.IRQF | RtcC.UF | RtcC.PF)).to.equal(RtcC.IRQF | RtcC.UF);
        expect(irq.take()).to.deep.equal([false]);
      }
    });

    it('makes no updates while SET is held', () => {
      const { rd, wr, after } = setup();
      wr(CmosReg.A, RtcA.Divider32k);
      wr(CmosReg.B, RtcB.H24 | RtcB.SET);
      after(5e9);
      expect(rd(CmosReg.C)).to.equal(0);
    });
  });

  describe('CMOS memory-size bytes', () => {
    const bytes = (options: CmosRtcAllocateOptions): number[] => {
      const { rd } = setup(options);
      return [0x15, 0x16, 0x17, 0x18, 0x30, 0x31, 0x34, 0x35, 0x5b, 0x5c, 0x5d, 0x5f].map(rd);
    };

    it('describes 64 MiB and one CPU', () => {
      // 640 KiB base; 63 MiB above 1 MiB = 0xFC00 KiB; 48 MiB above 16 MiB = 0x300 x 64 KiB.
      expect(bytes({ ramBelow4G: 64 * MiB, cpus: 1 })).to.deep.equal([0x80, 0x02, 0x00, 0xfc, 0x00, 0xfc, 0x00, 0x03, 0, 0, 0, 0]);
    });

    it('describes 3 GiB and four CPUs, capping the 1-64 MiB count', () => {
      // (3 GiB - 16 MiB) / 64 KiB = 0xBF00.
      expect(bytes({ ramBelow4G: 3 * GiB, cpus: 4 })).to.deep.equal([0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xbf, 0, 0, 0, 3]);
    });

    it('describes 8 GiB (3 GiB below the PCI hole, 5 GiB above 4 GiB) and 64 CPUs', () => {
      // 5 GiB / 64 KiB = 0x014000.
      expect(bytes({ ramBelow4G: 3 * GiB, ramAbove4G: 5 * GiB, cpus: 64 })).to.deep.equal([0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0x00, 0xbf, 0x00, 0x40, 0x01, 63]);
    });
  });

  describe('waking the timer thread', () => {
    it('calls onDeadlineChange when an access moves the deadline earlier, outside the mutex', () => {
      const state = CmosRtc.allocate({ baseTime: BASE });
      const { host, clock } = deviceHost({ gsi: IRQ, startNs: T0 });
      let calls = 0;
      let rtc!: CmosRtc;
      const onDeadlineChange = (): void => {
        calls++;
        expect(rtc.nextDeadlineNs()).to.be.lessThan(Infinity); // the mutex is free
      };
      rtc = new CmosRtc(state, host, { irq: IRQ, onDeadlineChange });
      const wr = (index: number, value: number): void => {
        rtc.write(RtcPort.Index, 1, index, 0);
        rtc.write(RtcPort.Data, 1, value, 0);
      };
      const rd = (index: number): number => {
        rtc.write(RtcPort.Index, 1, index, 0);
        return rtc.read(RtcPort.Data, 1, 0);
      };
      wr(CmosReg.B, RtcB.H24 | RtcB.UIE); // Infinity -> the next second
      expect(calls).to.equal(1);
      wr(CmosReg.A, RtcA.Divider32k | 3); // no PIE: the rate does not matter yet
      expect(calls).to.equal(1);
      wr(CmosReg.B, RtcB.H24 | RtcB.UIE | RtcB.PIE); // now 122 us away
      expect(calls).to.equal(2);
      clock.set(T0 + 1e6);
      rtc.poll(); // IRQF set: no deadline until C is read
      expect(rtc.nextDeadlineNs()).to.equal(Infinity);
      rd(CmosReg.C);
      expect(calls).to.equal(3);
    });
  });

  describe('sharing', () => {
    it('keeps one state for every view, with the IRQ driven once', () => {
      const { state, rtc, irq, clock, wr, rd } = setup();
      const other = otherView(state, irq, clock);
      wr(CmosReg.B, RtcB.H24 | RtcB.UIE);
      expect(other.nextDeadlineNs()).to.equal(T0 + 1e9);
      clock.set(T0 + 1e9);
      other.poll();
      rtc.poll();
      expect(irq.take()).to.deep.equal([true]);
      other.write(RtcPort.Index, 1, CmosReg.C, 1);
      expect(other.read(RtcPort.Data, 1, 1) & RtcC.UF).to.equal(RtcC.UF);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(CmosReg.Seconds)).to.equal(0x59);
    });
  });
});
