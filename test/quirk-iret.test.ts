import { expect } from 'chai';
import { GuestMemory } from '../src/memory/guest-memory.js';
import { REG_NAMES, type Regs, type Segment, type Sregs } from '../src/kvm/structs.js';
import { handleEmulationFailure, Vector, type Emulated, type InjectException, type Unhandled } from '../src/vcpu/quirks/fallbacks.js';
import { segmentFromDescriptor } from '../src/vcpu/quirks/iret.js';
import { freshSregs } from './helpers/sregs.js';

// SYSLINUX-like flat 32-bit protected mode: GDT at 0x9400 with code 0x20 and
// data 0x28 (ring 0), code 0x33 and data 0x3b (ring 3); no paging.
const GDT = 0x9400;
const STACK = 0x8000;

function descriptor(access: number, flags = 0xc): bigint {
  return 0xffffn | (BigInt(access) << 40n) | (0xfn << 48n) | (BigInt(flags) << 52n);
}

function setup(frame: number[], opts: { cpl?: number; flags?: bigint } = {}): { mem: GuestMemory; regs: Regs; sregs: Sregs } {
  const mem = new GuestMemory([{ gpa: 0, buffer: new SharedArrayBuffer(1024 * 1024) }]);
  mem.writeU64(GDT + 0x20, descriptor(0x9b));
  mem.writeU64(GDT + 0x28, descriptor(0x93));
  mem.writeU64(GDT + 0x30, descriptor(0xfb));
  mem.writeU64(GDT + 0x38, descriptor(0xf3));
  mem.writeU64(GDT + 0x40, descriptor(0x1b)); // not present
  frame.forEach((w, i) => mem.writeU32(STACK + 4 * i, w));
  const regs = Object.fromEntries(REG_NAMES.map((n) => [n, 0n])) as Regs;
  regs.rip = 0x8ffcn;
  regs.rsp = BigInt(STACK);
  regs.rflags = opts.flags ?? 0x2n;
  const cpl = opts.cpl ?? 0;
  const sregs = freshSregs();
  sregs.cr0 = 0x11n;
  sregs.gdt = { base: BigInt(GDT), limit: 0x47 };
  const flat = (selector: number, type: number): Segment => segmentFromDescriptor(selector, new Uint8Array(new BigUint64Array([descriptor(0x90 | (cpl << 5) | type)]).buffer));
  sregs.cs = flat(cpl ? 0x33 : 0x20, 0xb);
  for (const n of ['ds', 'es', 'fs', 'gs', 'ss'] as const) sregs[n] = flat(cpl ? 0x3b : 0x28, 0x3);
  return { mem, regs, sregs };
}

describe('quirk fallbacks: IRET in 32-bit protected mode (KVM emulates only the real-mode form)', () => {
  it('decodes a flat 4 GiB code descriptor into a segment register', () => {
    const s = segmentFromDescriptor(0x20, new Uint8Array(new BigUint64Array([descriptor(0x9b)]).buffer));
    expect(s).to.deep.include({ base: 0n, limit: 0xffffffff, selector: 0x20, type: 0xb, s: 1, present: 1, dpl: 0, db: 1, g: 1 });
  });

  it('returns to the same privilege level: pops EIP, CS and EFLAGS and reloads CS from the GDT', () => {
    const { mem, regs, sregs } = setup([0x1234, 0x20, 0x202]);
    const a = handleEmulationFailure(Uint8Array.of(0xcf), regs, sregs, mem, 0) as Emulated;
    expect(a.kind).to.equal('emulated');
    expect(a.regs).to.deep.equal({ rip: 0x1234n, rsp: BigInt(STACK + 12), rflags: 0x202n });
    expect(a.sregs?.cs?.selector).to.equal(0x20);
    expect(a.sregs?.ss).to.equal(undefined);
  });

  it('returns to ring 3 with the outer stack, and nulls data segments ring 3 may not use', () => {
    const { mem, regs, sregs } = setup([0x40_0000, 0x33, 0x3202, 0x7_0000, 0x3b]);
    const a = handleEmulationFailure(Uint8Array.of(0xcf), regs, sregs, mem, 0) as Emulated;
    expect(a.regs).to.deep.equal({ rip: 0x40_0000n, rsp: 0x7_0000n, rflags: 0x3202n });
    expect([a.sregs?.cs?.selector, a.sregs?.cs?.dpl, a.sregs?.ss?.selector, a.sregs?.ss?.dpl]).to.deep.equal([0x33, 3, 0x3b, 3]);
    expect(a.sregs?.ds?.unusable).to.equal(1);
  });

  it('keeps IOPL and (above IOPL) IF at ring 3, as the CPU does', () => {
    const { mem, regs, sregs } = setup([0x1000, 0x33, 0x3202], { cpl: 3, flags: 0x2n });
    const a = handleEmulationFailure(Uint8Array.of(0xcf), regs, sregs, mem, 3) as Emulated;
    expect(a.regs.rflags).to.equal(0x2n);
  });

  it('pops 16-bit words with an operand-size prefix (iretw)', () => {
    const { mem, regs, sregs } = setup([0x00200010, 0x0202]);
    const a = handleEmulationFailure(Uint8Array.of(0x66, 0xcf), regs, sregs, mem, 0) as Emulated;
    expect(a.regs).to.deep.include({ rip: 0x10n, rsp: BigInt(STACK + 6) });
    expect(a.sregs?.cs?.selector).to.equal(0x20);
  });

  it('raises #GP for a return to a more privileged level or a null selector, #NP for a missing segment', () => {
    const up = setup([0x1000, 0x20, 0x202], { cpl: 3 });
    expect((handleEmulationFailure(Uint8Array.of(0xcf), up.regs, up.sregs, up.mem, 3) as InjectException).vector).to.equal(Vector.GP);
    const nul = setup([0x1000, 0, 0x202]);
    expect((handleEmulationFailure(Uint8Array.of(0xcf), nul.regs, nul.sregs, nul.mem, 0) as InjectException).vector).to.equal(Vector.GP);
    const np = setup([0x1000, 0x40, 0x202]);
    expect((handleEmulationFailure(Uint8Array.of(0xcf), np.regs, np.sregs, np.mem, 0) as InjectException).vector).to.equal(11);
  });

  it('refuses task returns (NT set) rather than guess', () => {
    const { mem, regs, sregs } = setup([0x1000, 0x20, 0x202], { flags: 0x4002n });
    expect((handleEmulationFailure(Uint8Array.of(0xcf), regs, sregs, mem, 0) as Unhandled).reason).to.match(/NT set/);
  });
});
