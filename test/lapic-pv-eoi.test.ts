import { expect } from 'chai';
import { FakeClock } from '../src/sync/clock.js';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { LapicReg, LapicSet, MSR_KVM_PV_EOI_EN, isLapicMsr, lapicSetLayout, type Lapic } from '../src/irqchip/lapic.js';
import { DeliveryMode, Shorthand, type ApicMessage } from '../src/irqchip/types.js';
import type { SavedRecord, SavedState } from '../src/sync/state-layout.js';

/**
 * Paravirtual EOI in the userspace LAPIC model: the MSR, when the guest's
 * word is armed, and how an EOI the guest did through it is completed.
 * The vCPU run loop calls syncPvEoiBeforeEntry before each KVM_RUN and
 * syncPvEoiAfterExit after it; the tests play both sides, the "guest"
 * clearing bit 0 of its word as Linux's kvm_guest_apic_eoi_write does.
 */

const RAM = 0x10000;
const WORD = 0x2040; // the guest's per-CPU flag word

interface Rig {
  set: LapicSet;
  buffer: SharedArrayBuffer;
  ram: GuestMemory;
  lapic: Lapic;
  eois: number[];
  woken: number[];
}

function rig(withRam = true, buffer = LapicSet.allocate(2), ram = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(RAM) }])): Rig {
  const eois: number[] = [];
  const woken: number[] = [];
  const set = new LapicSet(buffer, {
    clock: new FakeClock(1_000_000),
    wake: (v) => woken.push(v),
    eoi: { onEoi: (v) => eois.push(v) },
    guestRam: withRam ? ram : undefined,
  });
  const lapic = set.get(0);
  lapic.write(LapicReg.SVR, 4, 0x1ff);
  return { set, buffer, ram, lapic, eois, woken };
}

function msg(vector: number, level = false): ApicMessage {
  return { vector, deliveryMode: DeliveryMode.Fixed, logical: false, dest: 0, levelTriggered: level, assert: true, shorthand: Shorthand.None, source: -1 };
}

const inService = (l: Lapic, v: number): boolean => ((l.read(LapicReg.ISR + (v >> 5) * 16, 4) >>> (v & 31)) & 1) === 1;
const enable = (l: Lapic, gpa = WORD): boolean => l.writeMsr(MSR_KVM_PV_EOI_EN, BigInt(gpa) | 1n);
const flag = (t: Rig): number => t.ram.readU32(WORD);
/** The guest's EOI routine: take the bit if set, else write the EOI register. */
function guestEoi(t: Rig): 'pv' | 'register' {
  const w = t.ram.readU32(WORD);
  if (w & 1) {
    t.ram.writeU32(WORD, w & ~1);
    return 'pv';
  }
  t.lapic.write(LapicReg.EOI, 4, 0);
  return 'register';
}
/** One interrupt taken: accepted, then (as the run loop does) injected and the entry prepared. */
function take(t: Rig, vector: number, level = false): void {
  t.set.deliver(msg(vector, level));
  expect(t.lapic.acknowledge()).to.equal(vector);
  t.lapic.syncPvEoiBeforeEntry();
}

describe('LAPIC paravirtual EOI (KVM_FEATURE_PV_EOI)', () => {
  describe('MSR_KVM_PV_EOI_EN', () => {
    it('is an APIC MSR, read back as written', () => {
      const t = rig();
      expect(isLapicMsr(MSR_KVM_PV_EOI_EN)).to.equal(true);
      expect(t.lapic.readMsr(MSR_KVM_PV_EOI_EN)).to.equal(0n);
      expect(enable(t.lapic)).to.equal(true);
      expect(t.lapic.readMsr(MSR_KVM_PV_EOI_EN)).to.equal(BigInt(WORD) | 1n);
      expect(t.lapic.pvEoiEnabled()).to.equal(true);
    });

    it('is a #GP on a thread without guest RAM (and so where the VMM does not offer it)', () => {
      const t = rig(false);
      expect(enable(t.lapic)).to.equal(false);
      expect(t.lapic.readMsr(MSR_KVM_PV_EOI_EN)).to.equal(undefined);
    });

    it('refuses a misaligned address or a word outside guest RAM, as KVM does, and changes nothing', () => {
      const t = rig();
      for (const bad of [WORD + 2, WORD + 1 + 2, RAM, RAM - 2, 0x1_0000_0000, 2 ** 60]) {
        expect(t.lapic.writeMsr(MSR_KVM_PV_EOI_EN, BigInt(bad) | 1n), `0x${bad.toString(16)}`).to.equal(false);
      }
      expect(t.lapic.writeMsr(MSR_KVM_PV_EOI_EN, 2n), 'bit 1 while disabled').to.equal(false);
      expect(t.lapic.readMsr(MSR_KVM_PV_EOI_EN)).to.equal(0n);
      expect(t.lapic.pvEoiEnabled()).to.equal(false);
      // The last word of RAM is fine; so is any aligned address while disabled.
      expect(t.lapic.writeMsr(MSR_KVM_PV_EOI_EN, BigInt(RAM - 4) | 1n)).to.equal(true);
      expect(t.lapic.writeMsr(MSR_KVM_PV_EOI_EN, 0x1234_0000_0000n)).to.equal(true);
      expect(t.lapic.pvEoiEnabled()).to.equal(false);
    });

    it('a guest that never enables it gets nothing armed and nothing written to its RAM', () => {
      const t = rig();
      take(t, 0x41);
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(t.ram.read(0, RAM).every((b) => b === 0)).to.equal(true);
      expect(guestEoi(t)).to.equal('register');
      expect(inService(t.lapic, 0x41)).to.equal(false);
      expect(t.lapic.syncPvEoiAfterExit()).to.equal(false);
    });
  });

  describe('edge-triggered vectors', () => {
    it('arms the word for the vector in service; the guest skips the register and the next exit completes the EOI', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      expect(t.lapic.pvEoiArmed()).to.equal(true);
      expect(flag(t)).to.equal(1);
      expect(guestEoi(t)).to.equal('pv');
      // Still in service until the VMM sees the exit.
      expect(inService(t.lapic, 0x41)).to.equal(true);
      expect(t.lapic.syncPvEoiAfterExit()).to.equal(true);
      expect(inService(t.lapic, 0x41)).to.equal(false);
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(t.eois, 'edge: no EOI broadcast').to.deep.equal([]);
      // Nothing in service: nothing to arm.
      t.lapic.syncPvEoiBeforeEntry();
      expect(flag(t)).to.equal(0);
    });

    it('stays armed over exits that happen before the guest reaches its EOI', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      expect(t.lapic.syncPvEoiAfterExit()).to.equal(false);
      t.lapic.syncPvEoiBeforeEntry();
      expect(t.lapic.pvEoiArmed()).to.equal(true);
      expect(flag(t)).to.equal(1);
      expect(inService(t.lapic, 0x41)).to.equal(true);
    });

    it('a guest that writes the EOI register anyway is served, and the bit is taken back at the next entry', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      t.lapic.syncPvEoiAfterExit(); // the MMIO exit of the EOI write
      t.lapic.write(LapicReg.EOI, 4, 0);
      expect(inService(t.lapic, 0x41)).to.equal(false);
      t.lapic.syncPvEoiBeforeEntry();
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(flag(t)).to.equal(0);
    });
  });

  describe('level-triggered vectors', () => {
    it('are never armed: their EOI must reach the IOAPIC', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x61, true);
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(flag(t)).to.equal(0);
      expect(guestEoi(t)).to.equal('register');
      expect(t.eois).to.deep.equal([0x61]);
    });

    it('a vector last accepted edge-triggered is armed again (TMR follows the latest acceptance)', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x61, true);
      guestEoi(t);
      take(t, 0x61, false);
      expect(t.lapic.pvEoiArmed()).to.equal(true);
    });
  });

  describe('nested and pending interrupts', () => {
    it('takes the bit back when a vector arrives in IRR, and arms again only with one vector in service and IRR empty', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      expect(flag(t)).to.equal(1);
      // A higher-priority vector arrives while the guest runs: the wake kicks it out; the exit finds the bit still set.
      t.set.deliver(msg(0x81));
      expect(t.woken).to.include(0);
      expect(t.lapic.syncPvEoiAfterExit()).to.equal(false);
      // The run loop injects 0x81 (nested), then prepares the entry: two vectors in service, no skipping.
      expect(t.lapic.acknowledge()).to.equal(0x81);
      t.lapic.syncPvEoiBeforeEntry();
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(flag(t)).to.equal(0);
      // The inner handler's EOI goes to the register; then only 0x41 is in service: armed again.
      expect(guestEoi(t)).to.equal('register');
      expect(inService(t.lapic, 0x81)).to.equal(false);
      t.lapic.syncPvEoiAfterExit();
      t.lapic.syncPvEoiBeforeEntry();
      expect(t.lapic.pvEoiArmed()).to.equal(true);
      expect(guestEoi(t)).to.equal('pv');
      expect(t.lapic.syncPvEoiAfterExit()).to.equal(true);
      expect(inService(t.lapic, 0x41)).to.equal(false);
    });

    it('does not arm while a lower-priority vector waits in IRR: its EOI must exit so that vector is delivered', () => {
      const t = rig();
      enable(t.lapic);
      t.set.deliver(msg(0x81));
      t.set.deliver(msg(0x41));
      expect(t.lapic.acknowledge()).to.equal(0x81);
      t.lapic.syncPvEoiBeforeEntry();
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(guestEoi(t)).to.equal('register');
      expect(t.lapic.pendingVector()).to.equal(0x41);
    });

    it('does not arm while an ExtINT from the 8259 waits', () => {
      const t = rig();
      enable(t.lapic);
      t.set.deliver(msg(0x41));
      t.lapic.acknowledge();
      t.lapic.setLint(0, true); // the BSP's LINT0 is ExtINT (virtual wire)
      t.lapic.syncPvEoiBeforeEntry();
      expect(t.lapic.pvEoiArmed()).to.equal(false);
    });

    it('completes an EOI the guest already did when the bit has to be taken back', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      expect(guestEoi(t)).to.equal('pv');
      // An entry prepared without the exit sync first (a new vector arrived): the cleared bit still counts.
      t.set.deliver(msg(0x42));
      t.lapic.syncPvEoiBeforeEntry();
      expect(inService(t.lapic, 0x41)).to.equal(false);
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(flag(t)).to.equal(0);
    });
  });

  describe('disable, move, reset', () => {
    it('disabling takes the bit back and stops arming', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      expect(t.lapic.writeMsr(MSR_KVM_PV_EOI_EN, 0n)).to.equal(true);
      expect(flag(t)).to.equal(0);
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(inService(t.lapic, 0x41)).to.equal(true);
      t.lapic.syncPvEoiBeforeEntry();
      expect(flag(t)).to.equal(0);
      expect(guestEoi(t)).to.equal('register');
    });

    it('disabling after the guest cleared the bit completes that EOI', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      guestEoi(t);
      t.lapic.writeMsr(MSR_KVM_PV_EOI_EN, 0n);
      expect(inService(t.lapic, 0x41)).to.equal(false);
    });

    it('moving the word clears the old one and arms the new one', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      expect(enable(t.lapic, 0x3000)).to.equal(true);
      expect(flag(t)).to.equal(0);
      t.lapic.syncPvEoiBeforeEntry();
      expect(t.ram.readU32(0x3000)).to.equal(1);
    });

    it('INIT turns it off and takes the bit back (as KVM resets it)', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      t.lapic.resetForInit();
      expect(t.lapic.readMsr(MSR_KVM_PV_EOI_EN)).to.equal(0n);
      expect(t.lapic.pvEoiArmed()).to.equal(false);
      expect(flag(t)).to.equal(0);
    });

    it('only touches the flag bit of the guest word', () => {
      const t = rig();
      t.ram.writeU32(WORD, 0xabc0);
      enable(t.lapic);
      take(t, 0x41);
      expect(flag(t)).to.equal(0xabc1);
      t.lapic.writeMsr(MSR_KVM_PV_EOI_EN, 0n);
      expect(flag(t)).to.equal(0xabc0);
    });
  });

  describe('snapshots', () => {
    it('an armed APIC saved and loaded into a fresh set completes the guest EOI after restore', () => {
      const t = rig();
      enable(t.lapic);
      take(t, 0x41);
      const saved = JSON.parse(JSON.stringify(LapicSet.save(t.buffer))) as SavedState;
      const fresh = LapicSet.allocate(2);
      LapicSet.load(fresh, saved);
      // Guest RAM travels with the snapshot; the restored vCPU thread gets a view of it.
      const r = rig(true, fresh, t.ram);
      expect(r.lapic.pvEoiArmed()).to.equal(true);
      expect(r.lapic.readMsr(MSR_KVM_PV_EOI_EN)).to.equal(BigInt(WORD) | 1n);
      expect(guestEoi(r)).to.equal('pv');
      expect(r.lapic.syncPvEoiAfterExit()).to.equal(true);
      expect(inService(r.lapic, 0x41)).to.equal(false);
    });

    it('a snapshot from before paravirtual EOI (lapic-set layout 1) loads with it disabled', () => {
      const t = rig();
      t.set.deliver(msg(0x41));
      const v2 = LapicSet.save(t.buffer);
      expect(v2.version).to.equal(lapicSetLayout(2).version);
      const apic = (v2.fields.apic as SavedRecord[]).map((rec) => {
        const old: SavedRecord = { ...rec, reserved: [0, 0, 0, 0, 0] };
        delete old.pvEoiLo;
        delete old.pvEoiHi;
        delete old.pvEoiArmed;
        return old;
      });
      const v1: SavedState = { layout: 'lapic-set', version: 1, fields: { ...v2.fields, apic } };
      const fresh = LapicSet.allocate(2);
      LapicSet.load(fresh, v1);
      const r = rig(true, fresh);
      expect(r.lapic.readMsr(MSR_KVM_PV_EOI_EN)).to.equal(0n);
      expect(r.lapic.pvEoiArmed()).to.equal(false);
      expect(r.lapic.pendingVector()).to.equal(0x41);
    });
  });
});
