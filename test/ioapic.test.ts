import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import {
  IOAPIC_PINS,
  IOAPIC_VERSION,
  Ioapic,
  IoapicMmio,
  IoapicReg,
  Rte,
} from '../src/irqchip/ioapic.js';
import { Mutex } from '../src/sync/mutex.js';
import { DeliveryMode, Shorthand, type ApicBus, type ApicMessage } from '../src/irqchip/types.js';
import type { IoapicWorkerData } from './ioapic.worker.js';

class RecordingBus implements ApicBus {
  readonly messages: ApicMessage[] = [];
  deliver(msg: ApicMessage): void {
    this.messages.push(msg);
  }
  /** Returns and forgets what was delivered so far. */
  take(): ApicMessage[] {
    return this.messages.splice(0);
  }
}

function writeReg(io: Ioapic, reg: number, value: number): void {
  io.write(IoapicMmio.RegSel, 4, reg, 0);
  io.write(IoapicMmio.Window, 4, value, 0);
}

function readReg(io: Ioapic, reg: number): number {
  io.write(IoapicMmio.RegSel, 4, reg, 0);
  return io.read(IoapicMmio.Window, 4, 0);
}

const lowReg = (pin: number): number => IoapicReg.RedirectionTable + 2 * pin;
const highReg = (pin: number): number => lowReg(pin) + 1;

/** Programs an entry the way Linux does: high word first, then low. */
function program(io: Ioapic, pin: number, low: number, high = 0): void {
  writeReg(io, highReg(pin), high);
  writeReg(io, lowReg(pin), low);
}

const LEVEL = Rte.LevelTriggered;
const MASKED = Rte.Masked;

function fixed(vector: number, dest: number, extra: Partial<ApicMessage> = {}): ApicMessage {
  return {
    vector,
    deliveryMode: DeliveryMode.Fixed,
    logical: false,
    dest,
    levelTriggered: false,
    assert: true,
    shorthand: Shorthand.None,
    source: -1,
    x2apic: false,
    ...extra,
  };
}

describe('Ioapic', () => {
  let bus: RecordingBus;
  let io: Ioapic;

  beforeEach(() => {
    bus = new RecordingBus();
    io = new Ioapic(Ioapic.allocate(), bus);
  });

  describe('registers', () => {
    it('reports version 0x11 with 24 entries and a read-only version register', () => {
      expect(readReg(io, IoapicReg.Version)).to.equal(0x00170011);
      expect(IOAPIC_VERSION).to.equal(0x00170011);
      writeReg(io, IoapicReg.Version, 0);
      expect(readReg(io, IoapicReg.Version)).to.equal(0x00170011);
    });

    it('keeps only bits 27:24 of the ID, mirrored by the arbitration register', () => {
      expect(readReg(io, IoapicReg.Id)).to.equal(0);
      writeReg(io, IoapicReg.Id, 0xffffffff);
      expect(readReg(io, IoapicReg.Id)).to.equal(0x0f000000);
      writeReg(io, IoapicReg.Id, 0x02000000);
      expect(readReg(io, IoapicReg.Id)).to.equal(0x02000000);
      expect(readReg(io, IoapicReg.Arbitration)).to.equal(0x02000000);
      writeReg(io, IoapicReg.Arbitration, 0x05000000);
      expect(readReg(io, IoapicReg.Arbitration)).to.equal(0x02000000);
    });

    it('reads IOREGSEL back as its low byte', () => {
      io.write(IoapicMmio.RegSel, 4, 0x12345601, 0);
      expect(io.read(IoapicMmio.RegSel, 4, 0)).to.equal(0x01);
      expect(io.read(IoapicMmio.Window, 4, 0)).to.equal(IOAPIC_VERSION);
      io.write(IoapicMmio.RegSel, 1, 0x10, 0);
      expect(io.read(IoapicMmio.RegSel, 1, 0)).to.equal(0x10);
    });

    it('ignores undecoded offsets and narrow IOWIN writes; narrow reads return low bytes', () => {
      io.write(IoapicMmio.RegSel, 4, IoapicReg.Version, 0);
      expect(io.read(0x04, 4, 0)).to.equal(0);
      expect(io.read(0x20, 4, 0)).to.equal(0);
      expect(io.read(0x40, 4, 0)).to.equal(0);
      expect(io.read(IoapicMmio.Window, 2, 0)).to.equal(0x0011);
      expect(io.read(IoapicMmio.Window, 1, 0)).to.equal(0x11);
      io.write(IoapicMmio.RegSel, 4, IoapicReg.Id, 0);
      io.write(IoapicMmio.Window, 1, 0xff, 0);
      io.write(IoapicMmio.Window, 2, 0xffff, 0);
      io.write(0x40, 4, 0x30, 0); // the EOI register of version 0x20 parts
      expect(readReg(io, IoapicReg.Id)).to.equal(0);
      expect(readReg(io, 0x03)).to.equal(0);
      expect(readReg(io, 0x40)).to.equal(0);
    });

    it('powers on with every entry masked', () => {
      for (let pin = 0; pin < IOAPIC_PINS; pin++) {
        expect(readReg(io, lowReg(pin))).to.equal(Rte.Masked);
        expect(readReg(io, highReg(pin))).to.equal(0);
      }
      expect(io.entries().every((e) => e.masked && !e.remoteIrr)).to.equal(true);
    });

    it('round-trips redirection entries, dropping read-only and reserved low bits', () => {
      // All writable low bits: vector, delivery mode, dest mode, polarity, trigger, mask.
      writeReg(io, lowReg(5), 0xffffffff);
      expect(readReg(io, lowReg(5))).to.equal(0x0001afff);
      writeReg(io, highReg(5), 0xfedcba98);
      expect(readReg(io, highReg(5))).to.equal(0xfedcba98);
      program(io, 23, 0x00012345 & ~Rte.DeliveryStatus, 0x07000000);
      const e = io.entries()[23]!;
      expect(e).to.include({
        pin: 23,
        vector: 0x45,
        deliveryMode: 3,
        logical: false,
        activeLow: true,
        levelTriggered: false,
        masked: true,
        remoteIrr: false,
        destination: 7,
        effectiveDestination: 7,
        lineHigh: false,
      });
      expect(bus.messages).to.deep.equal([]);
    });

    it('shares state between views over one buffer', () => {
      const buffer = Ioapic.allocate();
      const a = new Ioapic(buffer, bus);
      const b = new Ioapic(buffer, bus);
      program(a, 4, 0x41);
      a.setLevel(4, true);
      expect(readReg(b, lowReg(4))).to.equal(0x41);
      expect(b.entries()[4]!.lineHigh).to.equal(true);
      expect(bus.take()).to.have.length(1);
    });

    it('resets to the power-on state but keeps pin levels', () => {
      program(io, 3, 0x33 | LEVEL, 0x01000000);
      writeReg(io, IoapicReg.Id, 0x03000000);
      io.setLevel(3, true);
      expect(bus.take()).to.have.length(1);
      io.reset();
      expect(readReg(io, IoapicReg.Id)).to.equal(0);
      expect(readReg(io, lowReg(3))).to.equal(Rte.Masked);
      expect(io.entries()[3]!.lineHigh).to.equal(true);
      expect(bus.take()).to.deep.equal([]);
    });

    it('rejects pins that do not exist', () => {
      expect(() => io.setLevel(24, true)).to.throw(RangeError, /pin 24/);
      expect(() => io.setLevel(-1, true)).to.throw(RangeError);
      expect(() => io.setLevel(1.5, true)).to.throw(RangeError);
    });
  });

  describe('edge-triggered entries', () => {
    it('deliver once per rising edge', () => {
      program(io, 1, 0x31, 0x02000000);
      io.setLevel(1, true);
      expect(bus.take()).to.deep.equal([fixed(0x31, 2)]);
      io.setLevel(1, true);
      io.setLevel(1, false);
      io.setLevel(1, false);
      expect(bus.take()).to.deep.equal([]);
      io.setLevel(1, true);
      io.setLevel(1, false);
      io.setLevel(1, true);
      expect(bus.take()).to.deep.equal([fixed(0x31, 2), fixed(0x31, 2)]);
    });

    it('lose edges that arrive while masked', () => {
      program(io, 1, 0x31 | MASKED);
      io.setLevel(1, true);
      program(io, 1, 0x31);
      expect(bus.take()).to.deep.equal([]);
      io.setLevel(1, false);
      io.setLevel(1, true);
      expect(bus.take()).to.have.length(1);
    });

    it('ignore EOIs', () => {
      program(io, 1, 0x31);
      io.setLevel(1, true);
      bus.take();
      io.onEoi(0x31);
      expect(bus.take()).to.deep.equal([]);
      expect(io.entries()[1]!.remoteIrr).to.equal(false);
    });

    it('with active-low polarity deliver on the falling edge', () => {
      io.setLevel(6, true); // idle high, as an active-low line is
      program(io, 6, 0x36 | Rte.ActiveLow);
      expect(bus.take()).to.deep.equal([]);
      io.setLevel(6, false);
      expect(bus.take()).to.deep.equal([fixed(0x36, 0)]);
      io.setLevel(6, true);
      expect(bus.take()).to.deep.equal([]);
    });

    it('treat NMI/SMI/INIT/ExtINT entries as edge whatever the trigger bit says', () => {
      program(io, 7, (DeliveryMode.NMI << 8) | LEVEL, 0x01000000);
      io.setLevel(7, true);
      const [msg] = bus.take();
      expect(msg).to.deep.equal(fixed(0, 1, { deliveryMode: DeliveryMode.NMI, levelTriggered: false }));
      expect(io.entries()[7]!.remoteIrr).to.equal(false);
      io.setLevel(7, false);
      io.setLevel(7, true);
      expect(bus.take()).to.have.length(1);
      program(io, 0, DeliveryMode.ExtINT << 8);
      io.setLevel(0, true);
      expect(bus.take()[0]!.deliveryMode).to.equal(DeliveryMode.ExtINT);
    });

    it('deliver nothing for the reserved delivery modes', () => {
      program(io, 8, 0x38 | (3 << 8));
      program(io, 9, 0x39 | (6 << 8) | LEVEL);
      io.setLevel(8, true);
      io.setLevel(9, true);
      expect(bus.take()).to.deep.equal([]);
      expect(io.entries()[9]!.remoteIrr).to.equal(false);
    });
  });

  describe('level-triggered entries', () => {
    it('deliver, hold remote IRR until EOI, and redeliver while the line stays active', () => {
      program(io, 10, 0x4a | LEVEL, 0x03000000);
      io.setLevel(10, true);
      expect(bus.take()).to.deep.equal([fixed(0x4a, 3, { levelTriggered: true })]);
      expect(io.entries()[10]!.remoteIrr).to.equal(true);
      expect(readReg(io, lowReg(10))).to.equal(0x4a | LEVEL | Rte.RemoteIrr);

      // Still awaiting EOI: a re-assertion is not delivered.
      io.setLevel(10, false);
      io.setLevel(10, true);
      expect(bus.take()).to.deep.equal([]);

      io.onEoi(0x4b); // another vector
      expect(bus.take()).to.deep.equal([]);
      expect(io.entries()[10]!.remoteIrr).to.equal(true);

      io.onEoi(0x4a); // line still high: deliver again
      expect(bus.take()).to.deep.equal([fixed(0x4a, 3, { levelTriggered: true })]);
      expect(io.entries()[10]!.remoteIrr).to.equal(true);

      io.setLevel(10, false);
      io.onEoi(0x4a); // line low now: complete, nothing more
      expect(bus.take()).to.deep.equal([]);
      expect(io.entries()[10]!.remoteIrr).to.equal(false);

      io.setLevel(10, true);
      expect(bus.take()).to.have.length(1);
    });

    it('complete every entry sharing the EOI vector', () => {
      program(io, 16, 0x50 | LEVEL, 0x01000000);
      program(io, 17, 0x50 | LEVEL, 0x02000000);
      io.setLevel(16, true);
      io.setLevel(17, true);
      expect(bus.take().map((m) => m.dest)).to.deep.equal([1, 2]);
      io.setLevel(16, false);
      io.onEoi(0x50);
      expect(bus.take().map((m) => m.dest)).to.deep.equal([2]);
      const [e16, e17] = io.entries().slice(16, 18);
      expect(e16!.remoteIrr).to.equal(false);
      expect(e17!.remoteIrr).to.equal(true);
    });

    it('honour active-low polarity: an idle-low line is asserted', () => {
      program(io, 19, 0x53 | LEVEL | Rte.ActiveLow | MASKED);
      expect(bus.take()).to.deep.equal([]);
      program(io, 19, 0x53 | LEVEL | Rte.ActiveLow); // unmask: line low = active
      expect(bus.take()).to.deep.equal([fixed(0x53, 0, { levelTriggered: true })]);
      io.setLevel(19, true); // deasserted
      io.onEoi(0x53);
      expect(bus.take()).to.deep.equal([]);
      io.setLevel(19, false);
      expect(bus.take()).to.have.length(1);
    });

    it('deliver on unmask while the line is active, once', () => {
      program(io, 20, 0x54 | LEVEL | MASKED);
      io.setLevel(20, true);
      expect(bus.take()).to.deep.equal([]);
      program(io, 20, 0x54 | LEVEL);
      expect(bus.take()).to.have.length(1);
      // Mask and unmask again while remote IRR is set: nothing.
      program(io, 20, 0x54 | LEVEL | MASKED);
      program(io, 20, 0x54 | LEVEL);
      expect(bus.take()).to.deep.equal([]);
      // EOI while masked clears remote IRR without delivering; unmask delivers.
      program(io, 20, 0x54 | LEVEL | MASKED);
      io.onEoi(0x54);
      expect(bus.take()).to.deep.equal([]);
      expect(io.entries()[20]!.remoteIrr).to.equal(false);
      program(io, 20, 0x54 | LEVEL);
      expect(bus.take()).to.have.length(1);
    });

    it('clear remote IRR when switched to edge (Linux clears a stuck IRR that way)', () => {
      program(io, 11, 0x4b | LEVEL);
      io.setLevel(11, true);
      expect(bus.take()).to.have.length(1);
      // __eoi_ioapic_pin: mask + edge, then restore the level entry.
      program(io, 11, 0x4b | MASKED);
      expect(io.entries()[11]!.remoteIrr).to.equal(false);
      program(io, 11, 0x4b | LEVEL | Rte.RemoteIrr); // RO bit in the written value is ignored
      expect(bus.take()).to.deep.equal([fixed(0x4b, 0, { levelTriggered: true })]);
    });

    it('deliver lowest-priority entries with level semantics too', () => {
      program(io, 12, 0x4c | LEVEL | (DeliveryMode.LowestPriority << 8) | Rte.DestLogical, 0x0f000000);
      io.setLevel(12, true);
      expect(bus.take()).to.deep.equal([
        fixed(0x4c, 0x0f, { deliveryMode: DeliveryMode.LowestPriority, logical: true, levelTriggered: true }),
      ]);
      expect(io.entries()[12]!.remoteIrr).to.equal(true);
    });
  });

  describe('destinations', () => {
    it('emit physical and logical destinations from bits 63:56', () => {
      program(io, 2, 0x30, 0x05000000);
      program(io, 3, 0x31 | Rte.DestLogical, 0xa0000000);
      io.setLevel(2, true);
      io.setLevel(3, true);
      expect(bus.take()).to.deep.equal([fixed(0x30, 5), fixed(0x31, 0xa0, { logical: true })]);
    });

    it('keep 0xFF as the xAPIC broadcast', () => {
      program(io, 2, 0x30, 0xff000000);
      io.setLevel(2, true);
      expect(bus.take()).to.deep.equal([fixed(0x30, 0xff)]);
    });

    it('add extended destination ID bits 55:49 as ID bits 14:8', () => {
      // Destination 0x1234: bits 63:56 = 0x34, bits 55:49 = 0x12; bit 48 (IR format) ignored.
      const high = ((0x34 << 24) | (0x12 << 17) | (1 << 16)) >>> 0;
      program(io, 21, 0x60, high);
      expect(readReg(io, highReg(21))).to.equal(high);
      expect(io.entries()[21]!).to.include({ destination: 0x34, effectiveDestination: 0x1234 });
      io.setLevel(21, true);
      expect(bus.take()).to.deep.equal([fixed(0x60, 0x1234, { x2apic: true })]);
    });
  });

  it('hands messages to the bus after releasing its lock', () => {
    const buffer = Ioapic.allocate();
    const lock = new Mutex(new Int32Array(buffer), 0); // the IOAPIC's lock word
    const free: boolean[] = [];
    const view = new Ioapic(buffer, {
      deliver() {
        const ok = lock.tryLock();
        if (ok) lock.unlock();
        free.push(ok);
      },
    });
    program(view, 1, 0x31);
    program(view, 2, 0x32 | LEVEL);
    view.setLevel(1, true); // edge
    view.setLevel(2, true); // level
    view.onEoi(0x32); // redelivery
    program(view, 2, 0x32 | LEVEL | MASKED);
    view.onEoi(0x32);
    program(view, 2, 0x32 | LEVEL); // unmask delivery
    expect(free).to.deep.equal([true, true, true, true]);
  });

  it('counts deliveries exactly while worker threads toggle lines concurrently', async function () {
    this.timeout(120000);
    const WORKERS = 4;
    const PINS_PER_WORKER = 3; // two unmasked, one masked
    const CYCLES = 20000;
    const buffer = Ioapic.allocate();
    const counts = new Int32Array(new SharedArrayBuffer(256 * 4));
    const flags = new Int32Array(new SharedArrayBuffer(2 * 4));
    const main = new Ioapic(buffer, {
      deliver(msg) {
        Atomics.add(counts, msg.vector, 1);
      },
    });
    const vectorOf = (pin: number): number => 0x40 + pin;
    for (let w = 0; w < WORKERS; w++) {
      for (let k = 0; k < PINS_PER_WORKER; k++) {
        const pin = w * PINS_PER_WORKER + k;
        program(main, pin, vectorOf(pin) | (k === 2 ? MASKED : 0), (w + 1) << 24);
      }
    }
    // The main thread meanwhile cycles a level entry through unmask/EOI/mask/EOI.
    const LEVEL_PIN = 23;
    program(main, LEVEL_PIN, 0x70 | LEVEL | MASKED);
    main.setLevel(LEVEL_PIN, true);

    const workers = Array.from({ length: WORKERS }, (_, w) => {
      const data: IoapicWorkerData = {
        ioapic: buffer,
        counts: counts.buffer as SharedArrayBuffer,
        flags: flags.buffer as SharedArrayBuffer,
        pins: Array.from({ length: PINS_PER_WORKER }, (_, k) => w * PINS_PER_WORKER + k),
        cycles: CYCLES,
      };
      return new Worker(new URL('./ioapic.worker.js', import.meta.url), { workerData: data });
    });
    const exits = workers.map(
      (worker) =>
        new Promise<number>((resolve, reject) => {
          worker.once('error', reject);
          worker.once('exit', resolve);
        }),
    );
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the workers reach their wait
    Atomics.store(flags, 0, 1);
    Atomics.notify(flags, 0);

    let rounds = 0;
    while (Atomics.load(flags, 1) < WORKERS) {
      writeReg(main, lowReg(LEVEL_PIN), 0x70 | LEVEL); // unmask: delivers
      main.onEoi(0x70); // still active: delivers again
      writeReg(main, lowReg(LEVEL_PIN), 0x70 | LEVEL | MASKED);
      main.onEoi(0x70); // masked: completes silently
      rounds++;
    }
    expect(await Promise.all(exits)).to.deep.equal(new Array(WORKERS).fill(0));

    for (let w = 0; w < WORKERS; w++) {
      for (let k = 0; k < PINS_PER_WORKER; k++) {
        const pin = w * PINS_PER_WORKER + k;
        expect(Atomics.load(counts, vectorOf(pin)), `pin ${pin}`).to.equal(k === 2 ? 0 : CYCLES);
      }
    }
    expect(rounds).to.be.greaterThan(0);
    expect(Atomics.load(counts, 0x70)).to.equal(2 * rounds);
    expect(main.entries().slice(0, WORKERS * PINS_PER_WORKER).every((e) => !e.lineHigh)).to.equal(true);
  });
});
