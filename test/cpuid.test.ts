import { expect } from 'chai';
import type { CpuidEntry } from '../src/kvm/structs.js';
import { vcpuCpuid, type CpuidPolicy } from '../src/vcpu/cpuid.js';

const ALL = 0xffffffff;

// Leaf 1 feature bits.
const ECX_CX16 = 1 << 13;
const ECX_X2APIC = 1 << 21;
const ECX_TSC_DEADLINE = 1 << 24;
const ECX_HYPERVISOR = 2 ** 31;
const EDX_HTT = 1 << 28;

// KVM paravirtual features (leaf 0x40000001 EAX), as in the kernel's kvm_para.h.
const KVM_FEATURE = {
  CLOCKSOURCE: 0,
  NOP_IO_DELAY: 1,
  MMU_OP: 2,
  CLOCKSOURCE2: 3,
  ASYNC_PF: 4,
  STEAL_TIME: 5,
  PV_EOI: 6,
  PV_UNHALT: 7,
  PV_TLB_FLUSH: 9,
  ASYNC_PF_VMEXIT: 10,
  PV_SEND_IPI: 11,
  POLL_CONTROL: 12,
  PV_SCHED_YIELD: 13,
  ASYNC_PF_INT: 14,
  MSI_EXT_DEST_ID: 15,
  HC_MAP_GPA_RANGE: 16,
  MIGRATION_CONTROL: 17,
  CLOCKSOURCE_STABLE_BIT: 24,
} as const;
const bit = (n: number): number => 2 ** n;
const HIDDEN_IN_USER_MODE = [KVM_FEATURE.PV_EOI, KVM_FEATURE.PV_UNHALT, KVM_FEATURE.PV_SEND_IPI, KVM_FEATURE.ASYNC_PF_INT, KVM_FEATURE.ASYNC_PF];
const HIDDEN_ON_SOFTWARE_VIRT = [KVM_FEATURE.PV_UNHALT, KVM_FEATURE.PV_SEND_IPI, KVM_FEATURE.PV_SCHED_YIELD];

const entry = (fn: number, index: number, eax: number, ebx: number, ecx: number, edx: number, flags = 0): CpuidEntry => ({
  function: fn,
  index,
  flags,
  eax,
  ebx,
  ecx,
  edx,
});

/** A host's KVM_GET_SUPPORTED_CPUID, every feature bit set. */
function supported(): CpuidEntry[] {
  return [
    entry(0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69), // GenuineIntel
    // Leaf 1: signature; EBX = brand 0x12, CLFLUSH 0x34, count 0x56, APIC ID 0x78.
    entry(1, 0, 0x000906ea, 0x78563412, ALL, ALL),
    // Leaf 4: four cache levels; EAX[31:26] says 16 cores on the host.
    entry(4, 0, 0x3c004121, 0x01c0003f, 0x3f, 0, 1),
    entry(4, 1, 0x3c004122, 0x01c0003f, 0x3f, 0, 1),
    entry(4, 2, 0x3c004143, 0x01c0003f, 0x3ff, 0, 1),
    entry(4, 3, 0x3c07c163, 0x03c0003f, 0x3fff, 6, 1),
    entry(0xb, 0, 1, 2, 0x100, 0x77, 1),
    entry(0xb, 1, 5, 32, 0x201, 0x77, 1),
    entry(0xb, 2, 0, 0, 2, 0x77, 1),
    entry(0x1f, 0, 1, 2, 0x100, 0x77, 1),
    entry(0x1f, 1, 5, 32, 0x201, 0x77, 1),
    entry(0x1f, 2, 0, 0, 2, 0x77, 1),
    entry(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d), // KVMKVMKVM
    entry(0x40000001, 0, ALL, 0, 0, 0),
    entry(0x80000001, 0, 0, 0, ALL, ALL),
  ];
}

const policy = (p: Partial<CpuidPolicy> = {}): CpuidPolicy => ({
  vcpu: 0,
  apicId: 0,
  vcpus: 4,
  irqchip: 'kernel',
  softwareVirt: false,
  x2apic: false,
  ...p,
});

/** The entry for `fn`/`index`, with registers as unsigned 32-bit numbers. */
function leaf(entries: readonly CpuidEntry[], fn: number, index = 0): CpuidEntry {
  const e = entries.find((x) => x.function === fn && x.index === index);
  if (!e) throw new Error(`no leaf 0x${fn.toString(16)}.${index}`);
  return { ...e, eax: e.eax >>> 0, ebx: e.ebx >>> 0, ecx: e.ecx >>> 0, edx: e.edx >>> 0 };
}

const has = (reg: number, mask: number): boolean => ((reg >>> 0) & mask) >>> 0 === mask >>> 0;

describe('vcpuCpuid', () => {
  it('keeps every leaf, in order, and leaves unrelated leaves alone', () => {
    const input = supported();
    const out = vcpuCpuid(input, policy());
    expect(out.map((e) => [e.function, e.index])).to.deep.equal(input.map((e) => [e.function, e.index]));
    for (const fn of [0, 0x40000000, 0x80000001]) expect(leaf(out, fn)).to.deep.equal(leaf(input, fn));
    for (const e of out) expect(e.flags).to.equal(leaf(input, e.function, e.index).flags);
  });

  it('does not mutate its input, and returns new entry objects', () => {
    const input = supported();
    const frozen = input.map((e) => Object.freeze({ ...e }));
    const before = structuredClone(input);
    const out = vcpuCpuid(frozen, policy({ irqchip: 'user', softwareVirt: true, apicId: 300, vcpus: 288 }));
    vcpuCpuid(input, policy({ irqchip: 'user', softwareVirt: true, apicId: 300, vcpus: 288 }));
    expect(input).to.deep.equal(before);
    for (let i = 0; i < out.length; i++) expect(out[i]).to.not.equal(frozen[i]);
  });

  describe('leaf 1', () => {
    it('puts the APIC ID in EBX[31:24] and the logical count in EBX[23:16], keeping EBX[15:0]', () => {
      const e = leaf(vcpuCpuid(supported(), policy({ vcpu: 3, apicId: 3, vcpus: 4 })), 1);
      expect(e.ebx >>> 24).to.equal(3);
      expect((e.ebx >>> 16) & 0xff).to.equal(4);
      expect(e.ebx & 0xffff).to.equal(0x3412);
    });

    it('handles an APIC ID of 255 and above in the 8-bit field', () => {
      expect(leaf(vcpuCpuid(supported(), policy({ apicId: 255, vcpus: 256 })), 1).ebx >>> 24).to.equal(255);
      expect(leaf(vcpuCpuid(supported(), policy({ apicId: 0x12c, vcpus: 301 })), 1).ebx >>> 24).to.equal(0x2c);
      expect(leaf(vcpuCpuid(supported(), policy({ apicId: 128, vcpus: 129 })), 1).ebx >>> 24).to.equal(128);
    });

    it('caps the logical count at 255', () => {
      for (const [vcpus, count] of [[1, 1], [2, 2], [255, 255], [256, 255], [288, 255]] as const) {
        expect((leaf(vcpuCpuid(supported(), policy({ vcpus })), 1).ebx >>> 16) & 0xff, `${vcpus} vCPUs`).to.equal(count);
      }
    });

    it('sets HTT for more than one vCPU and clears it for one', () => {
      expect(has(leaf(vcpuCpuid(supported(), policy({ vcpus: 2 })), 1).edx, EDX_HTT)).to.equal(true);
      const noHtt = supported().map((e) => (e.function === 1 ? { ...e, edx: e.edx & ~EDX_HTT } : e));
      expect(has(leaf(vcpuCpuid(noHtt, policy({ vcpus: 2 })), 1).edx, EDX_HTT)).to.equal(true);
      const one = leaf(vcpuCpuid(supported(), policy({ vcpus: 1 })), 1);
      expect(has(one.edx, EDX_HTT)).to.equal(false);
      expect(one.edx).to.equal((ALL & ~EDX_HTT) >>> 0);
    });

    it('sets the hypervisor bit even when the host does not report it', () => {
      const bare = supported().map((e) => (e.function === 1 ? { ...e, ecx: 0 } : e));
      for (const irqchip of ['user', 'split', 'kernel'] as const) {
        expect(has(leaf(vcpuCpuid(bare, policy({ irqchip })), 1).ecx, ECX_HYPERVISOR), irqchip).to.equal(true);
      }
    });

    // [irqchip, x2APIC MSRs reach us, our LAPIC has a TSC source, x2APIC shown, TSC deadline shown]
    const modes: Array<[CpuidPolicy['irqchip'], boolean, boolean, boolean, boolean]> = [
      ['user', false, false, false, false],
      ['user', false, true, false, false],
      ['user', true, false, true, false],
      ['user', true, true, true, true],
      ['split', false, false, true, true],
      ['split', true, false, true, true],
      ['kernel', false, false, true, true],
      ['kernel', true, false, true, true],
    ];
    for (const [irqchip, x2apic, tscDeadline, x2Shown, tscShown] of modes) {
      const what = `${irqchip} irqchip${x2apic ? ', x2APIC MSRs' : ''}${tscDeadline ? ', a guest TSC source' : ''}`;
      it(`${x2Shown ? 'keeps' : 'hides'} x2APIC and ${tscShown ? 'keeps' : 'hides'} the TSC-deadline timer with the ${what}`, () => {
        const e = leaf(vcpuCpuid(supported(), policy({ irqchip, x2apic, tscDeadline })), 1);
        expect(has(e.ecx, ECX_X2APIC), 'x2APIC').to.equal(x2Shown);
        expect(has(e.ecx, ECX_TSC_DEADLINE), 'TSC deadline').to.equal(tscShown);
        // Nothing else in ECX changes.
        expect(e.ecx | ECX_X2APIC | ECX_TSC_DEADLINE).to.equal(ALL | 0);
      });
    }

    it('clears CMPXCHG16B only on a software-virtualising host', () => {
      expect(has(leaf(vcpuCpuid(supported(), policy({ softwareVirt: false })), 1).ecx, ECX_CX16)).to.equal(true);
      expect(has(leaf(vcpuCpuid(supported(), policy({ softwareVirt: false, irqchip: 'user' })), 1).ecx, ECX_CX16)).to.equal(true);
      const soft = leaf(vcpuCpuid(supported(), policy({ softwareVirt: true })), 1);
      expect(has(soft.ecx, ECX_CX16)).to.equal(false);
      expect(soft.ecx).to.equal((ALL & ~ECX_CX16) >>> 0);
    });

    it('leaves EAX (the signature) alone', () => {
      expect(leaf(vcpuCpuid(supported(), policy()), 1).eax).to.equal(0x000906ea);
    });
  });

  describe('leaf 4', () => {
    for (const [vcpus, field] of [[1, 0], [2, 1], [4, 3], [64, 63], [65, 63], [288, 63]] as const) {
      it(`says ${field + 1} cores per package for ${vcpus} vCPUs and keeps the cache description`, () => {
        const input = supported();
        const out = vcpuCpuid(input, policy({ vcpus }));
        for (let index = 0; index < 4; index++) {
          const e = leaf(out, 4, index);
          const src = leaf(input, 4, index);
          expect(e.eax >>> 26, `subleaf ${index}`).to.equal(field);
          expect(e.eax & 0x03ffffff).to.equal(src.eax & 0x03ffffff);
          expect([e.ebx, e.ecx, e.edx]).to.deep.equal([src.ebx, src.ecx, src.edx]);
        }
      });
    }
  });

  for (const fn of [0xb, 0x1f]) {
    describe(`leaf 0x${fn.toString(16)} (extended topology)`, () => {
      it('reports one thread per core at the SMT level', () => {
        const e = leaf(vcpuCpuid(supported(), policy({ vcpus: 8, apicId: 5 })), fn, 0);
        expect(e.eax).to.equal(0);
        expect(e.ebx).to.equal(1);
        expect(e.ecx).to.equal(0x100); // type 1 (SMT), level 0
        expect(e.edx).to.equal(5);
      });

      for (const [vcpus, bits] of [[1, 0], [2, 1], [3, 2], [4, 2], [5, 3], [8, 3], [9, 4], [64, 6], [65, 7], [255, 8], [256, 8], [257, 9], [288, 9]] as const) {
        it(`shifts by ceil(log2(${vcpus})) = ${bits} at the core level for ${vcpus} vCPUs`, () => {
          const e = leaf(vcpuCpuid(supported(), policy({ vcpus, apicId: vcpus - 1 })), fn, 1);
          expect(e.eax).to.equal(bits);
          expect(e.ebx).to.equal(vcpus);
          expect(e.ecx).to.equal(0x201); // type 2 (core), level 1
          expect(e.edx).to.equal(vcpus - 1);
          // Every APIC ID fits below the package shift.
          expect(vcpus - 1 < 2 ** bits || vcpus === 1).to.equal(true);
        });
      }

      it('ends the enumeration at subleaf 2 with an invalid level that keeps its number', () => {
        const e = leaf(vcpuCpuid(supported(), policy({ vcpus: 8, apicId: 6 })), fn, 2);
        expect([e.eax, e.ebx, e.ecx]).to.deep.equal([0, 0, 2]);
        expect(e.edx).to.equal(6);
      });

      it('reports the full x2APIC ID in EDX on every subleaf, including IDs above 255', () => {
        const out = vcpuCpuid(supported(), policy({ vcpus: 300, apicId: 299 }));
        for (let index = 0; index < 3; index++) expect(leaf(out, fn, index).edx, `subleaf ${index}`).to.equal(299);
      });
    });
  }

  describe('leaf 0x40000001 (KVM paravirtual features)', () => {
    const shown = (p: Partial<CpuidPolicy>): number => leaf(vcpuCpuid(supported(), policy(p)), 0x40000001).eax;
    const without = (bits: readonly number[]): number => bits.reduce((v, b) => v & ~bit(b), ALL) >>> 0;

    it('keeps every feature with the kernel irqchip on a hardware-virtualising host', () => {
      expect(shown({ irqchip: 'kernel' })).to.equal(ALL);
      expect(shown({ irqchip: 'split' })).to.equal(ALL);
    });

    it('hides PV EOI, PV unhalt, PV IPIs and async page faults with the userspace irqchip', () => {
      expect(shown({ irqchip: 'user' })).to.equal(without(HIDDEN_IN_USER_MODE));
      expect(shown({ irqchip: 'user', x2apic: true })).to.equal(without(HIDDEN_IN_USER_MODE));
    });

    it('hides PV unhalt, PV IPIs and PV sched-yield on a software-virtualising host', () => {
      expect(shown({ irqchip: 'kernel', softwareVirt: true })).to.equal(without(HIDDEN_ON_SOFTWARE_VIRT));
    });

    it('hides the union of both sets with the userspace irqchip on a software-virtualising host', () => {
      expect(shown({ irqchip: 'user', softwareVirt: true })).to.equal(without([...HIDDEN_IN_USER_MODE, ...HIDDEN_ON_SOFTWARE_VIRT]));
    });

    it('keeps the clock source, steal time and the other features in every configuration', () => {
      const kept = [KVM_FEATURE.CLOCKSOURCE, KVM_FEATURE.CLOCKSOURCE2, KVM_FEATURE.STEAL_TIME, KVM_FEATURE.PV_TLB_FLUSH, KVM_FEATURE.MSI_EXT_DEST_ID, KVM_FEATURE.CLOCKSOURCE_STABLE_BIT];
      for (const irqchip of ['user', 'split', 'kernel'] as const) {
        for (const softwareVirt of [false, true]) {
          for (const b of kept) expect(has(shown({ irqchip, softwareVirt }), bit(b)), `bit ${b}, ${irqchip}, soft=${softwareVirt}`).to.equal(true);
        }
      }
    });

    it('only clears bits: a feature the host lacks stays absent', () => {
      const sparse = supported().map((e) => (e.function === 0x40000001 ? { ...e, eax: bit(KVM_FEATURE.CLOCKSOURCE2) } : e));
      expect(leaf(vcpuCpuid(sparse, policy({ irqchip: 'kernel' })), 0x40000001).eax).to.equal(bit(KVM_FEATURE.CLOCKSOURCE2));
      expect(leaf(vcpuCpuid(sparse, policy({ irqchip: 'user', softwareVirt: true })), 0x40000001).eax).to.equal(bit(KVM_FEATURE.CLOCKSOURCE2));
    });
  });
});
