import { expect } from 'chai';
import type { IrqLines } from '../src/devices/device.js';
import {
  I8254Pit,
  type I8254PitState,
  nsAtPitTick,
  PIT_HZ,
  PIT_IRQ,
  PIT_PORT,
  PIT_PORT_COUNT,
  PitReg,
  pitTicks,
  PitStatus,
  PORT61,
  Port61Bits,
} from '../src/devices/i8254-pit.js';
import type { FakeClock } from '../src/sync/clock.js';
import { deviceHost } from './helpers/recording.js';

const IRQ = PIT_IRQ;
const HZ = BigInt(PIT_HZ);

/** The first ns at which `tick` ticks have passed, computed exactly. */
function nsAt(tick: number): number {
  return Number((BigInt(tick) * 1_000_000_000n + HZ - 1n) / HZ);
}

/** Ticks passed at `ns`, computed exactly. */
function ticksAt(ns: number): number {
  return Number((BigInt(ns) * HZ) / 1_000_000_000n);
}

function setup(startNs = 0) {
  const state = I8254Pit.allocate();
  const { host, irq, clock } = deviceHost({ gsi: IRQ, startNs });
  const pit = new I8254Pit(state, host, { irq: IRQ });
  const rd = (reg: number): number => pit.read(reg, 1, 0);
  const wr = (reg: number, value: number): void => pit.write(reg, 1, value, 0);
  const p61r = (): number => pit.port61.read(0, 1, 0);
  const p61w = (value: number): void => pit.port61.write(0, 1, value, 0);
  /** Moves the clock to the first ns of tick `t`. */
  const at = (t: number): void => clock.set(nsAt(t));
  /** The status byte of a counter via the read-back command. */
  const status = (counter: number): number => {
    wr(PitReg.Control, 0xe0 | (2 << counter));
    return rd(counter);
  };
  const out = (counter: number): boolean => (status(counter) & PitStatus.Out) !== 0;
  /** Latches and reads a counter programmed LSB-then-MSB. */
  const count = (counter: number): number => {
    wr(PitReg.Control, counter << 6);
    return rd(counter) | (rd(counter) << 8);
  };
  /** Programs `counter` in `mode`, LSB then MSB, binary, and writes `n`; returns the load tick. */
  const program = (counter: number, mode: number, n: number): number => {
    wr(PitReg.Control, (counter << 6) | 0x30 | (mode << 1));
    wr(counter, n & 0xff);
    wr(counter, (n >> 8) & 0xff);
    return ticksAt(clock.nowNs()) + 1;
  };
  return { state, pit, irq, clock, rd, wr, p61r, p61w, at, status, out, count, program };
}

function otherView(state: I8254PitState, irq: IrqLines, clock: FakeClock): I8254Pit {
  return new I8254Pit(state, deviceHost({ irq, clock }).host, { irq: IRQ });
}

describe('I8254Pit', () => {
  describe('constants and clock arithmetic', () => {
    it('decodes ports 0x40-0x43 and 0x61, counter 0 on IRQ 0, at 1.193182 MHz', () => {
      expect([PIT_PORT, PIT_PORT_COUNT, PORT61, PIT_IRQ, PIT_HZ]).to.deep.equal([0x40, 4, 0x61, 0, 1_193_182]);
    });

    it('converts between ns and ticks exactly, even after days', () => {
      for (const ns of [0, 1, 837, 838, 839, 1e9, 86_400_000_000_123, 2 ** 52 + 11]) {
        expect(pitTicks(ns), `ticks at ${ns}`).to.equal(ticksAt(ns));
      }
      for (const t of [0, 1, 2, 1193181, 1193182, 1193183, 1_030_909_248_007]) {
        expect(nsAtPitTick(t), `ns at ${t}`).to.equal(nsAt(t));
        expect(pitTicks(nsAtPitTick(t))).to.equal(t);
        expect(pitTicks(nsAtPitTick(t) - 1)).to.equal(t - 1);
      }
    });
  });

  describe('power-up state', () => {
    it('has every counter unprogrammed in mode 3, LSB then MSB, OUT high, NULL COUNT set', () => {
      const { status, p61r, pit, irq } = setup();
      for (const c of [0, 1, 2]) expect(status(c)).to.equal(PitStatus.Out | PitStatus.NullCount | 0x30 | (3 << 1));
      expect(p61r() & ~Port61Bits.RefreshToggle).to.equal(Port61Bits.Timer2Out);
      expect(pit.nextDeadlineNs()).to.equal(Infinity);
      expect(irq.take()).to.deep.equal([]);
      expect(pit.stats()).to.deep.equal({ irqPulses: 0, missedTicks: 0 });
    });

    it('reads the write-only control port as 0xff and serves wide accesses as byte accesses', () => {
      const { pit, program, at } = setup();
      expect(pit.read(PitReg.Control, 1, 0)).to.equal(0xff);
      const l = program(0, 0, 0x1234);
      at(l + 0x34);
      expect(pit.read(PitReg.Counter0, 1, 0)).to.equal(0x00);
      expect(pit.read(PitReg.Counter0, 1, 0)).to.equal(0x12);
      // A 16-bit read at 0x42 is 0x42 (counter 2's LSB) then 0x43 (write-only: 0xff).
      expect(pit.read(PitReg.Counter2, 2, 0) >> 8).to.equal(0xff);
    });
  });

  describe('mode 0: interrupt on terminal count', () => {
    it('drives OUT low until N+1 clocks after the count is written, then high', () => {
      const { out, program, at, clock } = setup();
      clock.set(12_345);
      const l = program(0, 0, 100);
      expect(l).to.equal(ticksAt(12_345) + 1);
      expect(out(0)).to.equal(false);
      at(l + 99);
      expect(out(0)).to.equal(false);
      at(l + 100);
      expect(out(0)).to.equal(true);
      at(l + 100_000);
      expect(out(0)).to.equal(true);
    });

    it('counts down from N and wraps after terminal count', () => {
      const { count, program, at } = setup(5_000);
      const l = program(0, 0, 100);
      at(l);
      expect(count(0)).to.equal(100);
      at(l + 1);
      expect(count(0)).to.equal(99);
      at(l + 100);
      expect(count(0)).to.equal(0);
      at(l + 101);
      expect(count(0)).to.equal(0xffff);
      at(l + 300);
      expect(count(0)).to.equal(0x10000 - 200);
    });

    it('pulses IRQ 0 once at terminal count, found by poll at nextDeadlineNs', () => {
      const { pit, irq, program, clock } = setup(1_000_000);
      const l = program(0, 0, 1000);
      expect(irq.pulses()).to.equal(0);
      const deadline = pit.nextDeadlineNs();
      expect(deadline).to.equal(nsAt(l + 1000));
      clock.set(deadline - 1);
      pit.poll();
      expect(irq.pulses()).to.equal(0);
      clock.set(deadline);
      pit.poll();
      pit.poll();
      expect(irq.pulses()).to.equal(1);
      expect(pit.nextDeadlineNs()).to.equal(Infinity);
      clock.advance(1e9);
      pit.poll();
      expect(irq.pulses()).to.equal(0);
      expect(pit.stats()).to.deep.equal({ irqPulses: 1, missedTicks: 0 });
    });

    it('drops OUT and stops counting on the first byte of a new count, restarting on the second', () => {
      const { wr, out, count, program, at } = setup();
      const l = program(0, 0, 10);
      at(l + 20);
      expect(out(0)).to.equal(true);
      wr(PitReg.Counter0, 50);
      expect(out(0)).to.equal(false);
      const frozen = count(0);
      at(l + 40);
      expect(count(0)).to.equal(frozen);
      wr(PitReg.Counter0, 0);
      const l2 = l + 41;
      at(l2 + 49);
      expect(out(0)).to.equal(false);
      at(l2 + 50);
      expect(out(0)).to.equal(true);
    });

    it('treats a count of 0 as 65536 (Linux shutdown fires one last interrupt 55 ms later)', () => {
      const { pit, irq, clock, program } = setup();
      const l = program(0, 0, 0);
      expect(pit.nextDeadlineNs()).to.equal(nsAt(l + 65536));
      clock.set(pit.nextDeadlineNs());
      pit.poll();
      expect(irq.pulses()).to.equal(1);
    });
  });

  describe('mode 1: hardware-retriggerable one-shot (counter 2, gated by port 0x61)', () => {
    it('waits for a GATE rising edge, then drives OUT low for N clocks; a retrigger restarts it', () => {
      const { out, p61w, program, at, count } = setup();
      program(2, 1, 10);
      at(500);
      expect(out(2)).to.equal(true);
      p61w(Port61Bits.Timer2Gate);
      const l = 501;
      expect(out(2)).to.equal(true); // low from the next clock edge
      at(l);
      expect(out(2)).to.equal(false);
      expect(count(2)).to.equal(10);
      at(l + 4);
      expect(count(2)).to.equal(6);
      // GATE low does not stop a one-shot; the next rising edge retriggers it.
      p61w(0);
      at(l + 6);
      p61w(Port61Bits.Timer2Gate);
      at(l + 7 + 9);
      expect(out(2)).to.equal(false);
      at(l + 7 + 10);
      expect(out(2)).to.equal(true);
    });
  });

  describe('mode 2: rate generator', () => {
    it('counts N..1 and drives OUT low for one clock per period', () => {
      const { out, count, program, at } = setup();
      const l = program(0, 2, 5);
      const outs: boolean[] = [];
      const counts: number[] = [];
      for (let t = l; t < l + 10; t++) {
        at(t);
        outs.push(out(0));
        counts.push(count(0));
      }
      expect(counts).to.deep.equal([5, 4, 3, 2, 1, 5, 4, 3, 2, 1]);
      expect(outs).to.deep.equal([true, true, true, true, false, true, true, true, true, false]);
    });

    it('pulses IRQ 0 once per period at the reload', () => {
      const { pit, irq, program, clock } = setup();
      const l = program(0, 2, 1193);
      for (let k = 1; k <= 5; k++) {
        expect(pit.nextDeadlineNs()).to.equal(nsAt(l + k * 1193));
        clock.set(nsAt(l + k * 1193) - 1);
        pit.poll();
        expect(irq.pulses()).to.equal(0);
        clock.set(nsAt(l + k * 1193));
        pit.poll();
        expect(irq.pulses()).to.equal(1);
      }
    });

    it('delivers a fake minute of 1000 Hz ticks exactly, polling at each deadline', () => {
      const { pit, irq, program, clock } = setup(3_000_000);
      const latch = Math.floor((PIT_HZ + 500) / 1000); // Linux's PIT_LATCH for HZ=1000
      const l = program(0, 2, latch);
      const end = clock.nowNs() + 60e9;
      let polls = 0;
      for (;;) {
        const deadline = pit.nextDeadlineNs();
        if (deadline > end) break;
        clock.set(deadline);
        pit.poll();
        polls++;
      }
      const expected = Math.floor((ticksAt(end) - l) / latch);
      expect(expected).to.be.within(60_000, 60_020); // 1193 ticks is 1000.15 Hz
      expect(irq.pulses()).to.equal(expected);
      expect(polls).to.equal(expected);
      expect(pit.stats()).to.deep.equal({ irqPulses: expected, missedTicks: 0 });
    });

    it('catches up without a storm: one pulse for many missed periods, re-armed in the future', () => {
      const { pit, irq, program, clock } = setup();
      const l = program(0, 2, 1000);
      clock.set(nsAt(l + 10_500));
      pit.poll();
      expect(irq.pulses()).to.equal(1);
      expect(pit.stats()).to.deep.equal({ irqPulses: 1, missedTicks: 9 });
      expect(pit.nextDeadlineNs()).to.equal(nsAt(l + 11_000));
      expect(pit.nextDeadlineNs()).to.be.greaterThan(clock.nowNs());
      pit.poll();
      expect(irq.pulses()).to.equal(0);
    });

    it('also catches up from a guest access, so reprogramming never loses a due edge', () => {
      const { irq, program, clock, wr } = setup();
      const l = program(0, 2, 100);
      clock.set(nsAt(l + 150));
      wr(PitReg.Control, 0x34);
      expect(irq.pulses()).to.equal(1);
    });

    it('takes a new count at the end of the current period', () => {
      const { wr, count, pit, program, at } = setup();
      const l = program(0, 2, 10);
      at(l + 13); // 3 clocks into the second period
      wr(PitReg.Counter0, 4);
      wr(PitReg.Counter0, 0);
      at(l + 19);
      expect(count(0)).to.equal(1);
      expect(pit.nextDeadlineNs()).to.equal(nsAt(l + 20));
      at(l + 20);
      expect(count(0)).to.equal(4);
      pit.poll();
      expect(pit.nextDeadlineNs()).to.equal(nsAt(l + 24));
    });

    it('runs the illegal count 1 as 2', () => {
      const { pit, program } = setup();
      const l = program(0, 2, 1);
      expect(pit.nextDeadlineNs()).to.equal(nsAt(l + 2));
    });
  });

  describe('mode 3: square wave', () => {
    it('with an even count: high N/2, low N/2, counting down by two', () => {
      const { out, count, program, at } = setup();
      const l = program(0, 3, 6);
      const outs: boolean[] = [];
      const counts: number[] = [];
      for (let t = l; t < l + 12; t++) {
        at(t);
        outs.push(out(0));
        counts.push(count(0));
      }
      expect(outs).to.deep.equal([true, true, true, false, false, false, true, true, true, false, false, false]);
      expect(counts).to.deep.equal([6, 4, 2, 6, 4, 2, 6, 4, 2, 6, 4, 2]);
    });

    it('with an odd count: high (N+1)/2, low (N-1)/2, counting N-1 down by two', () => {
      const { out, count, program, at } = setup();
      const l = program(0, 3, 5);
      const outs: boolean[] = [];
      const counts: number[] = [];
      for (let t = l; t < l + 10; t++) {
        at(t);
        outs.push(out(0));
        counts.push(count(0));
      }
      expect(outs).to.deep.equal([true, true, true, false, false, true, true, true, false, false]);
      expect(counts).to.deep.equal([4, 2, 0, 4, 2, 4, 2, 0, 4, 2]);
    });

    it('pulses IRQ 0 at each rising edge: 18.2 Hz for a count of 0 over a fake minute', () => {
      const { pit, irq, program, clock } = setup();
      const l = program(0, 3, 0);
      const end = 60e9;
      for (;;) {
        const deadline = pit.nextDeadlineNs();
        if (deadline > end) break;
        clock.set(deadline);
        pit.poll();
      }
      const expected = Math.floor((ticksAt(end) - l) / 65536);
      expect(expected).to.equal(1092);
      expect(irq.pulses()).to.equal(expected);
    });

    it('takes a new count at the end of the current half-cycle', () => {
      const { wr, out, pit, program, at } = setup();
      const l = program(0, 3, 10);
      at(l + 2); // high half, which ends at l + 5
      wr(PitReg.Counter0, 4);
      wr(PitReg.Counter0, 0);
      at(l + 4);
      expect(out(0)).to.equal(true);
      // The new count's low half (2 clocks) follows, then its high half.
      at(l + 5);
      expect(out(0)).to.equal(false);
      at(l + 6);
      expect(out(0)).to.equal(false);
      expect(pit.nextDeadlineNs()).to.equal(nsAt(l + 7));
      at(l + 7);
      expect(out(0)).to.equal(true);
      expect(pit.nextDeadlineNs()).to.equal(nsAt(l + 11));
    });

    it('raises IRQ 0 when a control word lifts OUT out of a low half', () => {
      const { wr, irq, pit, program, at } = setup();
      const l = program(0, 3, 10);
      at(l + 7);
      pit.poll();
      irq.take();
      wr(PitReg.Control, 0x34);
      expect(irq.pulses()).to.equal(1);
    });
  });

  describe('mode 4: software-triggered strobe (Linux one-shot)', () => {
    it('strobes OUT low for one clock at terminal count and pulses IRQ 0 as it rises', () => {
      const { wr, out, pit, irq, program, at, clock } = setup();
      const l = program(0, 4, 50);
      at(l + 49);
      expect(out(0)).to.equal(true);
      at(l + 50);
      expect(out(0)).to.equal(false);
      at(l + 51);
      expect(out(0)).to.equal(true);
      expect(irq.pulses()).to.equal(1);
      expect(pit.nextDeadlineNs()).to.equal(Infinity);
      // Linux arms the next event by writing only a new count (LSB, MSB).
      wr(PitReg.Counter0, 20);
      expect(pit.nextDeadlineNs()).to.equal(Infinity);
      wr(PitReg.Counter0, 0);
      const l2 = ticksAt(clock.nowNs()) + 1;
      expect(pit.nextDeadlineNs()).to.equal(nsAt(l2 + 21));
      clock.set(pit.nextDeadlineNs());
      pit.poll();
      expect(irq.pulses()).to.equal(1);
    });

    it('waits while GATE is low (counter 2)', () => {
      const { out, p61w, program, at } = setup();
      const l = program(2, 4, 10);
      at(l + 30);
      expect(out(2)).to.equal(true);
      p61w(Port61Bits.Timer2Gate);
      const g = l + 30;
      at(g + 9);
      expect(out(2)).to.equal(true);
      at(g + 10);
      expect(out(2)).to.equal(false);
      at(g + 11);
      expect(out(2)).to.equal(true);
    });
  });

  describe('mode 5: hardware-triggered strobe', () => {
    it('strobes OUT low N clocks after the clock edge following a trigger', () => {
      const { out, p61w, program, at } = setup();
      const l = program(2, 5, 8);
      at(l + 100);
      expect(out(2)).to.equal(true);
      p61w(Port61Bits.Timer2Gate);
      const load = l + 101;
      at(load + 7);
      expect(out(2)).to.equal(true);
      at(load + 8);
      expect(out(2)).to.equal(false);
      at(load + 9);
      expect(out(2)).to.equal(true);
      at(load + 1000);
      expect(out(2)).to.equal(true);
    });
  });

  describe('GATE (counter 2)', () => {
    it('pauses and resumes mode 0', () => {
      const { count, out, p61w, program, at } = setup();
      p61w(Port61Bits.Timer2Gate);
      const l = program(2, 0, 100);
      at(l + 30);
      p61w(0);
      expect(count(2)).to.equal(70);
      at(l + 500);
      expect(count(2)).to.equal(70);
      expect(out(2)).to.equal(false);
      p61w(Port61Bits.Timer2Gate);
      at(l + 501);
      expect(count(2)).to.equal(69);
      at(l + 500 + 70);
      expect(out(2)).to.equal(true);
    });

    it('stops modes 2 and 3 with OUT high and reloads on the rising edge', () => {
      const { count, out, p61w, program, at } = setup();
      p61w(Port61Bits.Timer2Gate);
      const l = program(2, 3, 10);
      at(l + 6);
      expect(out(2)).to.equal(false);
      p61w(0);
      expect(out(2)).to.equal(true);
      const frozen = count(2);
      at(l + 60);
      expect(count(2)).to.equal(frozen);
      p61w(Port61Bits.Timer2Gate);
      at(l + 61);
      expect(count(2)).to.equal(10);
      expect(out(2)).to.equal(true);
      at(l + 61 + 5);
      expect(out(2)).to.equal(false);
    });
  });

  describe('reading counters', () => {
    it('latches a count until it is read; a second latch command is ignored meanwhile', () => {
      const { wr, rd, program, at } = setup();
      const l = program(0, 0, 0x1234);
      at(l + 0x34);
      wr(PitReg.Control, 0x00);
      at(l + 0x1000);
      wr(PitReg.Control, 0x00);
      expect(rd(PitReg.Counter0)).to.equal(0x00);
      expect(rd(PitReg.Counter0)).to.equal(0x12);
      // Released: the live count again.
      expect(rd(PitReg.Counter0) | (rd(PitReg.Counter0) << 8)).to.equal(0x0234);
    });

    it('toggles LSB and MSB on unlatched reads, separately from writes', () => {
      const { wr, rd, program, at, count } = setup();
      const l = program(0, 0, 0x4000);
      at(l + 0x100);
      expect(rd(PitReg.Counter0)).to.equal(0x00); // LSB
      wr(PitReg.Counter0, 0x00); // LSB of a new count: mode 0 stops counting
      expect(rd(PitReg.Counter0)).to.equal(0x3f); // MSB, read flip-flop unaffected
      wr(PitReg.Counter0, 0x20); // MSB
      at(l + 0x100 + 1);
      expect(count(0)).to.equal(0x2000);
    });

    it('honours LSB-only and MSB-only access modes', () => {
      const { wr, rd, at, clock } = setup();
      wr(PitReg.Control, 0x10); // counter 0, LSB only, mode 0
      wr(PitReg.Counter0, 0x80);
      const l = ticksAt(clock.nowNs()) + 1;
      at(l + 0x10);
      expect([rd(PitReg.Counter0), rd(PitReg.Counter0)]).to.deep.equal([0x70, 0x70]);
      wr(PitReg.Control, 0x20); // MSB only
      wr(PitReg.Counter0, 0x12); // count 0x1200
      const l2 = ticksAt(clock.nowNs()) + 1;
      at(l2 + 0x200);
      expect(rd(PitReg.Counter0)).to.equal(0x10);
      wr(PitReg.Control, 0x00);
      at(l2 + 0x300);
      expect(rd(PitReg.Counter0)).to.equal(0x10);
      expect(rd(PitReg.Counter0)).to.equal(0x0f);
    });

    it('reads back status and count together, status first, for several counters at once', () => {
      const { wr, rd, program, at } = setup();
      const l0 = program(0, 2, 1000);
      const l2 = program(2, 0, 500); // GATE low: loaded, not counting
      at(Math.max(l0, l2) + 100);
      // Read-back of counters 0 and 2: count and status.
      wr(PitReg.Control, 0xc0 | 0x02 | 0x08);
      const elapsed0 = Math.max(l0, l2) + 100 - l0;
      expect(rd(PitReg.Counter0)).to.equal(PitStatus.Out | 0x30 | (2 << 1));
      expect(rd(PitReg.Counter0) | (rd(PitReg.Counter0) << 8)).to.equal(1000 - elapsed0);
      expect(rd(PitReg.Counter2)).to.equal(0x30);
      expect(rd(PitReg.Counter2) | (rd(PitReg.Counter2) << 8)).to.equal(500);
      // Counter 1 was not selected: nothing is latched, and with no count it reads 0.
      expect(rd(PitReg.Counter1)).to.equal(0);
    });

    it('reports NULL COUNT from the write until the count reaches the counting element', () => {
      const { wr, status, at, clock } = setup();
      wr(PitReg.Control, 0x30);
      expect(status(0) & PitStatus.NullCount).to.equal(PitStatus.NullCount);
      wr(PitReg.Counter0, 10);
      wr(PitReg.Counter0, 0);
      expect(status(0) & PitStatus.NullCount).to.equal(PitStatus.NullCount);
      at(ticksAt(clock.nowNs()) + 1);
      expect(status(0) & PitStatus.NullCount).to.equal(0);
    });

    it('counts in BCD when asked', () => {
      const { wr, rd, at, clock, count } = setup();
      wr(PitReg.Control, 0x30 | 0x01); // counter 0, LSB/MSB, mode 0, BCD
      wr(PitReg.Counter0, 0x00);
      wr(PitReg.Counter0, 0x10); // 1000 decimal
      const l = ticksAt(clock.nowNs()) + 1;
      at(l + 1);
      expect(count(0)).to.equal(0x0999);
      at(l + 1000);
      expect(count(0)).to.equal(0x0000);
      at(l + 1001);
      expect(count(0)).to.equal(0x9999);
      expect(rd(PitReg.Counter0)).to.equal(0x99);
    });
  });

  describe('port 0x61', () => {
    it('stores bits 0-3, toggles the refresh bit on every read and shows OUT2 in bit 5', () => {
      const { p61r, p61w } = setup();
      p61w(0xff);
      const a = p61r();
      const b = p61r();
      expect(a & 0x0f).to.equal(0x0f);
      expect((a ^ b) & 0xff).to.equal(Port61Bits.RefreshToggle);
      expect(a & (Port61Bits.ChannelCheck | Port61Bits.ParityError)).to.equal(0);
    });

    it('gates counter 2 with bit 0 and reports its OUT in bit 5', () => {
      const { p61r, p61w, wr, at, clock } = setup();
      p61w(Port61Bits.Timer2Gate);
      wr(PitReg.Control, 0xb0);
      expect(p61r() & Port61Bits.Timer2Out).to.equal(0);
      wr(PitReg.Counter2, 100);
      wr(PitReg.Counter2, 0);
      const l = ticksAt(clock.nowNs()) + 1;
      at(l + 99);
      expect(p61r() & Port61Bits.Timer2Out).to.equal(0);
      at(l + 100);
      expect(p61r() & Port61Bits.Timer2Out).to.equal(Port61Bits.Timer2Out);
    });

    it('lets Linux pit_calibrate_tsc() finish at the right fake time', () => {
      // arch/x86/kernel/tsc.c, pit_calibrate_tsc(CAL_LATCH, CAL_MS, CAL_PIT_LOOPS):
      // gate high, speaker off; counter 2 mode 0 binary; poll 0x61 bit 5.
      const { p61r, p61w, wr, clock } = setup(7_777_777);
      const latch = Math.floor(PIT_HZ / (1000 / 10));
      const stepNs = 700; // what one inb() costs the guest here
      p61w((p61r() & ~Port61Bits.SpeakerData) | Port61Bits.Timer2Gate);
      wr(PitReg.Control, 0xb0);
      wr(PitReg.Counter2, latch & 0xff);
      wr(PitReg.Counter2, latch >> 8);
      const terminal = ticksAt(clock.nowNs()) + 1 + latch;
      let loops = 0;
      for (;;) {
        clock.advance(stepNs);
        if (p61r() & Port61Bits.Timer2Out) break;
        loops++;
        expect(loops).to.be.lessThan(1e6);
      }
      expect(clock.nowNs()).to.be.at.least(nsAt(terminal));
      expect(clock.nowNs()).to.be.lessThan(nsAt(terminal) + stepNs);
      expect(loops).to.be.greaterThan(1000); // CAL_PIT_LOOPS: fewer means "calibration failed"
    });

    it('lets Linux quick_pit_calibrate() watch the MSB step down every 256 ticks', () => {
      // arch/x86/kernel/tsc.c: counter 2 mode 0 from 0xffff, unlatched LSB+MSB reads.
      const { p61r, p61w, wr, rd, clock } = setup();
      const inb = (port: number): number => {
        clock.advance(1000);
        return port === PORT61 ? p61r() : rd(port - PIT_PORT);
      };
      p61w((inb(PORT61) & ~Port61Bits.SpeakerData) | Port61Bits.Timer2Gate);
      wr(PitReg.Control, 0xb0);
      wr(PitReg.Counter2, 0xff);
      wr(PitReg.Counter2, 0xff);
      const verifyMsb = (value: number): boolean => {
        inb(0x42); // LSB, ignored
        return inb(0x42) === value;
      };
      const expectMsb = (value: number): boolean => {
        let n = 0;
        while (n < 50_000 && verifyMsb(value)) n++;
        return n > 5;
      };
      verifyMsb(0);
      expect(expectMsb(0xff)).to.equal(true);
      const start = clock.nowNs();
      for (let i = 1; i <= 200; i++) expect(expectMsb(0xff - i), `MSB 0x${(0xff - i).toString(16)}`).to.equal(true);
      // 200 MSB steps of 256 ticks each.
      expect(ticksAt(clock.nowNs()) - ticksAt(start)).to.be.within(200 * 256 - 5, 200 * 256 + 5);
    });
  });

  describe('waking the timer thread', () => {
    it('calls onDeadlineChange when a guest access moves the deadline earlier, outside the mutex', () => {
      const { state, clock, irq } = setup();
      let calls = 0;
      let pit!: I8254Pit;
      const onDeadlineChange = (): void => {
        calls++;
        expect(pit.nextDeadlineNs()).to.be.lessThan(Infinity); // the mutex is free
      };
      pit = new I8254Pit(state, deviceHost({ irq, clock }).host, { irq: IRQ, onDeadlineChange });
      pit.write(PitReg.Control, 1, 0x34, 0);
      pit.write(PitReg.Counter0, 1, 0x00, 0);
      expect(calls).to.equal(0);
      pit.write(PitReg.Counter0, 1, 0x10, 0); // Infinity -> one period away
      expect(calls).to.equal(1);
      pit.read(PitReg.Counter0, 1, 0);
      pit.port61.write(0, 1, 0x01, 0);
      pit.write(PitReg.Control, 1, 0xb0, 0); // counter 2 is not on the IRQ
      expect(calls).to.equal(1);
      pit.write(PitReg.Control, 1, 0x38, 0); // mode 4, no count yet: no deadline
      pit.write(PitReg.Counter0, 1, 0x20, 0);
      pit.write(PitReg.Counter0, 1, 0x00, 0);
      expect(calls).to.equal(2);
    });
  });

  describe('sharing', () => {
    it('keeps one state for every view, with each edge delivered once', () => {
      const { state, irq, clock, program, pit } = setup();
      const other = otherView(state, irq, clock);
      const l = program(0, 2, 100);
      expect(other.nextDeadlineNs()).to.equal(nsAt(l + 100));
      clock.set(nsAt(l + 100));
      other.poll();
      pit.poll();
      expect(irq.pulses()).to.equal(1);
      other.write(PitReg.Control, 1, 0x00, 1);
      expect(pit.read(PitReg.Counter0, 1, 0)).to.equal(100);
    });
  });
});
