import { expect } from 'chai';
import { layoutOf, k } from '../src/kvm/addon.js';
import { eventsOff } from '../src/kvm/structs.js';
import type { KvmVcpu } from '../src/kvm/vcpu-fd.js';
import type { Regs, Sregs } from '../src/kvm/structs.js';
import { freshSregs } from './helpers/sregs.js';
import { LapicSet, LapicEvent, MSR_IA32_APIC_BASE, MSR_KVM_PV_EOI_EN, APIC_BASE_EN, APIC_BASE_EXTD } from '../src/irqchip/lapic.js';
import { DualPic } from '../src/irqchip/pic.js';
import { DeliveryMode, Shorthand } from '../src/irqchip/types.js';
import { FakeClock } from '../src/sync/clock.js';
import { RunPage, RunOff } from '../src/vcpu/run-page.js';
import { UserInterrupts } from '../src/vcpu/user-interrupts.js';
import { Stat } from '../src/vcpu/control.js';
import { GuestMemory } from '../src/memory/guest-memory.js';


class FakeVcpu {
  injected: number[] = [];
  nmis = 0;
  sregs?: Sregs;
  regs?: Regs;
  interrupt(v: number): void {
    this.injected.push(v);
  }
  nmi(): void {
    this.nmis++;
  }
  getSregs(): Sregs {
    return freshSregs();
  }
  setSregs(s: Sregs): void {
    this.sregs = s;
  }
  setRegs(r: Regs): void {
    this.regs = r;
  }
  resetFpu(): void {}
}

function setup(waitForSipi = false, syncEvents = false, guestRam?: GuestMemory) {
  const clock = new FakeClock(1e9);
  const woken: number[] = [];
  const set = new LapicSet(LapicSet.allocate(2), { clock, wake: (i) => woken.push(i), guestRam });
  const pic = new DualPic(DualPic.allocate(), { onOutput: (h) => set.get(0).setLint(0, h) });
  const run = new RunPage(new ArrayBuffer(layoutOf('kvm_run').size + 4096));
  const vcpu = new FakeVcpu();
  const stats = new Float64Array(64);
  const lapic = set.get(0);
  const timers: number[] = [];
  const irq = new UserInterrupts({ setTimer: (d) => timers.push(d), vcpu: vcpu as unknown as KvmVcpu, lapic, pic, clock, stats, run, waitForSipi, syncEvents });
  lapic.write(0xf0, 4, 0x1ff); // software-enable, spurious vector 0xff
  return { set, pic, run, vcpu, irq, lapic, woken, stats, clock, timers };
}

const fixed = (vector: number, dest = 0) => ({ vector, deliveryMode: DeliveryMode.Fixed, logical: false, dest, levelTriggered: false, assert: true, shorthand: Shorthand.None, source: -1 });

describe('user-mode interrupt injection (UserInterrupts)', () => {
  it('injects the pending vector when the guest can take it, and only then', () => {
    const t = setup();
    t.set.deliver(fixed(0x41));
    t.run.u8[RunOff.readyForInjection] = 1;
    t.run.u8[RunOff.ifFlag] = 0;
    expect(t.irq.beforeRun(t.run)).to.equal(true);
    expect(t.vcpu.injected).to.deep.equal([]);
    expect(t.run.u8[RunOff.requestInterruptWindow]).to.equal(1);
    t.run.u8[RunOff.ifFlag] = 1;
    t.irq.beforeRun(t.run);
    expect(t.vcpu.injected).to.deep.equal([0x41]);
    expect(t.stats[7]).to.equal(1);
    expect(t.run.u8[RunOff.requestInterruptWindow]).to.equal(0);
    expect(t.lapic.read(0x100 + 0x20, 4) & 2).to.equal(2); // ISR bit 0x41 set
  });

  it('injects through the run page, with no ioctl, when KVM syncs vcpu events', () => {
    const t = setup(false, true);
    t.set.deliver(fixed(0x41));
    t.run.u8[RunOff.readyForInjection] = 1;
    t.run.u8[RunOff.ifFlag] = 1;
    t.irq.beforeRun(t.run);
    expect(t.vcpu.injected).to.deep.equal([]);
    const ev = RunOff.syncEvents;
    expect(t.run.u8[ev + eventsOff('interrupt_injected')]).to.equal(1);
    expect(t.run.u8[ev + eventsOff('interrupt_nr')]).to.equal(0x41);
    expect(t.run.u8[RunOff.dirtyRegs]! & k('KVM_SYNC_X86_EVENTS')).to.not.equal(0);
    // An NMI goes the same way: pending in the run page, not KVM_NMI.
    t.set.deliver({ ...fixed(0), deliveryMode: DeliveryMode.NMI });
    t.irq.beforeRun(t.run);
    expect(t.vcpu.nmis).to.equal(0);
    expect(t.run.u8[ev + eventsOff('nmi_pending')]).to.equal(1);
    expect(t.run.view.getUint32(ev + eventsOff('flags'), true) & k('KVM_VCPUEVENT_VALID_NMI_PENDING')).to.not.equal(0);
  });

  it('skips its checks only while the APIC has not moved: deliveries, register writes and due timers still count', () => {
    const t = setup();
    t.run.u8[RunOff.readyForInjection] = 1;
    t.run.u8[RunOff.ifFlag] = 1;
    t.irq.beforeRun(t.run); // idle: nothing pending
    t.irq.beforeRun(t.run); // fast path
    expect(t.vcpu.injected).to.deep.equal([]);
    // A delivery from another thread moves the attention counter.
    t.set.deliver(fixed(0x41));
    t.irq.beforeRun(t.run);
    expect(t.vcpu.injected).to.deep.equal([0x41]);
    t.lapic.write(0xb0, 4, 0); // EOI
    t.irq.beforeRun(t.run);
    // A TPR write (the guest's MMIO) reaches CR8 in the run page.
    t.lapic.write(0x80, 4, 0x50);
    t.irq.beforeRun(t.run);
    expect(t.run.u8[RunOff.cr8]).to.equal(5);
    // A timer that falls due while the counter stands still is still served.
    t.lapic.write(0x3e0, 4, 0xb); // divide by 1
    t.lapic.write(0x320, 4, 0x42); // one-shot, vector 0x42
    t.lapic.write(0x380, 4, 1000); // 1000 ns
    t.lapic.write(0x80, 4, 0);
    t.irq.beforeRun(t.run);
    expect(t.timers.at(-1)).to.equal(1e9 + 1000); // the vCPU's deadline kick is armed
    t.clock.advance(2000);
    t.irq.beforeRun(t.run);
    expect(t.vcpu.injected).to.deep.equal([0x41, 0x42]);
    expect(t.timers.at(-1)).to.equal(0); // and disarmed once the one-shot fired
  });

  it('never stacks an interrupt on an exception already injected through the run page', () => {
    const t = setup(false, true);
    const ev = RunOff.syncEvents;
    t.run.u8[ev + eventsOff('exception_injected')] = 1; // e.g. a #BP the quirk layer injected
    t.set.deliver(fixed(0x41));
    t.run.u8[RunOff.readyForInjection] = 1;
    t.run.u8[RunOff.ifFlag] = 1;
    t.irq.beforeRun(t.run);
    expect(t.run.u8[ev + eventsOff('interrupt_injected')]).to.equal(0);
    expect(t.run.u8[RunOff.requestInterruptWindow]).to.equal(1);
    // Once KVM has delivered it (the next exit's events show nothing in flight), the interrupt goes in.
    t.run.u8[ev + eventsOff('exception_injected')] = 0;
    t.irq.beforeRun(t.run);
    expect(t.run.u8[ev + eventsOff('interrupt_injected')]).to.equal(1);
    expect(t.run.u8[ev + eventsOff('interrupt_nr')]).to.equal(0x41);
  });

  it('asks for another window while more interrupts wait behind the injected one', () => {
    const t = setup();
    t.set.deliver(fixed(0x51));
    t.set.deliver(fixed(0x61));
    t.run.u8[RunOff.readyForInjection] = 1;
    t.run.u8[RunOff.ifFlag] = 1;
    t.irq.beforeRun(t.run);
    expect(t.vcpu.injected).to.deep.equal([0x61]);
    // 0x51 is below the in-service 0x61's class: not deliverable until EOI.
    expect(t.run.u8[RunOff.requestInterruptWindow]).to.equal(0);
    t.lapic.write(0xb0, 4, 0);
    t.irq.beforeRun(t.run);
    expect(t.vcpu.injected).to.deep.equal([0x61, 0x51]);
  });

  it('takes ExtINT vectors from the 8259 through LINT0', () => {
    const t = setup();
    for (const [port, v] of [[0x20, 0x11], [0x21, 0x30], [0x21, 0x04], [0x21, 0x01], [0x21, 0xfe]] as const) t.pic.master.write(port - 0x20, 1, v, 0);
    t.pic.setLevel(0, true);
    t.run.u8[RunOff.readyForInjection] = 1;
    t.run.u8[RunOff.ifFlag] = 1;
    expect(t.irq.hasPending()).to.equal(true);
    t.irq.beforeRun(t.run);
    expect(t.vcpu.injected).to.deep.equal([0x30]);
  });

  it('does not end a HLT for a maskable interrupt while IF is clear, but does for NMI', () => {
    const t = setup();
    t.set.deliver(fixed(0x41));
    t.run.u8[RunOff.ifFlag] = 0;
    expect(t.irq.hasPending()).to.equal(false);
    t.set.deliver({ ...fixed(0), deliveryMode: DeliveryMode.NMI });
    expect(t.irq.hasPending()).to.equal(true);
    t.irq.beforeRun(t.run);
    expect(t.vcpu.nmis).to.equal(1);
  });

  it('parks an AP until INIT-SIPI, then starts it in real mode at vector << 12', () => {
    const t = setup(true);
    expect(t.irq.beforeRun(t.run)).to.equal(false);
    expect(t.irq.hasPending()).to.equal(false);
    t.set.deliver({ ...fixed(0), deliveryMode: DeliveryMode.INIT });
    t.set.deliver({ ...fixed(0x9a), deliveryMode: DeliveryMode.StartUp });
    expect(t.irq.hasPending()).to.equal(true);
    expect(t.irq.beforeRun(t.run)).to.equal(true);
    expect(t.vcpu.sregs!.cs.base).to.equal(0x9a000n);
    expect(t.vcpu.sregs!.cs.selector).to.equal(0x9a00);
    expect(t.vcpu.regs!.rip).to.equal(0n);
    expect(t.vcpu.sregs!.cr0 & 1n).to.equal(0n);
  });

  it('ignores a SIPI that arrives while the vCPU is running', () => {
    const t = setup(false);
    t.set.deliver({ ...fixed(0x9a), deliveryMode: DeliveryMode.StartUp });
    expect(t.irq.beforeRun(t.run)).to.equal(true);
    expect(t.vcpu.sregs).to.equal(undefined);
    expect(LapicEvent.SIPI).to.be.a('number');
  });

  it('serves the APIC MSRs from MSR exits and raises #GP for the ones it refuses', () => {
    const t = setup();
    const v = t.run.view;
    // Switch to x2APIC mode through IA32_APIC_BASE.
    v.setBigUint64(RunOff.msrData, BigInt((0xfee00000 | APIC_BASE_EN | APIC_BASE_EXTD | 0x100) >>> 0), true);
    expect(t.irq.msr(t.run, true, MSR_IA32_APIC_BASE)).to.equal(true);
    expect(t.run.u8[RunOff.msrError]).to.equal(0);
    expect(t.irq.msr(t.run, false, 0x802)).to.equal(true); // x2APIC ID
    expect(t.run.u8[RunOff.msrError]).to.equal(0);
    expect(v.getBigUint64(RunOff.msrData, true)).to.equal(0n);
    expect(t.irq.msr(t.run, false, 0x8ff)).to.equal(true); // reserved: #GP
    expect(t.run.u8[RunOff.msrError]).to.equal(1);
    expect(t.irq.msr(t.run, false, 0x10)).to.equal(false); // not the APIC's
  });

  it('paravirtual EOI: the MSR exit enables it, the injected vector is armed, and the next exit completes the EOI the guest skipped', () => {
    const ram = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(0x10000) }]);
    const t = setup(false, false, ram);
    t.run.view.setBigUint64(RunOff.msrData, 0x2001n, true);
    expect(t.irq.msr(t.run, true, MSR_KVM_PV_EOI_EN)).to.equal(true);
    expect(t.run.u8[RunOff.msrError]).to.equal(0);
    t.set.deliver(fixed(0x41));
    t.run.u8[RunOff.readyForInjection] = 1;
    t.run.u8[RunOff.ifFlag] = 1;
    t.irq.beforeRun(t.run);
    expect(t.vcpu.injected).to.deep.equal([0x41]);
    expect(ram.readU32(0x2000)).to.equal(1); // armed before the entry that delivers it
    t.irq.afterRun(t.run); // an exit before the handler's EOI: still armed
    expect(ram.readU32(0x2000)).to.equal(1);
    ram.writeU32(0x2000, 0); // the guest's EOI routine takes the bit instead of writing EOI
    t.irq.afterRun(t.run);
    expect(t.stats[Stat.PvEois]).to.equal(1);
    expect(t.lapic.read(0x100 + 0x20, 4) & 2).to.equal(0); // 0x41 no longer in service
    // A misaligned word is refused with #GP.
    t.run.view.setBigUint64(RunOff.msrData, 0x2003n, true);
    t.irq.msr(t.run, true, MSR_KVM_PV_EOI_EN);
    expect(t.run.u8[RunOff.msrError]).to.equal(1);
  });
});
