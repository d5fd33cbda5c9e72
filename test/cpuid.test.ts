import { expect } from 'chai';
import type { CpuidEntry } from '../src/kvm/structs.js';
import { vcpuCpuid, type CpuidPolicy, type IrqchipMode } from '../src/vcpu/cpuid.js';
import { irqchipFor } from '../src/vm/irqchip.js';
import { CpuLayout, type Topology } from '../src/vcpu/topology.js';
import { cpuidFromTable, decodeTopology } from './helpers/topology-decode.js';

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

/** Vendor strings as leaf 0 spells them in EBX, EDX, ECX. */
function vendorLeaf(maxLeaf: number, vendor: string): CpuidEntry {
  const b = Buffer.from(vendor, 'latin1');
  return entry(0, 0, maxLeaf, b.readUInt32LE(0), b.readUInt32LE(8), b.readUInt32LE(4));
}

/**
 * KVM_GET_SUPPORTED_CPUID on an Intel host, every feature bit set. As KVM
 * reports them (arch/x86/kvm/cpuid.c): 0BH and 1FH have subleaf 0 only,
 * zeroed but for EDX; leaf 4 lists the host's caches (here L3 shared by 16
 * threads, 16 cores per package) up to the null entry.
 */
function supported(): CpuidEntry[] {
  return [
    vendorLeaf(0x1f, 'GenuineIntel'),
    // Leaf 1: signature; EBX = brand 0x12, CLFLUSH 0x34, count 0x56, APIC ID 0x78.
    entry(1, 0, 0x000906ea, 0x78563412, ALL, ALL),
    entry(4, 0, 0x3c004121, 0x01c0003f, 0x3f, 0, 1),
    entry(4, 1, 0x3c004122, 0x01c0003f, 0x3f, 0, 1),
    entry(4, 2, 0x3c004143, 0x01c0003f, 0x3ff, 0, 1),
    entry(4, 3, 0x3c03c163, 0x03c0003f, 0x3fff, 6, 1),
    entry(4, 4, 0, 0, 0, 0, 1),
    entry(0xb, 0, 0, 0, 0, 0x77, 1),
    entry(0x1f, 0, 0, 0, 0, 0x77, 1),
    entry(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d), // KVMKVMKVM
    entry(0x40000001, 0, ALL, 0, 0, 0),
    entry(0x80000000, 0, 0x80000008, 0, 0, 0),
    entry(0x80000001, 0, 0, 0, ALL, ALL),
    entry(0x80000008, 0, 0x3030, 0, 0, 0),
  ];
}

/**
 * The same on an AMD (Zen 3) host: leaf 0 stops at 10H; 0BH subleaf 0
 * zeroed; leaf 4 is reserved (all zero); TOPOEXT; 80000008H.ECX keeps the
 * host's 16 threads and 7 APIC ID bits per package (and PerfTscSize, 17:16,
 * here set); the caches are in 8000001DH (L3 shared by 16 threads) and
 * 8000001EH is zeroed.
 */
function amdSupported(vendor = 'AuthenticAMD'): CpuidEntry[] {
  return [
    vendorLeaf(0x10, vendor),
    entry(1, 0, 0x00a20f10, 0x00100800, ALL, ALL),
    entry(4, 0, 0, 0, 0, 0, 1),
    entry(0xb, 0, 0, 0, 0, 0, 1),
    entry(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
    entry(0x40000001, 0, ALL, 0, 0, 0),
    entry(0x80000000, 0, 0x80000021, 0x68747541, 0x444d4163, 0x69746e65),
    entry(0x80000001, 0, 0x00a20f10, 0, ALL, ALL),
    entry(0x80000008, 0, 0x3030, 0, 0x3700f, 0),
    entry(0x8000001d, 0, 0x00004121, 0x01c0003f, 0x3f, 0, 1),
    entry(0x8000001d, 1, 0x00004122, 0x01c0003f, 0x3f, 0, 1),
    entry(0x8000001d, 2, 0x00004143, 0x01c0003f, 0x3ff, 2, 1),
    entry(0x8000001d, 3, 0x0003c163, 0x03c0003f, 0x7fff, 1, 1),
    entry(0x8000001d, 4, 0, 0, 0, 0, 1),
    entry(0x8000001e, 0, 0, 0, 0, 0),
  ];
}

interface TestPolicy extends Omit<CpuidPolicy, 'layout' | 'userLapic'> {
  topology: Topology;
  /** The irqchip mode; only `user` has our LAPIC serve the vCPU (irqchipFor(mode).userLapic). */
  irqchip: IrqchipMode;
}

const policy = (p: Partial<TestPolicy> = {}): CpuidPolicy => {
  const { topology = { sockets: 1, cores: 4, threads: 1 }, irqchip = 'kernel', ...rest } = p;
  return { vcpu: 0, softwareVirt: false, x2apic: false, ...rest, userLapic: irqchipFor(irqchip).userLapic, layout: new CpuLayout(topology) };
};
/** One socket of `n` cores, the default topology. */
const cores = (n: number): Topology => ({ sockets: 1, cores: n, threads: 1 });
const topo = (sockets: number, coresPer: number, threads: number): Topology => ({ sockets, cores: coresPer, threads });

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
    const functions = (t: CpuidEntry[]): number[] => t.map((e) => e.function).filter((f, i, all) => all.indexOf(f) === i);
    expect(functions(out)).to.deep.equal(functions(input));
    expect(out.filter((e) => e.function !== 0xb && e.function !== 0x1f).map((e) => [e.function, e.index])).to.deep.equal(
      input.filter((e) => e.function !== 0xb && e.function !== 0x1f).map((e) => [e.function, e.index]),
    );
    for (const fn of [0, 0x40000000, 0x80000001]) expect(leaf(out, fn)).to.deep.equal(leaf(input, fn));
    for (const e of out) expect(e.flags, `0x${e.function.toString(16)}.${e.index}`).to.equal(leaf(input, e.function, e.function === 0xb || e.function === 0x1f ? 0 : e.index).flags);
  });

  it('does not mutate its input, and returns new entry objects', () => {
    for (const input of [supported(), amdSupported()]) {
      const frozen = input.map((e) => Object.freeze({ ...e }));
      const before = structuredClone(input);
      const out = vcpuCpuid(frozen, policy({ irqchip: 'user', softwareVirt: true, vcpu: 287, topology: cores(288) }));
      vcpuCpuid(input, policy({ irqchip: 'user', softwareVirt: true, vcpu: 287, topology: cores(288) }));
      expect(input).to.deep.equal(before);
      for (const e of out) expect(frozen).to.not.include(e);
    }
  });

  describe('leaf 1', () => {
    it('puts the APIC ID in EBX[31:24] and the addressable IDs per package in EBX[23:16], keeping EBX[15:0]', () => {
      const e = leaf(vcpuCpuid(supported(), policy({ vcpu: 3, topology: cores(4) })), 1);
      expect(e.ebx >>> 24).to.equal(3);
      expect((e.ebx >>> 16) & 0xff).to.equal(4);
      expect(e.ebx & 0xffff).to.equal(0x3412);
      // Two sockets of three cores: vCPU 4 is socket 1, core 1: APIC ID 0b101.
      expect(leaf(vcpuCpuid(supported(), policy({ vcpu: 4, topology: topo(2, 3, 1) })), 1).ebx >>> 24).to.equal(5);
    });

    it('keeps the low 8 bits of APIC IDs of 256 and above', () => {
      expect(leaf(vcpuCpuid(supported(), policy({ vcpu: 255, topology: cores(256) })), 1).ebx >>> 24).to.equal(255);
      expect(leaf(vcpuCpuid(supported(), policy({ vcpu: 0x12c, topology: cores(301) })), 1).ebx >>> 24).to.equal(0x2c);
      expect(leaf(vcpuCpuid(supported(), policy({ vcpu: 128, topology: cores(129) })), 1).ebx >>> 24).to.equal(128);
    });

    it('counts the addressable logical IDs of one package: a power of two, at most 255', () => {
      const cases: Array<[Topology, number]> = [
        [cores(1), 1],
        [cores(2), 2],
        [cores(3), 4],
        [cores(6), 8],
        [cores(255), 255],
        [cores(288), 255],
        [topo(4, 1, 1), 1],
        [topo(2, 2, 1), 2],
        [topo(2, 3, 2), 8],
        [topo(1, 3, 3), 16],
      ];
      for (const [topology, count] of cases) {
        expect((leaf(vcpuCpuid(supported(), policy({ topology })), 1).ebx >>> 16) & 0xff, JSON.stringify(topology)).to.equal(count);
      }
    });

    it('sets HTT when a package holds more than one logical processor and clears it otherwise', () => {
      expect(has(leaf(vcpuCpuid(supported(), policy({ topology: cores(2) })), 1).edx, EDX_HTT)).to.equal(true);
      expect(has(leaf(vcpuCpuid(supported(), policy({ topology: topo(1, 1, 2) })), 1).edx, EDX_HTT)).to.equal(true);
      const noHtt = supported().map((e) => (e.function === 1 ? { ...e, edx: e.edx & ~EDX_HTT } : e));
      expect(has(leaf(vcpuCpuid(noHtt, policy({ topology: cores(2) })), 1).edx, EDX_HTT)).to.equal(true);
      for (const topology of [cores(1), topo(4, 1, 1)]) {
        const e = leaf(vcpuCpuid(supported(), policy({ topology })), 1);
        expect(has(e.edx, EDX_HTT), JSON.stringify(topology)).to.equal(false);
        expect(e.edx).to.equal((ALL & ~EDX_HTT) >>> 0);
      }
    });

    it('sets the hypervisor bit even when the host does not report it', () => {
      const bare = supported().map((e) => (e.function === 1 ? { ...e, ecx: 0 } : e));
      for (const irqchip of ['user', 'split', 'kernel'] as const) {
        expect(has(leaf(vcpuCpuid(bare, policy({ irqchip })), 1).ecx, ECX_HYPERVISOR), irqchip).to.equal(true);
      }
    });

    // [irqchip, x2APIC MSRs reach us, our LAPIC has a TSC source, x2APIC shown, TSC deadline shown]
    const modes: Array<[IrqchipMode, boolean, boolean, boolean, boolean]> = [
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

  /** EAX[25:14] + 1 of a cache leaf: addressable IDs of the logical processors sharing it. */
  const sharing = (e: CpuidEntry): number => ((e.eax >>> 14) & 0xfff) + 1;

  describe('leaf 4 (Intel deterministic cache parameters)', () => {
    for (const [topology, field] of [[cores(1), 0], [cores(2), 1], [cores(3), 3], [cores(4), 3], [topo(2, 3, 2), 3], [cores(64), 63], [cores(65), 63], [cores(288), 63]] as const) {
      it(`says ${field + 1} addressable core IDs per package for ${JSON.stringify(topology)} and keeps the cache description`, () => {
        const input = supported();
        const out = vcpuCpuid(input, policy({ topology }));
        for (let index = 0; index < 4; index++) {
          const e = leaf(out, 4, index);
          const src = leaf(input, 4, index);
          expect(e.eax >>> 26, `subleaf ${index}`).to.equal(field);
          expect(e.eax & 0x3fff).to.equal(src.eax & 0x3fff);
          expect([e.ebx, e.ecx, e.edx]).to.deep.equal([src.ebx, src.ecx, src.edx]);
        }
      });
    }

    it('shares L1 and L2 among the threads of a core and L3 among the package', () => {
      for (const [topology, core, pkg] of [[cores(4), 1, 4], [topo(2, 2, 2), 2, 4], [topo(2, 3, 2), 2, 8], [topo(1, 1, 4), 4, 4], [cores(6000), 1, 4096]] as const) {
        const out = vcpuCpuid(supported(), policy({ topology }));
        expect([0, 1, 2, 3].map((i) => sharing(leaf(out, 4, i))), JSON.stringify(topology)).to.deep.equal([core, core, core, pkg]);
      }
    });

    it('leaves the null entry that ends the list alone', () => {
      expect(leaf(vcpuCpuid(supported(), policy({ topology: topo(2, 2, 2) })), 4, 4)).to.deep.equal(leaf(supported(), 4, 4));
      expect(leaf(vcpuCpuid(amdSupported(), policy({ topology: topo(2, 2, 2) })), 4, 0)).to.deep.equal(leaf(amdSupported(), 4, 0));
    });
  });

  describe('leaf 0x8000001d (AMD cache topology)', () => {
    it('shares L1 and L2 among the threads of a core and L3 among the package, keeping the rest', () => {
      for (const [topology, core, pkg] of [[cores(4), 1, 4], [topo(2, 2, 2), 2, 4], [topo(2, 3, 2), 2, 8]] as const) {
        const input = amdSupported();
        const out = vcpuCpuid(input, policy({ topology }));
        expect([0, 1, 2, 3].map((i) => sharing(leaf(out, 0x8000001d, i))), JSON.stringify(topology)).to.deep.equal([core, core, core, pkg]);
        for (let i = 0; i < 5; i++) {
          const e = leaf(out, 0x8000001d, i);
          const src = leaf(input, 0x8000001d, i);
          expect(e.eax & ~(0xfff << 14)).to.equal((src.eax & ~(0xfff << 14)) >>> 0);
          expect([e.ebx, e.ecx, e.edx]).to.deep.equal([src.ebx, src.ecx, src.edx]);
        }
      }
    });
  });

  for (const fn of [0xb, 0x1f]) {
    describe(`leaf 0x${fn.toString(16)} (extended topology)`, () => {
      const sub = (out: CpuidEntry[], index: number): number[] => {
        const e = leaf(out, fn, index);
        return [e.eax, e.ebx, e.ecx];
      };

      it('adds the core level and the end of the list to the lone zeroed subleaf KVM reports', () => {
        const out = vcpuCpuid(supported(), policy({ topology: cores(4) }));
        expect(out.filter((e) => e.function === fn).map((e) => e.index)).to.deep.equal([0, 1, 2]);
        for (const e of out.filter((x) => x.function === fn)) expect(e.flags & 1, 'significant index').to.equal(1);
      });

      it('replaces the subleaves a host does report with the VM\'s', () => {
        const host = [...supported().filter((e) => e.function !== fn), entry(fn, 0, 1, 2, 0x100, 9, 1), entry(fn, 1, 5, 32, 0x201, 9, 1), entry(fn, 2, 6, 64, 0x502, 9, 1), entry(fn, 3, 0, 0, 3, 9, 1)];
        const out = vcpuCpuid(host, policy({ vcpu: 2, topology: cores(4) }));
        expect(out.filter((e) => e.function === fn).map((e) => [e.index, e.eax, e.ebx, e.ecx, e.edx])).to.deep.equal([
          [0, 0, 1, 0x100, 2],
          [1, 2, 4, 0x201, 2],
          [2, 0, 0, 2, 2],
        ]);
      });

      it('reports the threads of a core at the SMT level', () => {
        expect(sub(vcpuCpuid(supported(), policy({ topology: cores(8) })), 0)).to.deep.equal([0, 1, 0x100]);
        expect(sub(vcpuCpuid(supported(), policy({ topology: topo(1, 4, 2) })), 0)).to.deep.equal([1, 2, 0x100]);
        expect(sub(vcpuCpuid(supported(), policy({ topology: topo(2, 2, 3) })), 0)).to.deep.equal([2, 3, 0x100]);
      });

      const coreLevels: Array<[Topology, number, number]> = [
        [cores(1), 0, 1],
        [cores(2), 1, 2],
        [cores(3), 2, 3],
        [cores(5), 3, 5],
        [cores(64), 6, 64],
        [cores(65), 7, 65],
        [cores(256), 8, 256],
        [cores(257), 9, 257],
        [topo(2, 2, 2), 2, 4],
        [topo(2, 3, 1), 2, 3],
        [topo(3, 3, 3), 4, 9],
      ];
      for (const [topology, shift, count] of coreLevels) {
        it(`shifts by ${shift} past the package's ${count} logical processors for ${JSON.stringify(topology)}`, () => {
          expect(sub(vcpuCpuid(supported(), policy({ topology })), 1)).to.deep.equal([shift, count, 0x201]);
        });
      }

      it('ends the enumeration at subleaf 2 with an invalid level that keeps its number', () => {
        expect(sub(vcpuCpuid(supported(), policy({ topology: cores(8) })), 2)).to.deep.equal([0, 0, 2]);
      });

      it('reports the full x2APIC ID in EDX on every subleaf, including IDs above 255', () => {
        const out = vcpuCpuid(supported(), policy({ vcpu: 299, topology: cores(300) }));
        for (let index = 0; index < 3; index++) expect(leaf(out, fn, index).edx, `subleaf ${index}`).to.equal(299);
        // Two sockets of 200 cores: vCPU 299 is socket 1 (shift 8), core 99.
        const sparse = vcpuCpuid(supported(), policy({ vcpu: 299, topology: topo(2, 200, 1) }));
        for (let index = 0; index < 3; index++) expect(leaf(sparse, fn, index).edx, `subleaf ${index}`).to.equal(256 + 99);
      });
    });
  }

  describe('leaves 0x80000008 and 0x8000001e (AMD topology)', () => {
    it('puts the package\'s APIC ID bits in 0x80000008 ECX[15:12] and its threads - 1 in ECX[7:0], keeping the rest', () => {
      for (const [topology, bits, threads] of [[cores(4), 2, 4], [cores(6), 3, 6], [topo(2, 3, 2), 3, 6], [topo(4, 1, 1), 0, 1], [cores(300), 9, 256]] as const) {
        const e = leaf(vcpuCpuid(amdSupported(), policy({ topology })), 0x80000008);
        expect((e.ecx >>> 12) & 0xf, JSON.stringify(topology)).to.equal(bits);
        expect((e.ecx & 0xff) + 1, JSON.stringify(topology)).to.equal(threads);
        expect(e.ecx & ~0xf0ff).to.equal(0x30000);
        expect([e.eax, e.ebx, e.edx]).to.deep.equal([0x3030, 0, 0]);
      }
    });

    it('gives each vCPU its extended APIC ID, core, threads per core and node (its socket) in 0x8000001e', () => {
      // Two sockets of three cores of two threads: vCPU 9 is socket 1, core 1, thread 1: APIC ID 0b1011.
      const e = leaf(vcpuCpuid(amdSupported(), policy({ vcpu: 9, topology: topo(2, 3, 2) })), 0x8000001e);
      expect(e.eax).to.equal(0b1011);
      expect(e.ebx).to.equal((1 << 8) | 1);
      expect(e.ecx).to.equal(1); // node 1, one node per package
      expect(e.edx).to.equal(0);
      expect(leaf(vcpuCpuid(amdSupported(), policy({ vcpu: 299, topology: cores(300) })), 0x8000001e).eax).to.equal(299);
    });

    it('treats a Hygon host as AMD', () => {
      const e = leaf(vcpuCpuid(amdSupported('HygonGenuine'), policy({ vcpu: 3, topology: cores(4) })), 0x8000001e);
      expect(e.eax).to.equal(3);
    });

    it('leaves them alone on an Intel host, where they are reserved', () => {
      const intel = [...supported(), entry(0x8000001e, 0, 0, 0, 0, 0)];
      const out = vcpuCpuid(intel, policy({ vcpu: 3, topology: cores(4) }));
      expect(leaf(out, 0x80000008)).to.deep.equal(leaf(intel, 0x80000008));
      expect(leaf(out, 0x8000001e)).to.deep.equal(leaf(intel, 0x8000001e));
    });
  });

  describe('the topology a Linux guest reads back', () => {
    const topologies: Topology[] = [cores(1), cores(4), cores(6), topo(2, 2, 1), topo(1, 2, 2), topo(2, 1, 2), topo(4, 1, 1), topo(2, 3, 1), topo(2, 3, 2), topo(3, 3, 3), topo(2, 2, 5), topo(2, 3, 5)];
    const hosts: Array<[string, () => CpuidEntry[], string]> = [
      ['an Intel host (leaf 0x1f)', supported, '0x1f'],
      ['an Intel host without leaf 0x1f', () => supported().filter((e) => e.function !== 0x1f).map((e) => (e.function === 0 ? { ...e, eax: 0xd } : e)), '0xb'],
      ['an Intel host without leaves 0xb and 0x1f (leaves 1 and 4)', () => supported().filter((e) => e.function !== 0x1f && e.function !== 0xb).map((e) => (e.function === 0 ? { ...e, eax: 0xa } : e)), 'legacy'],
      ['an AMD host (leaf 0xb)', amdSupported, '0xb'],
      ['an AMD host without leaf 0xb (0x80000008 and 0x8000001e)', () => amdSupported().filter((e) => e.function !== 0xb).map((e) => (e.function === 0 ? { ...e, eax: 0xa } : e)), '0x80000008'],
    ];
    for (const [host, table, source] of hosts) {
      it(`places every vCPU in its own socket, core and thread on ${host}, with per-core L1 and per-package LLC`, () => {
        for (const topology of topologies) {
          const layout = new CpuLayout(topology);
          for (let vcpu = 0; vcpu < layout.vcpus; vcpu++) {
            const what = `${JSON.stringify(topology)} vCPU ${vcpu}`;
            const d = decodeTopology(cpuidFromTable(vcpuCpuid(table(), policy({ vcpu, topology }))));
            const at = layout.position(vcpu);
            expect(d.source, what).to.equal(source);
            expect(d.apicId, what).to.equal(layout.apicId(vcpu));
            expect([d.packageId, d.coreId, d.threadId], what).to.deep.equal([at.socket, at.core, at.thread]);
            expect(d.packageShift, what).to.equal(layout.packageShift);
            expect(d.llcShift, `${what}: LLC`).to.equal(layout.packageShift);
            expect(d.l1Shift, `${what}: L1`).to.equal(layout.threadBits);
          }
        }
      });
    }
  });

  describe('leaf 0x40000001 (KVM paravirtual features)', () => {
    const shown = (p: Partial<TestPolicy>): number => leaf(vcpuCpuid(supported(), policy(p)), 0x40000001).eax;
    const without = (bits: readonly number[]): number => bits.reduce((v, b) => v & ~bit(b), ALL) >>> 0;

    it('keeps every feature with the kernel irqchip on a hardware-virtualising host', () => {
      expect(shown({ irqchip: 'kernel' })).to.equal(ALL);
      expect(shown({ irqchip: 'split' })).to.equal(ALL);
    });

    it('hides PV EOI, PV unhalt, PV IPIs and async page faults with the userspace irqchip (PV EOI where its MSR does not reach us)', () => {
      expect(shown({ irqchip: 'user' })).to.equal(without(HIDDEN_IN_USER_MODE));
      expect(shown({ irqchip: 'user', x2apic: true })).to.equal(without(HIDDEN_IN_USER_MODE));
    });

    it('offers PV EOI with the userspace irqchip where its MSR reaches our LAPIC, on any host, and only there', () => {
      expect(shown({ irqchip: 'user', pvEoi: true })).to.equal((without(HIDDEN_IN_USER_MODE) | bit(KVM_FEATURE.PV_EOI)) >>> 0);
      expect(has(shown({ irqchip: 'user', softwareVirt: true, pvEoi: true }), bit(KVM_FEATURE.PV_EOI))).to.equal(true);
      // It is our LAPIC's feature, offered even where KVM's list lacks it...
      const sparse = supported().map((e) => (e.function === 0x40000001 ? { ...e, eax: bit(KVM_FEATURE.CLOCKSOURCE2) } : e));
      expect(leaf(vcpuCpuid(sparse, policy({ irqchip: 'user', pvEoi: true })), 0x40000001).eax).to.equal(bit(KVM_FEATURE.CLOCKSOURCE2) | bit(KVM_FEATURE.PV_EOI));
      // ...and `pvEoi` says nothing about KVM's LAPIC in the other modes.
      expect(shown({ irqchip: 'kernel', pvEoi: false })).to.equal(ALL);
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
