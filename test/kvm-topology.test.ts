import { expect } from 'chai';
import { runVm, kitImage, type GuestRun } from './helpers/guests.js';
import { decodeTopology, type CpuidFn, type Regs } from './helpers/topology-decode.js';
import { CpuLayout, resolveTopology, type TopologySpec } from '../src/vcpu/topology.js';
import { createVm, NodevisorError, type IrqchipMode, type Vm } from '../src/index.js';
import { Kvm } from '../src/kvm/kvm.js';

/**
 * The CPU topology as guests see it under real KVM, in every irqchip mode:
 * CPUID read in the guest (ring 0, as a kernel reads it), the LAPIC ID
 * registers, and interrupts addressed by APIC ID - IPIs, IOAPIC routes and
 * INIT-SIPI-SIPI - with topologies whose APIC IDs are dense and sparse.
 */
const RESULTS = 0x1000000;
const MODES: IrqchipMode[] = ['user', 'split', 'kernel'];

const words = (vm: Vm, at: number, n: number): Uint32Array => new Uint32Array(vm.memory.read(RESULTS + at * 4, n * 4).buffer);

/** What vCPU `i` of a cpuid-topology run recorded: its LAPIC ID, the IPIs it took and CPUID as it saw it. */
function recorded(vm: Vm, i: number): { lapicId: number; ipis: number; cpuid: CpuidFn } {
  const base = 64 + i * 256;
  const [lapicId, ipis, probes] = words(vm, base, 3);
  const table = new Map<string, Regs>();
  const raw = words(vm, base + 3, probes! * 6);
  for (let p = 0; p < probes!; p++) {
    const [leaf, sub, eax, ebx, ecx, edx] = raw.subarray(p * 6, p * 6 + 6);
    table.set(`${leaf}.${sub}`, { eax: eax!, ebx: ebx!, ecx: ecx!, edx: edx! });
  }
  const cpuid: CpuidFn = (leaf, sub) => {
    const r = table.get(`${leaf}.${sub}`);
    if (!r) throw new Error(`the guest did not read CPUID 0x${leaf.toString(16)}.${sub}`);
    return r;
  };
  return { lapicId: lapicId!, ipis: ipis!, cpuid };
}

const describeSpec = (vcpus: number, spec?: TopologySpec): string => (spec ? `${JSON.stringify(spec)}` : `the default topology of ${vcpus} vCPUs`);

for (const mode of MODES) {
  describe(`CPU topology under KVM, irqchip "${mode}"`, function () {
    this.timeout(120000);

    const cases: Array<{ vcpus?: number; spec?: TopologySpec }> = [{ vcpus: 4 }, { spec: { sockets: 2, cores: 3, threads: 1 } }, { spec: { cores: 2, threads: 2 } }];
    for (const { vcpus, spec } of cases) {
      const layout = new CpuLayout(resolveTopology(vcpus, spec));
      describe(`with ${describeSpec(layout.vcpus, spec)} (APIC IDs ${layout.apicIds().join(', ')})`, () => {
        let run: GuestRun;
        before(async () => {
          run = await runVm({ image: kitImage('cpuid-topology'), vcpus, topology: spec, irqchip: mode, memory: '64M' });
        });

        it('runs the probe on every vCPU and delivers an IPI to each one addressed by its APIC ID', () => {
          expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code: 0x44 });
          expect(words(run.vm, 0, 2)[0]).to.equal(layout.vcpus);
          for (let i = 1; i < layout.vcpus; i++) expect(recorded(run.vm, i).ipis, `vCPU ${i}`).to.equal(1);
          expect(recorded(run.vm, 0).ipis).to.equal(0);
        });

        it('gives each vCPU its topology APIC ID in the LAPIC ID register and in CPUID leaves 1 and 0xb', () => {
          for (let i = 0; i < layout.vcpus; i++) {
            const r = recorded(run.vm, i);
            expect(r.lapicId, `vCPU ${i} LAPIC ID`).to.equal(layout.apicId(i));
            expect(r.cpuid(1, 0).ebx >>> 24, `vCPU ${i} CPUID.1`).to.equal(layout.apicId(i));
            expect(r.cpuid(0xb, 0).edx, `vCPU ${i} CPUID.0xb`).to.equal(layout.apicId(i));
          }
        });

        it('lets each vCPU read its socket, core and thread, and per-package LLC, from CPUID as Linux does', () => {
          for (let i = 0; i < layout.vcpus; i++) {
            const d = decodeTopology(recorded(run.vm, i).cpuid);
            const at = layout.position(i);
            expect([d.packageId, d.coreId, d.threadId], `vCPU ${i} (decoded from ${d.source} on ${d.vendor})`).to.deep.equal([at.socket, at.core, at.thread]);
            expect(d.llcShift, `vCPU ${i} LLC`).to.equal(layout.packageShift);
          }
        });
      });
    }

    const sparse: TopologySpec = { sockets: 2, cores: 3, threads: 1 }; // APIC IDs 0, 1, 2, 4, 5, 6

    it('brings up the vCPUs of a topology with gaps between APIC IDs by INIT-SIPI-SIPI', async () => {
      const run = await runVm({ image: kitImage('smp-boot', { startup: 'sipi' }), topology: sparse, irqchip: mode, memory: '128M' });
      expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code: 0x42 });
      const r = words(run.vm, 0, 16 + 8);
      expect(r[0]).to.equal(5);
      expect(Array.from(r.subarray(17, 24))).to.deep.equal([2, 3, 0, 5, 6, 7, 0]); // id + 1 for APs 1, 2, 4, 5, 6
    });

    it('routes an IOAPIC interrupt to the vCPU whose APIC ID its entry names, past a gap (APIC 6 = vCPU 5)', async () => {
      const run = await runVm({ image: kitImage('uart-irq', { defines: { TARGET: 6 } }), topology: sparse, irqchip: mode }, async (vm) => {
        const end = Date.now() + 30000;
        while (vm.memory.readU32(RESULTS + 4) !== 1) {
          if (Date.now() > end) throw new Error('the guest did not set up its interrupt');
          await new Promise((r) => setTimeout(r, 5));
        }
        vm.sendConsoleInput(Buffer.from('abc'));
      });
      expect(run.result.reason).to.deep.equal({ kind: 'debug-exit', code: 0x70 });
      expect(Array.from(words(run.vm, 16, 3))).to.deep.equal([0x61, 0x62, 0x63].map((b) => (6 << 8) | b));
    });
  });
}

describe('createVm with a topology', function () {
  this.timeout(60000);

  it('takes the vCPU count from the topology, and shows the topology it settled on', () => {
    const vm = createVm({ topology: { sockets: 2, cores: 3 } });
    expect(vm.vcpus).to.equal(6);
    expect(vm.topology).to.deep.equal({ sockets: 2, cores: 3, threads: 1 });
    expect(createVm({ vcpus: 8, topology: { threads: 2 } }).topology).to.deep.equal({ sockets: 1, cores: 4, threads: 2 });
    expect(createVm({ vcpus: 3 }).topology).to.deep.equal({ sockets: 1, cores: 3, threads: 1 });
  });

  it('refuses a topology that does not make the vCPU count, before touching KVM', () => {
    expect(() => createVm({ vcpus: 4, topology: { sockets: 2, cores: 3, threads: 1 } }))
      .to.throw(NodevisorError, /has 6 vCPUs \(2 x 3 x 1\) but 4 were asked for/)
      .with.property('code', 'ETOPOLOGY');
  });

  it('refuses to start a userspace-LAPIC guest whose APIC IDs pass 254 where it cannot offer x2APIC', async function () {
    // Elsewhere the userspace LAPIC offers x2APIC and the guest would start.
    if (!Kvm.isSoftwareVirtualised()) this.skip();
    const err = (await createVm({ topology: { sockets: 28, cores: 3, threads: 3 }, irqchip: 'user' })
      .start()
      .catch((e: unknown) => e)) as NodevisorError;
    expect(err.code).to.equal('ETOPOLOGY');
    expect(err.message).to.match(/^topology sockets=28,cores=3,threads=3 gives APIC IDs up to 442 .* xAPIC IDs stop at 254 .*: use powers of two for cores and threads, or fewer vCPUs, or the split or kernel irqchip/);
  });
});
