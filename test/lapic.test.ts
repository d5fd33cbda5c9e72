import { expect } from 'chai';
import { FakeClock } from '../src/sync/clock.js';
import {
  APIC_BASE_BSP,
  APIC_BASE_EN,
  APIC_BASE_EXTD,
  LAPIC_DEFAULT_BASE,
  LAPIC_VERSION,
  LapicEvent,
  LapicReg,
  LapicSet,
  MIN_PERIODIC_NS,
  MSR_IA32_APIC_BASE,
  MSR_IA32_TSC_DEADLINE,
  createMmioDevice,
  isLapicMsr,
  timerDivisor,
  x2apicLogicalId,
  type Lapic,
  type LapicSetOptions,
} from '../src/irqchip/lapic.js';
import { DeliveryMode, Shorthand, type ApicMessage, type TscSource } from '../src/irqchip/types.js';

interface Rig {
  set: LapicSet;
  clock: FakeClock;
  woken: number[];
  eois: number[];
  timerChanges: number[];
}

function rig(count = 4, extra: Partial<LapicSetOptions> = {}): Rig {
  const clock = new FakeClock(1_000_000);
  const woken: number[] = [];
  const eois: number[] = [];
  const timerChanges: number[] = [];
  const set = new LapicSet(LapicSet.allocate(count), {
    clock,
    wake: (v) => woken.push(v),
    eoi: { onEoi: (v) => eois.push(v) },
    timerChanged: (v) => timerChanges.push(v),
    ...extra,
  });
  return { set, clock, woken, eois, timerChanges };
}

/** Software-enables every APIC (SVR bit 8, spurious vector 0xFF). */
function enableAll(set: LapicSet): void {
  for (let i = 0; i < set.count; i++) set.get(i).write(LapicReg.SVR, 4, 0x1ff);
}

function fixed(dest: number, vector: number, extra: Partial<ApicMessage> = {}): ApicMessage {
  return {
    vector,
    deliveryMode: DeliveryMode.Fixed,
    logical: false,
    dest,
    levelTriggered: false,
    assert: true,
    shorthand: Shorthand.None,
    source: -1,
    ...extra,
  };
}

function irrHas(l: Lapic, v: number): boolean {
  return ((l.read(LapicReg.IRR + (v >> 5) * 16, 4) >>> (v & 31)) & 1) === 1;
}
function isrHas(l: Lapic, v: number): boolean {
  return ((l.read(LapicReg.ISR + (v >> 5) * 16, 4) >>> (v & 31)) & 1) === 1;
}
function tmrHas(l: Lapic, v: number): boolean {
  return ((l.read(LapicReg.TMR + (v >> 5) * 16, 4) >>> (v & 31)) & 1) === 1;
}

/** Which vCPUs have `vector` pending in IRR. */
function holders(set: LapicSet, vector: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < set.count; i++) {
    const l = set.get(i);
    const x2 = l.mode === 'x2apic';
    const word = x2 ? Number(l.readMsr(0x820 + (vector >> 5))) : l.read(LapicReg.IRR + (vector >> 5) * 16, 4);
    if ((word >>> (vector & 31)) & 1) out.push(i);
  }
  return out;
}

/** xAPIC ICR send: destination byte to ICR high, then the command to ICR low. */
function icr(l: Lapic, lo: number, dest = 0): void {
  l.write(LapicReg.ICR_HI, 4, dest << 24);
  l.write(LapicReg.ICR_LO, 4, lo);
}

/** A 32-bit bit pattern (JS bit operators yield signed results) as an MSR value. */
function msrValue(bits: number): bigint {
  return BigInt(bits >>> 0);
}

function toX2apic(l: Lapic): void {
  expect(l.writeMsr(MSR_IA32_APIC_BASE, msrValue(LAPIC_DEFAULT_BASE | APIC_BASE_EN | APIC_BASE_EXTD))).to.equal(true);
}

/** Accept -> acknowledge -> EOI, returning what acknowledge gave. */
function service(l: Lapic): number {
  const v = l.acknowledge();
  l.write(LapicReg.EOI, 4, 0);
  return v;
}

describe('LAPIC: reset state and register file', () => {
  it('powers up as the SDM describes', () => {
    const { set } = rig(2);
    const bsp = set.get(0);
    const ap = set.get(1);
    expect(bsp.read(LapicReg.VERSION, 4)).to.equal(LAPIC_VERSION);
    expect(bsp.read(LapicReg.ID, 4)).to.equal(0);
    expect(ap.read(LapicReg.ID, 4)).to.equal(1 << 24);
    expect(ap.read(LapicReg.SVR, 4)).to.equal(0xff);
    expect(ap.read(LapicReg.DFR, 4)).to.equal(0xffffffff);
    expect(ap.read(LapicReg.LDR, 4)).to.equal(0);
    expect(ap.read(LapicReg.TPR, 4)).to.equal(0);
    for (let off = LapicReg.LVT_TIMER; off <= LapicReg.LVT_ERROR; off += 16) {
      expect(ap.read(off, 4), `LVT ${off.toString(16)}`).to.equal(0x10000);
    }
    // Virtual-wire mode on the BSP: LINT0 unmasked ExtINT.
    expect(bsp.read(LapicReg.LVT_LINT0, 4)).to.equal(0x700);
    expect(bsp.readMsr(MSR_IA32_APIC_BASE)).to.equal(msrValue(LAPIC_DEFAULT_BASE | APIC_BASE_EN | APIC_BASE_BSP));
    expect(ap.readMsr(MSR_IA32_APIC_BASE)).to.equal(msrValue(LAPIC_DEFAULT_BASE | APIC_BASE_EN));
    expect(ap.read(LapicReg.RRD, 4)).to.equal(0);
  });

  it('masks writes to their writable bits and ignores writes to read-only registers', () => {
    const { set } = rig(2);
    const l = set.get(1);
    enableAll(set);
    l.write(LapicReg.TPR, 4, 0x1234);
    expect(l.read(LapicReg.TPR, 4)).to.equal(0x34);
    l.write(LapicReg.LDR, 4, 0xabcdef12);
    expect(l.read(LapicReg.LDR, 4)).to.equal(0xab000000);
    l.write(LapicReg.DFR, 4, 0);
    expect(l.read(LapicReg.DFR, 4)).to.equal(0x0fffffff);
    l.write(LapicReg.VERSION, 4, 0);
    l.write(LapicReg.PPR, 4, 0xff);
    expect(l.read(LapicReg.VERSION, 4)).to.equal(LAPIC_VERSION);
    expect(l.read(LapicReg.PPR, 4)).to.equal(0x34);
    l.write(LapicReg.LVT_LINT0, 4, 0xffffffff);
    // Remote IRR (14) and delivery status (12) are read-only.
    expect(l.read(LapicReg.LVT_LINT0, 4)).to.equal(0x1a7ff);
    l.write(LapicReg.LVT_ERROR, 4, 0xffffffff);
    expect(l.read(LapicReg.LVT_ERROR, 4)).to.equal(0x100ff);
    l.write(LapicReg.SVR, 4, 0xffffffff);
    expect(l.read(LapicReg.SVR, 4)).to.equal(0x3ff);
  });

  it('serves 1- and 2-byte reads and ignores narrow or misaligned writes', () => {
    const { set } = rig(2);
    const l = set.get(1);
    expect(l.read(LapicReg.VERSION, 1)).to.equal(0x14);
    expect(l.read(LapicReg.VERSION + 2, 1)).to.equal(0x05);
    expect(l.read(LapicReg.VERSION + 2, 2)).to.equal(0x0005);
    expect(l.read(LapicReg.ID + 3, 1)).to.equal(1);
    expect(l.read(LapicReg.VERSION + 4, 4)).to.equal(0);
    l.write(LapicReg.TPR, 1, 0x40);
    l.write(LapicReg.TPR + 4, 4, 0x40);
    expect(l.read(LapicReg.TPR, 4)).to.equal(0);
  });

  it('exposes the MMIO page as a bus device that routes by accessing vCPU', () => {
    const { set } = rig(3);
    const dev = createMmioDevice(set);
    expect(dev.read(LapicReg.ID, 4, 2)).to.equal(2 << 24);
    dev.write(LapicReg.TPR, 4, 0x20, 1);
    expect(set.get(1).read(LapicReg.TPR, 4)).to.equal(0x20);
    expect(set.get(2).read(LapicReg.TPR, 4)).to.equal(0);
    // Relocated away: the page at the default base no longer answers.
    expect(set.get(2).writeMsr(MSR_IA32_APIC_BASE, msrValue(0xfed00000 | APIC_BASE_EN))).to.equal(true);
    expect(set.get(2).baseAddress()).to.equal(0xfed00000);
    expect(dev.read(LapicReg.VERSION, 4, 2)).to.equal(0);
    expect(dev.read(LapicReg.VERSION, 4, 1)).to.equal(LAPIC_VERSION);
  });

  it('lets several views share one buffer and checks that they agree on APIC IDs', () => {
    const clock = new FakeClock();
    const buf = LapicSet.allocate(2);
    const a = new LapicSet(buf, { clock, wake: () => {}, apicIds: [4, 6] });
    const b = new LapicSet(buf, { clock, wake: () => {} });
    expect(b.get(1).read(LapicReg.ID, 4)).to.equal(6 << 24);
    b.get(1).write(LapicReg.TPR, 4, 0x50);
    expect(a.get(1).read(LapicReg.TPR, 4)).to.equal(0x50);
    expect(() => new LapicSet(buf, { clock, wake: () => {}, apicIds: [4, 7] })).to.throw(RangeError);
    expect(() => new LapicSet(LapicSet.allocate(2), { clock, wake: () => {}, apicIds: [1, 1] })).to.throw(RangeError);
    expect(() => a.get(2)).to.throw(RangeError);
  });
});

describe('LAPIC: priorities, acknowledge and EOI', () => {
  it('computes PPR from TPR and the highest in-service vector', () => {
    const { set } = rig(1);
    enableAll(set);
    const l = set.get(0);
    set.deliver(fixed(0, 0x55));
    expect(l.acknowledge()).to.equal(0x55);
    l.write(LapicReg.TPR, 4, 0x33);
    expect(l.read(LapicReg.PPR, 4)).to.equal(0x50); // ISRV class wins, low nibble cleared
    l.write(LapicReg.TPR, 4, 0x5a);
    expect(l.read(LapicReg.PPR, 4)).to.equal(0x5a); // equal classes: TPR
    l.write(LapicReg.TPR, 4, 0x67);
    expect(l.read(LapicReg.PPR, 4)).to.equal(0x67);
    l.write(LapicReg.EOI, 4, 0);
    l.write(LapicReg.TPR, 4, 0x0f);
    expect(l.read(LapicReg.PPR, 4)).to.equal(0x0f);
  });

  it('holds back vectors whose priority class is not above PPR', () => {
    const { set } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.write(LapicReg.TPR, 4, 0x50);
    set.deliver(fixed(0, 0x5f));
    expect(l.pendingVector()).to.equal(-1);
    expect(l.hasPendingInterrupt()).to.equal(false);
    set.deliver(fixed(0, 0x60));
    expect(l.pendingVector()).to.equal(0x60);
    // CR8 is TPR[7:4].
    l.setCr8(6);
    expect(l.read(LapicReg.TPR, 4)).to.equal(0x60);
    expect(l.cr8()).to.equal(6);
    expect(l.pendingVector()).to.equal(-1);
    l.setCr8(0);
    expect(l.pendingVector()).to.equal(0x60);
  });

  it('moves the highest pending vector from IRR to ISR on acknowledge', () => {
    const { set } = rig(1);
    enableAll(set);
    const l = set.get(0);
    set.deliver(fixed(0, 0x31));
    set.deliver(fixed(0, 0xe2));
    expect(irrHas(l, 0x31) && irrHas(l, 0xe2)).to.equal(true);
    expect(l.acknowledge()).to.equal(0xe2);
    expect(irrHas(l, 0xe2)).to.equal(false);
    expect(isrHas(l, 0xe2)).to.equal(true);
    expect(irrHas(l, 0x31)).to.equal(true);
  });

  it('nests interrupts and retires them highest first on EOI', () => {
    const { set } = rig(1);
    enableAll(set);
    const l = set.get(0);
    set.deliver(fixed(0, 0x40));
    expect(l.acknowledge()).to.equal(0x40);
    set.deliver(fixed(0, 0x80));
    expect(l.pendingVector()).to.equal(0x80); // higher class preempts
    expect(l.acknowledge()).to.equal(0x80);
    set.deliver(fixed(0, 0x45));
    expect(l.pendingVector()).to.equal(-1); // below the in-service 0x80
    l.write(LapicReg.EOI, 4, 0);
    expect(isrHas(l, 0x80)).to.equal(false);
    expect(isrHas(l, 0x40)).to.equal(true);
    expect(l.pendingVector()).to.equal(-1); // same class as the in-service 0x40
    l.write(LapicReg.EOI, 4, 0);
    expect(isrHas(l, 0x40)).to.equal(false);
    expect(l.acknowledge()).to.equal(0x45);
    l.eoi();
    l.eoi(); // EOI with nothing in service is ignored
    expect(l.read(LapicReg.PPR, 4)).to.equal(0);
  });

  it('returns the spurious vector when nothing is deliverable, leaving ISR alone', () => {
    const { set } = rig(1);
    enableAll(set);
    const l = set.get(0);
    expect(l.acknowledge()).to.equal(0xff);
    l.write(LapicReg.SVR, 4, 0x13f);
    expect(l.acknowledge()).to.equal(0x3f);
    l.write(LapicReg.TPR, 4, 0xf0);
    set.deliver(fixed(0, 0x70));
    expect(l.acknowledge()).to.equal(0x3f); // went away (masked by TPR) since it was requested
    for (let w = 0; w < 8; w++) expect(l.read(LapicReg.ISR + w * 16, 4)).to.equal(0);
    expect(irrHas(l, 0x70)).to.equal(true);
  });

  it('broadcasts the EOI of level-triggered vectors only', () => {
    const { set, eois } = rig(2);
    enableAll(set);
    const l = set.get(1);
    set.deliver(fixed(1, 0x30, { levelTriggered: true }));
    expect(tmrHas(l, 0x30)).to.equal(true);
    set.deliver(fixed(1, 0x90));
    expect(tmrHas(l, 0x90)).to.equal(false);
    expect(service(l)).to.equal(0x90);
    expect(eois).to.deep.equal([]);
    expect(service(l)).to.equal(0x30);
    expect(eois).to.deep.equal([0x30]);
    // TMR records the trigger mode of the latest acceptance.
    set.deliver(fixed(1, 0x30));
    expect(tmrHas(l, 0x30)).to.equal(false);
    service(l);
    expect(eois).to.deep.equal([0x30]);
  });

  it('coalesces an edge interrupt that is already pending and reports it', () => {
    const { set, woken } = rig(2);
    enableAll(set);
    expect(set.deliver(fixed(1, 0x41))).to.equal(1);
    expect(set.deliver(fixed(1, 0x41))).to.equal(0);
    expect(woken).to.deep.equal([1]);
    expect(set.get(1).acknowledge()).to.equal(0x41);
    expect(set.deliver(fixed(1, 0x41))).to.equal(1); // in service, so IRR can hold another
    expect(woken).to.deep.equal([1, 1]);
  });
});

describe('LAPIC: destinations', () => {
  it('delivers physical and broadcast messages and wakes each target', () => {
    const { set, woken } = rig(4);
    enableAll(set);
    expect(set.deliver(fixed(2, 0x50))).to.equal(1);
    expect(holders(set, 0x50)).to.deep.equal([2]);
    expect(set.deliver(fixed(0xff, 0x51))).to.equal(4);
    expect(holders(set, 0x51)).to.deep.equal([0, 1, 2, 3]);
    expect(set.deliver(fixed(9, 0x52))).to.equal(0);
    expect(woken).to.deep.equal([2, 0, 1, 2, 3]);
  });

  it('routes by configured APIC IDs and by guest-written xAPIC IDs', () => {
    const { set } = rig(4, { apicIds: [10, 20, 30, 40] });
    enableAll(set);
    set.deliver(fixed(30, 0x50));
    expect(holders(set, 0x50)).to.deep.equal([2]);
    set.get(1).write(LapicReg.ID, 4, 0x07000000);
    expect(set.get(1).read(LapicReg.ID, 4)).to.equal(0x07000000);
    set.deliver(fixed(7, 0x51));
    set.deliver(fixed(20, 0x52));
    expect(holders(set, 0x51)).to.deep.equal([1]);
    expect(holders(set, 0x52)).to.deep.equal([]);
    set.deliver(fixed(40, 0x53));
    expect(holders(set, 0x53)).to.deep.equal([3]);
  });

  it('decodes flat logical destinations with multi-bit masks', () => {
    const { set } = rig(4);
    enableAll(set);
    for (let i = 0; i < 4; i++) set.get(i).write(LapicReg.LDR, 4, (1 << i) << 24);
    expect(set.deliver(fixed(0b0101, 0x60, { logical: true }))).to.equal(2);
    expect(holders(set, 0x60)).to.deep.equal([0, 2]);
    set.deliver(fixed(0b1000, 0x61, { logical: true }));
    expect(holders(set, 0x61)).to.deep.equal([3]);
    set.deliver(fixed(0xff, 0x62, { logical: true }));
    expect(holders(set, 0x62)).to.deep.equal([0, 1, 2, 3]);
    set.deliver(fixed(0b10000, 0x63, { logical: true }));
    expect(holders(set, 0x63)).to.deep.equal([]);
  });

  it('decodes cluster logical destinations', () => {
    const { set } = rig(4);
    enableAll(set);
    const ldrs = [0x11, 0x12, 0x21, 0x22];
    for (let i = 0; i < 4; i++) {
      set.get(i).write(LapicReg.DFR, 4, 0x0fffffff);
      set.get(i).write(LapicReg.LDR, 4, ldrs[i]! << 24);
    }
    set.deliver(fixed(0x13, 0x60, { logical: true }));
    expect(holders(set, 0x60)).to.deep.equal([0, 1]);
    set.deliver(fixed(0x22, 0x61, { logical: true }));
    expect(holders(set, 0x61)).to.deep.equal([3]);
    set.deliver(fixed(0x32, 0x62, { logical: true }));
    expect(holders(set, 0x62)).to.deep.equal([]);
    set.deliver(fixed(0xff, 0x63, { logical: true }));
    expect(holders(set, 0x63)).to.deep.equal([0, 1, 2, 3]);
  });

  it('sends IPIs from the ICR with every shorthand', () => {
    const { set, woken } = rig(4);
    enableAll(set);
    const src = set.get(1);
    icr(src, 0x70, 3); // fixed, physical, no shorthand
    expect(holders(set, 0x70)).to.deep.equal([3]);
    icr(src, 0x71 | (Shorthand.Self << 18), 3);
    expect(holders(set, 0x71)).to.deep.equal([1]);
    icr(src, 0x72 | (Shorthand.AllIncludingSelf << 18));
    expect(holders(set, 0x72)).to.deep.equal([0, 1, 2, 3]);
    icr(src, 0x73 | (Shorthand.AllExcludingSelf << 18));
    expect(holders(set, 0x73)).to.deep.equal([0, 2, 3]);
    for (let i = 0; i < 4; i++) set.get(i).write(LapicReg.LDR, 4, (1 << i) << 24);
    icr(src, 0x74 | (1 << 11), 0b0110); // logical
    expect(holders(set, 0x74)).to.deep.equal([1, 2]);
    // Delivery is immediate: delivery status (bit 12) always reads 0.
    expect(src.read(LapicReg.ICR_LO, 4)).to.equal(0x74 | (1 << 11));
    expect(src.read(LapicReg.ICR_HI, 4)).to.equal(0x06000000);
    expect(woken.length).to.equal(1 + 1 + 4 + 3 + 2);
  });

  it('decodes x2APIC physical and cluster destinations with IDs above 255', () => {
    const { set } = rig(300);
    enableAll(set);
    for (let i = 0; i < 300; i++) toX2apic(set.get(i));
    const wide = { x2apic: true } as const;
    expect(set.get(290).readMsr(0x802)).to.equal(290n);
    expect(set.get(290).readMsr(0x80d)).to.equal(BigInt((18 << 16) | (1 << 2)));
    expect(x2apicLogicalId(290)).to.equal((18 << 16) | 4);
    set.deliver(fixed(299, 0x50, wide));
    expect(holders(set, 0x50)).to.deep.equal([299]);
    set.deliver(fixed(256, 0x51, wide));
    expect(holders(set, 0x51)).to.deep.equal([256]);
    set.deliver(fixed(0, 0x52, wide));
    expect(holders(set, 0x52)).to.deep.equal([0]);
    expect(set.deliver(fixed(0xffffffff, 0x53, wide))).to.equal(300);
    set.deliver(fixed(0xff, 0x54, wide)); // not a broadcast with 32-bit IDs
    expect(holders(set, 0x54)).to.deep.equal([255]);
    set.deliver(fixed((18 << 16) | 0b101, 0x55, { ...wide, logical: true }));
    expect(holders(set, 0x55)).to.deep.equal([288, 290]);
    set.deliver(fixed((1 << 16) | 0x8001, 0x56, { ...wide, logical: true }));
    expect(holders(set, 0x56)).to.deep.equal([16, 31]);
    set.deliver(fixed(0xffffffff, 0x57, { ...wide, logical: true }));
    expect(holders(set, 0x57).length).to.equal(300);
    // An 8-bit IOAPIC-style broadcast still reaches x2APIC targets (as in KVM).
    expect(set.deliver(fixed(0xff, 0x58))).to.equal(300);
  });

  it('sends x2APIC IPIs through the 64-bit ICR MSR and SELF IPI', () => {
    const { set } = rig(300);
    enableAll(set);
    for (let i = 0; i < 300; i++) toX2apic(set.get(i));
    const src = set.get(3);
    const cmd = (277n << 32n) | 0x66n;
    expect(src.writeMsr(0x830, cmd)).to.equal(true);
    expect(src.readMsr(0x830)).to.equal(cmd);
    expect(holders(set, 0x66)).to.deep.equal([277]);
    expect(src.writeMsr(0x830, (((17n << 16n) | 3n) << 32n) | 0x67n | (1n << 11n))).to.equal(true);
    expect(holders(set, 0x67)).to.deep.equal([272, 273]);
    expect(src.writeMsr(0x830, (0xffffffffn << 32n) | 0x68n | (3n << 18n))).to.equal(true);
    expect(holders(set, 0x68).length).to.equal(299);
    expect(src.writeMsr(0x83f, 0x69n)).to.equal(true);
    expect(holders(set, 0x69)).to.deep.equal([3]);
  });

  it('picks the lowest arbitration priority for lowest-priority delivery, fairly on ties', () => {
    const { set } = rig(4);
    enableAll(set);
    const tprs = [0x20, 0x10, 0x30, 0x10];
    tprs.forEach((t, i) => set.get(i).write(LapicReg.TPR, 4, t));
    const got = [0, 0, 0, 0];
    for (let n = 0; n < 12; n++) {
      expect(set.deliver(fixed(0xff, 0x50, { deliveryMode: DeliveryMode.LowestPriority }))).to.equal(1);
      const [target] = holders(set, 0x50);
      got[target!]!++;
      service(set.get(target!));
    }
    expect(got).to.deep.equal([0, 6, 0, 6]);
    // IRRV and ISRV raise the arbitration priority.
    set.deliver(fixed(1, 0x45));
    expect(set.get(1).read(LapicReg.APR, 4)).to.equal(0x40);
    set.get(3).write(LapicReg.SVR, 4, 0xff); // software-disabled: not a candidate
    for (let i = 0; i < 4; i++) set.get(i).write(LapicReg.LDR, 4, (1 << i) << 24);
    set.deliver(fixed(0b1010, 0x51, { deliveryMode: DeliveryMode.LowestPriority, logical: true }));
    expect(holders(set, 0x51)).to.deep.equal([1]);
    set.deliver(fixed(0b1111, 0x52, { deliveryMode: DeliveryMode.LowestPriority, logical: true }));
    expect(holders(set, 0x52)).to.deep.equal([0]);
  });

  it('skips globally disabled APICs', () => {
    const { set } = rig(3);
    enableAll(set);
    expect(set.get(1).writeMsr(MSR_IA32_APIC_BASE, BigInt(LAPIC_DEFAULT_BASE))).to.equal(true);
    expect(set.deliver(fixed(0xff, 0x50))).to.equal(2);
    expect(set.deliver(fixed(1, 0x51))).to.equal(0);
    const nmi = fixed(1, 0, { deliveryMode: DeliveryMode.NMI });
    expect(set.deliver(nmi)).to.equal(0);
    expect(set.get(1).pendingVector()).to.equal(-1);
  });
});

describe('LAPIC: NMI, INIT, SIPI, SMI and ExtINT', () => {
  it('records NMI/INIT/SIPI as events and ignores INIT level de-assert', () => {
    const { set, woken } = rig(4);
    enableAll(set);
    const bsp = set.get(0);
    const ap = set.get(2);
    icr(bsp, 0x400, 2); // NMI
    expect(ap.takeEvents()).to.equal(LapicEvent.NMI);
    expect(ap.takeEvents()).to.equal(0);
    icr(bsp, 0x500 | (1 << 14) | (1 << 15), 2); // INIT assert, level
    icr(bsp, 0x500 | (1 << 15) | (Shorthand.AllIncludingSelf << 18)); // INIT de-assert
    icr(bsp, 0x69a, 2); // StartUp, page 0x9A
    icr(bsp, 0x69a, 2); // the second SIPI coalesces
    expect(ap.takeEvents()).to.equal(LapicEvent.INIT | LapicEvent.SIPI);
    expect(ap.sipiVector()).to.equal(0x9a);
    for (let i = 0; i < 4; i++) if (i !== 2) expect(set.get(i).takeEvents(), `vCPU ${i}`).to.equal(0);
    expect(woken).to.deep.equal([2, 2, 2]);
    const smi = fixed(0xff, 0, { deliveryMode: DeliveryMode.SMI });
    expect(set.deliver(smi)).to.equal(4);
    expect(ap.takeEvents()).to.equal(LapicEvent.SMI);
    // NMI is accepted even while software-disabled; fixed interrupts are not.
    ap.write(LapicReg.SVR, 4, 0xff);
    expect(set.deliver(fixed(2, 0x40))).to.equal(0);
    expect(set.deliver(fixed(2, 0, { deliveryMode: DeliveryMode.NMI }))).to.equal(1);
    expect(set.deliver(fixed(2, 0, { deliveryMode: DeliveryMode.NMI }))).to.equal(0);
    expect(ap.takeEvents()).to.equal(LapicEvent.NMI);
  });

  it('latches ExtINT messages until the PIC vector is taken', () => {
    const { set } = rig(2);
    const l = set.get(1);
    expect(l.extIntPending()).to.equal(false);
    expect(set.deliver(fixed(1, 0, { deliveryMode: DeliveryMode.ExtINT }))).to.equal(1);
    expect(l.extIntPending()).to.equal(true);
    expect(l.hasPendingInterrupt()).to.equal(true);
    expect(l.takeEvents()).to.equal(0);
    expect(l.extIntPending()).to.equal(true);
    l.acknowledgeExtInt();
    expect(l.extIntPending()).to.equal(false);
  });

  it('resets registers on INIT but keeps the ID, base and mode', () => {
    const { set } = rig(2, { apicIds: [0, 0x42] });
    enableAll(set);
    const l = set.get(1);
    l.write(LapicReg.TPR, 4, 0x30);
    l.write(LapicReg.LDR, 4, 0x01000000);
    l.write(LapicReg.LVT_LINT1, 4, 0x400);
    l.write(LapicReg.TIMER_INITIAL, 4, 1000);
    set.deliver(fixed(0x42, 0x80));
    l.acknowledge();
    set.deliver(fixed(0x42, 0x90));
    l.resetForInit();
    expect(l.read(LapicReg.ID, 4)).to.equal(0x42000000);
    expect(l.read(LapicReg.TPR, 4)).to.equal(0);
    expect(l.read(LapicReg.LDR, 4)).to.equal(0);
    expect(l.read(LapicReg.SVR, 4)).to.equal(0xff);
    expect(l.read(LapicReg.LVT_LINT1, 4)).to.equal(0x10000);
    expect(l.read(LapicReg.TIMER_INITIAL, 4)).to.equal(0);
    expect(l.nextDeadlineNs()).to.equal(Infinity);
    expect(isrHas(l, 0x80) || irrHas(l, 0x90)).to.equal(false);
    expect(l.readMsr(MSR_IA32_APIC_BASE)).to.equal(msrValue(LAPIC_DEFAULT_BASE | APIC_BASE_EN));
    toX2apic(l);
    l.write(LapicReg.SVR, 4, 0x1ff); // ignored: no MMIO in x2APIC mode
    expect(l.writeMsr(0x80f, 0x1ffn)).to.equal(true);
    l.resetForInit();
    expect(l.mode).to.equal('x2apic');
    expect(l.readMsr(0x802)).to.equal(0x42n);
    expect(l.readMsr(0x80d)).to.equal(BigInt(x2apicLogicalId(0x42)));
    expect(l.readMsr(0x80f)).to.equal(0xffn);
  });
});

describe('LAPIC: RESET', () => {
  it('restores the power-up state, mode and pending events included', () => {
    const { set } = rig(2);
    const l = set.get(1);
    toX2apic(l);
    expect(l.writeMsr(0x80f, 0x1ffn)).to.equal(true);
    expect(set.deliver(fixed(0xffffffff, 0, { deliveryMode: DeliveryMode.NMI, x2apic: true }))).to.equal(2);
    l.reset();
    expect(l.mode).to.equal('xapic');
    expect(l.readMsr(MSR_IA32_APIC_BASE)).to.equal(msrValue(LAPIC_DEFAULT_BASE | APIC_BASE_EN));
    expect(l.read(LapicReg.SVR, 4)).to.equal(0xff);
    expect(l.read(LapicReg.ID, 4)).to.equal(1 << 24);
    expect(l.takeEvents()).to.equal(0);
    expect(set.get(0).takeEvents()).to.equal(LapicEvent.NMI);
  });
});

describe('LAPIC: LINT pins', () => {
  it('passes the 8259 INTR through LINT0 in ExtINT mode (virtual wire on the BSP)', () => {
    const { set, woken } = rig(2);
    const bsp = set.get(0);
    bsp.setLint(0, true);
    expect(bsp.extIntPending()).to.equal(true);
    expect(woken).to.deep.equal([0]);
    bsp.setLint(0, true);
    expect(woken).to.deep.equal([0]);
    bsp.setLint(0, false);
    expect(bsp.extIntPending()).to.equal(false);
    // An AP powers up masked.
    set.get(1).setLint(0, true);
    expect(set.get(1).extIntPending()).to.equal(false);
    set.get(1).write(LapicReg.SVR, 4, 0x1ff);
    set.get(1).write(LapicReg.LVT_LINT0, 4, 0x700);
    expect(set.get(1).extIntPending()).to.equal(true);
    set.get(1).write(LapicReg.LVT_LINT0, 4, 0x10700);
    expect(set.get(1).extIntPending()).to.equal(false);
  });

  it('raises NMI on rising edges of LINT1', () => {
    const { set } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.write(LapicReg.LVT_LINT1, 4, 0x400);
    l.setLint(1, true);
    l.setLint(1, true);
    expect(l.takeEvents()).to.equal(LapicEvent.NMI);
    l.setLint(1, true);
    expect(l.takeEvents()).to.equal(0);
    l.setLint(1, false);
    l.setLint(1, true);
    expect(l.takeEvents()).to.equal(LapicEvent.NMI);
    // Active-low polarity: the falling edge asserts.
    l.write(LapicReg.LVT_LINT1, 4, 0x400 | (1 << 13));
    l.setLint(1, false);
    expect(l.takeEvents()).to.equal(LapicEvent.NMI);
    l.write(LapicReg.LVT_LINT1, 4, 0x10400);
    l.setLint(1, true);
    l.setLint(1, false);
    expect(l.takeEvents()).to.equal(0);
  });

  it('treats LINT0 as INTR and LINT1 as NMI while globally disabled', () => {
    const { set } = rig(2);
    const l = set.get(1);
    expect(l.writeMsr(MSR_IA32_APIC_BASE, BigInt(LAPIC_DEFAULT_BASE))).to.equal(true);
    expect(l.mode).to.equal('disabled');
    l.setLint(0, true);
    expect(l.extIntPending()).to.equal(true);
    l.setLint(1, true);
    expect(l.takeEvents()).to.equal(LapicEvent.NMI);
    expect(l.read(LapicReg.VERSION, 4)).to.equal(0); // the page is gone
  });

  it('delivers fixed LINT interrupts, edge and level (with remote IRR and EOI re-delivery)', () => {
    const { set, eois, woken } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.write(LapicReg.LVT_LINT1, 4, 0x41);
    l.setLint(1, true);
    expect(l.acknowledge()).to.equal(0x41);
    l.eoi();
    expect(eois).to.deep.equal([]);
    l.write(LapicReg.LVT_LINT0, 4, 0x52 | (1 << 15)); // fixed, level
    l.setLint(0, true);
    expect(l.read(LapicReg.LVT_LINT0, 4)).to.equal(0x52 | (1 << 15) | (1 << 14));
    expect(tmrHas(l, 0x52)).to.equal(true);
    expect(l.acknowledge()).to.equal(0x52);
    woken.length = 0;
    l.eoi(); // still asserted: delivered again
    expect(eois).to.deep.equal([0x52]);
    expect(woken).to.deep.equal([0]);
    expect(l.pendingVector()).to.equal(0x52);
    expect(l.acknowledge()).to.equal(0x52);
    l.setLint(0, false);
    l.eoi();
    expect(l.pendingVector()).to.equal(-1);
    expect(l.read(LapicReg.LVT_LINT0, 4)).to.equal(0x52 | (1 << 15));
  });

  it('forwards LINT0 to the PIC only while unmasked and in ExtINT mode', () => {
    const { set } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.setLint(0, true);
    expect(l.extIntPending()).to.equal(true);
    l.write(LapicReg.LVT_LINT0, 4, 0x10700);
    expect(l.extIntPending()).to.equal(false);
  });
});

describe('LAPIC: timer', () => {
  it('counts down in one-shot mode and fires once', () => {
    const { set, clock, woken } = rig(2);
    enableAll(set);
    const l = set.get(1);
    l.write(LapicReg.LVT_TIMER, 4, 0x40);
    l.write(LapicReg.TIMER_DIVIDE, 4, 0xb); // divide by 1
    const t0 = clock.nowNs();
    l.write(LapicReg.TIMER_INITIAL, 4, 1000);
    expect(l.nextDeadlineNs()).to.equal(t0 + 1000);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(1000);
    clock.advance(250);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(750);
    clock.advance(749);
    l.pollTimer();
    expect(l.pendingVector()).to.equal(-1);
    clock.advance(1);
    l.pollTimer();
    expect(l.pendingVector()).to.equal(0x40);
    expect(woken).to.deep.equal([1]);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(0);
    expect(l.nextDeadlineNs()).to.equal(Infinity);
    service(l);
    clock.advance(10_000);
    l.pollTimer();
    expect(l.pendingVector()).to.equal(-1);
  });

  it('supports every divide value', () => {
    const { set, clock } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.write(LapicReg.LVT_TIMER, 4, 0x40);
    const table: Array<[number, number]> = [
      [0x0, 2], [0x1, 4], [0x2, 8], [0x3, 16], [0x8, 32], [0x9, 64], [0xa, 128], [0xb, 1],
    ];
    for (const [code, div] of table) {
      expect(timerDivisor(code)).to.equal(div);
      l.write(LapicReg.TIMER_DIVIDE, 4, code);
      expect(l.read(LapicReg.TIMER_DIVIDE, 4)).to.equal(code);
      const t0 = clock.nowNs();
      l.write(LapicReg.TIMER_INITIAL, 4, 100);
      expect(l.nextDeadlineNs(), `divide ${div}`).to.equal(t0 + 100 * div);
      clock.advance(10 * div);
      expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(90);
      clock.advance(90 * div);
      l.pollTimer();
      expect(l.acknowledge(), `divide ${div}`).to.equal(0x40);
      l.eoi();
    }
  });

  it('keeps the current count when the divider changes mid-count', () => {
    const { set, clock } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.write(LapicReg.LVT_TIMER, 4, 0x40);
    l.write(LapicReg.TIMER_DIVIDE, 4, 0xb);
    l.write(LapicReg.TIMER_INITIAL, 4, 1000);
    clock.advance(400);
    l.write(LapicReg.TIMER_DIVIDE, 4, 0x0); // now 2 ns per tick
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(600);
    expect(l.nextDeadlineNs()).to.equal(clock.nowNs() + 1200);
  });

  it('reloads in periodic mode and catches up with one interrupt per poll', () => {
    const { set, clock } = rig(1);
    enableAll(set);
    const l = set.get(0);
    const P = 1_000_000; // 1 ms: above the 200 us floor
    l.write(LapicReg.LVT_TIMER, 4, 0x40 | (1 << 17));
    l.write(LapicReg.TIMER_DIVIDE, 4, 0xb);
    const t0 = clock.nowNs();
    l.write(LapicReg.TIMER_INITIAL, 4, P);
    clock.advance(P);
    l.pollTimer();
    expect(service(l)).to.equal(0x40);
    expect(l.nextDeadlineNs()).to.equal(t0 + 2 * P);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(P);
    clock.advance(0.3 * P);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(0.7 * P);
    clock.advance(3.2 * P); // t0 + 4.5 P: three periods missed
    l.pollTimer();
    expect(service(l)).to.equal(0x40);
    expect(l.nextDeadlineNs()).to.equal(t0 + 5 * P);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(0.5 * P);
    l.pollTimer();
    expect(l.pendingVector()).to.equal(-1);
    // Initial count 0 stops it.
    l.write(LapicReg.TIMER_INITIAL, 4, 0);
    expect(l.nextDeadlineNs()).to.equal(Infinity);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(0);
  });

  it('runs a periodic timer no faster than every 200 us, as KVM does, so a tiny count cannot starve the vCPU; one-shot counts are exact', () => {
    const { set, clock } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.write(LapicReg.LVT_TIMER, 4, 0x40 | (1 << 17));
    l.write(LapicReg.TIMER_DIVIDE, 4, 0xb);
    const t0 = clock.nowNs();
    l.write(LapicReg.TIMER_INITIAL, 4, 1); // 1 ns asked for
    expect(l.nextDeadlineNs()).to.equal(t0 + MIN_PERIODIC_NS);
    let fired = 0;
    for (let i = 0; i < 1000; i++) {
      clock.advance(1000); // 1 ms in 1 us steps
      l.pollTimer();
      if (l.pendingVector() === 0x40) {
        fired++;
        service(l);
      }
    }
    expect(fired).to.equal(1_000_000 / MIN_PERIODIC_NS);
    expect(l.nextDeadlineNs()).to.equal(t0 + 1_000_000 + MIN_PERIODIC_NS);
    // Switching to one-shot: the next count is taken as given.
    l.write(LapicReg.LVT_TIMER, 4, 0x41);
    const t1 = clock.nowNs();
    l.write(LapicReg.TIMER_INITIAL, 4, 10);
    expect(l.nextDeadlineNs()).to.equal(t1 + 10);
  });

  it('counts but does not interrupt while masked', () => {
    const { set, clock } = rig(1);
    enableAll(set);
    const l = set.get(0);
    const P = 1_000_000;
    l.write(LapicReg.LVT_TIMER, 4, 0x10040 | (1 << 17)); // masked periodic
    l.write(LapicReg.TIMER_DIVIDE, 4, 0xb);
    const t0 = clock.nowNs();
    l.write(LapicReg.TIMER_INITIAL, 4, P);
    expect(l.nextDeadlineNs()).to.equal(Infinity);
    clock.advance(2.5 * P);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(0.5 * P);
    l.pollTimer();
    expect(l.pendingVector()).to.equal(-1);
    l.write(LapicReg.LVT_TIMER, 4, 0x40 | (1 << 17)); // unmask: the missed expiries stay missed
    expect(l.pendingVector()).to.equal(-1);
    expect(l.nextDeadlineNs()).to.equal(t0 + 3 * P);
    clock.advance(0.5 * P);
    l.pollTimer();
    expect(l.pendingVector()).to.equal(0x40);
    // Software disable masks the timer too.
    l.write(LapicReg.SVR, 4, 0xff);
    expect(l.read(LapicReg.LVT_TIMER, 4)).to.equal(0x10040 | (1 << 17));
    l.write(LapicReg.LVT_TIMER, 4, 0x40 | (1 << 17));
    expect(l.read(LapicReg.LVT_TIMER, 4) & 0x10000).to.equal(0x10000);
  });

  it('implements TSC-deadline mode with a TscSource', () => {
    let ticks = 5_000_000;
    const tsc: TscSource = { khz: 2_000_000, nowTicks: () => ticks }; // 2 GHz
    const { set, clock, timerChanges } = rig(1, { tsc });
    enableAll(set);
    const l = set.get(0);
    // Outside TSC-deadline mode the MSR reads 0 and ignores writes.
    expect(l.writeMsr(MSR_IA32_TSC_DEADLINE, 123n)).to.equal(true);
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).to.equal(0n);
    l.write(LapicReg.LVT_TIMER, 4, 0x40 | (2 << 17));
    expect(l.read(LapicReg.LVT_TIMER, 4)).to.equal(0x40 | (2 << 17));
    const t0 = clock.nowNs();
    timerChanges.length = 0;
    expect(l.writeMsr(MSR_IA32_TSC_DEADLINE, BigInt(ticks + 4000))).to.equal(true);
    expect(timerChanges).to.deep.equal([0]);
    expect(l.nextDeadlineNs()).to.equal(t0 + 2000);
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).to.equal(BigInt(ticks + 4000));
    l.write(LapicReg.TIMER_INITIAL, 4, 50); // ignored in TSC-deadline mode
    expect(l.read(LapicReg.TIMER_INITIAL, 4)).to.equal(0);
    expect(l.read(LapicReg.TIMER_CURRENT, 4)).to.equal(0);
    clock.advance(2000);
    ticks += 4000;
    l.pollTimer();
    expect(service(l)).to.equal(0x40);
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).to.equal(0n);
    expect(l.nextDeadlineNs()).to.equal(Infinity);
    // A deadline in the past fires at once.
    l.writeMsr(MSR_IA32_TSC_DEADLINE, BigInt(ticks - 10));
    expect(l.pendingVector()).to.equal(0x40);
    service(l);
    // Leaving TSC-deadline mode disarms.
    l.writeMsr(MSR_IA32_TSC_DEADLINE, BigInt(ticks + 10_000));
    l.write(LapicReg.LVT_TIMER, 4, 0x40);
    expect(l.nextDeadlineNs()).to.equal(Infinity);
    l.write(LapicReg.LVT_TIMER, 4, 0x40 | (2 << 17));
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).to.equal(0n);
  });

  it('has no TSC-deadline mode without a TscSource', () => {
    const { set } = rig(1);
    const l = set.get(0);
    expect(l.readMsr(MSR_IA32_TSC_DEADLINE)).to.equal(undefined);
    expect(l.writeMsr(MSR_IA32_TSC_DEADLINE, 1n)).to.equal(false);
    l.write(LapicReg.LVT_TIMER, 4, 0x40 | (2 << 17));
    expect(l.read(LapicReg.LVT_TIMER, 4)).to.equal(0x10040); // still masked: SVR disabled
  });

  it('reports timer reprogramming', () => {
    const { set, timerChanges } = rig(2);
    enableAll(set);
    timerChanges.length = 0;
    set.get(1).write(LapicReg.TIMER_INITIAL, 4, 5);
    set.get(1).write(LapicReg.TIMER_DIVIDE, 4, 1);
    set.get(1).write(LapicReg.LVT_TIMER, 4, 0x30);
    expect(timerChanges).to.deep.equal([1, 1, 1]);
  });
});

describe('LAPIC: IA32_APIC_BASE and x2APIC MSRs', () => {
  const base = BigInt(LAPIC_DEFAULT_BASE);
  const EN = BigInt(APIC_BASE_EN);
  const EXTD = BigInt(APIC_BASE_EXTD);

  it('allows only the legal state transitions', () => {
    const { set } = rig(2);
    const l = set.get(1);
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EXTD)).to.equal(false); // invalid EN=0 EXTD=1
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN | 1n)).to.equal(false); // reserved bit 0
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN | (1n << 9n))).to.equal(false); // reserved bit 9
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN | (1n << 60n))).to.equal(false); // above MAXPHYADDR
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN | EXTD)).to.equal(true); // xAPIC -> x2APIC
    expect(l.mode).to.equal('x2apic');
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN)).to.equal(false); // x2APIC -> xAPIC
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base)).to.equal(true); // x2APIC -> disabled
    expect(l.mode).to.equal('disabled');
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN | EXTD)).to.equal(false); // disabled -> x2APIC
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN)).to.equal(true); // disabled -> xAPIC
    expect(l.mode).to.equal('xapic');
    // The BSP flag is read-only.
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN | BigInt(APIC_BASE_BSP))).to.equal(true);
    expect(l.readMsr(MSR_IA32_APIC_BASE)).to.equal(base | EN);
    expect(set.get(0).writeMsr(MSR_IA32_APIC_BASE, base | EN)).to.equal(true);
    expect(set.get(0).readMsr(MSR_IA32_APIC_BASE)).to.equal(base | EN | BigInt(APIC_BASE_BSP));
    expect(isLapicMsr(0x1b) && isLapicMsr(0x6e0) && isLapicMsr(0x8ff) && !isLapicMsr(0x900)).to.equal(true);
  });

  it('resets the registers when the APIC is disabled, keeping the ID', () => {
    const { set } = rig(2, { apicIds: [0, 0x1234] });
    const l = set.get(1);
    toX2apic(l);
    expect(l.writeMsr(0x808, 0x70n)).to.equal(true);
    expect(l.writeMsr(0x80f, 0x1ffn)).to.equal(true);
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base)).to.equal(true);
    expect(l.writeMsr(MSR_IA32_APIC_BASE, base | EN)).to.equal(true);
    expect(l.read(LapicReg.TPR, 4)).to.equal(0);
    expect(l.read(LapicReg.SVR, 4)).to.equal(0xff);
    expect(l.read(LapicReg.ID, 4)).to.equal(0x34000000);
    expect(l.apicId).to.equal(0x1234);
  });

  it('implements the x2APIC MSR interface and its #GP cases', () => {
    const { set, eois } = rig(2);
    const l = set.get(1);
    expect(l.readMsr(0x802)).to.equal(undefined); // not in x2APIC mode
    expect(l.writeMsr(0x808, 0n)).to.equal(false);
    toX2apic(l);
    expect(l.read(LapicReg.VERSION, 4)).to.equal(0); // MMIO page not decoded
    l.write(LapicReg.TPR, 4, 0x20);
    expect(l.readMsr(0x808)).to.equal(0n);
    expect(l.readMsr(0x802)).to.equal(1n);
    expect(l.readMsr(0x803)).to.equal(BigInt(LAPIC_VERSION));
    expect(l.readMsr(0x80d)).to.equal(BigInt(x2apicLogicalId(1)));
    expect(l.writeMsr(0x802, 5n)).to.equal(false); // ID is read-only
    expect(l.writeMsr(0x80d, 5n)).to.equal(false); // LDR is read-only
    for (const msr of [0x809, 0x80c, 0x80e, 0x831, 0x82f, 0x800, 0x840, 0x8ff]) {
      expect(l.readMsr(msr), `read ${msr.toString(16)}`).to.equal(undefined);
      expect(l.writeMsr(msr, 0n), `write ${msr.toString(16)}`).to.equal(false);
    }
    expect(l.readMsr(0x80b)).to.equal(undefined); // EOI is write-only
    expect(l.readMsr(0x83f)).to.equal(undefined); // SELF IPI is write-only
    expect(l.writeMsr(0x80b, 1n)).to.equal(false); // EOI takes only 0
    expect(l.writeMsr(0x828, 1n)).to.equal(false); // ESR takes only 0
    expect(l.writeMsr(0x80f, 1n << 32n)).to.equal(false); // reserved high half
    expect(l.writeMsr(0x820, 0n)).to.equal(false); // IRR is read-only
    expect(l.writeMsr(0x80f, 0x1ffn)).to.equal(true);
    expect(l.writeMsr(0x808, 0x30n)).to.equal(true);
    expect(l.readMsr(0x80a)).to.equal(0x30n);
    expect(l.writeMsr(0x808, 0n)).to.equal(true);
    set.deliver(fixed(1, 0xa5, { x2apic: true, levelTriggered: true }));
    expect(l.readMsr(0x825)).to.equal(1n << 5n); // IRR word 5
    expect(l.readMsr(0x81d)).to.equal(1n << 5n); // TMR word 5
    expect(l.acknowledge()).to.equal(0xa5);
    expect(l.readMsr(0x815)).to.equal(1n << 5n); // ISR word 5
    expect(l.writeMsr(0x80b, 0n)).to.equal(true);
    expect(eois).to.deep.equal([0xa5]);
    expect(l.writeMsr(0x835, 0x700n)).to.equal(true);
    expect(l.readMsr(0x835)).to.equal(0x700n);
    expect(l.writeMsr(0x838, 77n)).to.equal(true);
    expect(l.readMsr(0x838)).to.equal(77n);
    expect(l.readMsr(0x839)).to.equal(77n);
    expect(l.writeMsr(0x83e, 0xbn)).to.equal(true);
    expect(l.readMsr(0x83e)).to.equal(0xbn);
    expect(l.writeMsr(0x828, 0n)).to.equal(true);
    expect(l.readMsr(0x828)).to.equal(0n);
  });
});

describe('LAPIC: errors and software disable', () => {
  it('reports send and receive illegal vectors through ESR and the error LVT', () => {
    const { set } = rig(2);
    enableAll(set);
    const a = set.get(0);
    const b = set.get(1);
    a.write(LapicReg.LVT_ERROR, 4, 0xee);
    icr(a, 0x05, 1); // fixed vector 5: not sent
    expect(a.read(LapicReg.ESR, 4)).to.equal(0); // latched only by a write
    a.write(LapicReg.ESR, 4, 0);
    expect(a.read(LapicReg.ESR, 4)).to.equal(0x20);
    a.write(LapicReg.ESR, 4, 0);
    expect(a.read(LapicReg.ESR, 4)).to.equal(0);
    expect(a.pendingVector()).to.equal(0xee);
    expect(b.pendingVector()).to.equal(-1);
    expect(set.deliver(fixed(1, 0x0f))).to.equal(0); // received with an illegal vector
    b.write(LapicReg.ESR, 4, 0);
    expect(b.read(LapicReg.ESR, 4)).to.equal(0x40);
    expect(b.pendingVector()).to.equal(-1); // error LVT masked
    b.read(0x2f0, 4); // CMCI: not implemented
    b.write(0x400, 4, 1);
    b.write(LapicReg.ESR, 4, 0);
    expect(b.read(LapicReg.ESR, 4)).to.equal(0x80);
  });

  it('refuses fixed interrupts while software-disabled but keeps what is pending', () => {
    const { set } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.write(LapicReg.LVT_LINT1, 4, 0x400);
    set.deliver(fixed(0, 0x70));
    l.write(LapicReg.SVR, 4, 0xff);
    expect(l.read(LapicReg.LVT_LINT1, 4)).to.equal(0x10400);
    l.write(LapicReg.LVT_LINT1, 4, 0x400);
    expect(l.read(LapicReg.LVT_LINT1, 4)).to.equal(0x10400); // masks stick
    expect(set.deliver(fixed(0, 0x71))).to.equal(0);
    expect(l.pendingVector()).to.equal(0x70); // held IRR still reaches the core
    l.write(LapicReg.SVR, 4, 0x1ff);
    expect(l.read(LapicReg.LVT_LINT1, 4)).to.equal(0x10400); // re-enabling does not unmask
    expect(set.deliver(fixed(0, 0x71))).to.equal(1);
  });

  it('raises an error interrupt for an illegal timer vector', () => {
    const { set, clock } = rig(1);
    enableAll(set);
    const l = set.get(0);
    l.write(LapicReg.LVT_ERROR, 4, 0xe0);
    l.write(LapicReg.LVT_TIMER, 4, 0x03);
    l.write(LapicReg.TIMER_DIVIDE, 4, 0xb);
    l.write(LapicReg.TIMER_INITIAL, 4, 10);
    clock.advance(10);
    l.pollTimer();
    expect(l.pendingVector()).to.equal(0xe0);
    l.write(LapicReg.ESR, 4, 0);
    expect(l.read(LapicReg.ESR, 4)).to.equal(0x40);
  });
});
