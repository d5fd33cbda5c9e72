import { expect } from 'chai';
import { NodevisorError } from '../src/kvm/errors.js';
import { bitsFor, checkApicIds, CpuLayout, formatTopology, parseTopology, resolveTopology } from '../src/vcpu/topology.js';

/** The ETOPOLOGY error `f` throws. */
function topologyError(f: () => unknown): NodevisorError {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).to.be.instanceOf(NodevisorError).and.have.property('code', 'ETOPOLOGY');
  return thrown as NodevisorError;
}

describe('CPU topology', () => {
  describe('parseTopology', () => {
    it('reads sockets, cores and threads in any order, any of them left out', () => {
      expect(parseTopology('sockets=2,cores=3,threads=1')).to.deep.equal({ sockets: 2, cores: 3, threads: 1 });
      expect(parseTopology('threads=2,sockets=4')).to.deep.equal({ sockets: 4, threads: 2 });
      expect(parseTopology(' cores = 8 ')).to.deep.equal({ cores: 8 });
    });

    it('says what is wrong with text it cannot read', () => {
      expect(topologyError(() => parseTopology('')).message).to.match(/empty: write it as sockets=S,cores=C,threads=T/);
      expect(topologyError(() => parseTopology('sockets=2,cores')).message).to.match(/"cores" in topology "sockets=2,cores" is not NAME=COUNT/);
      expect(topologyError(() => parseTopology('dies=2')).message).to.match(/unknown topology level "dies" .*the levels are sockets, cores, threads/);
      expect(topologyError(() => parseTopology('cores=2,cores=4')).message).to.match(/cores is given twice/);
      for (const bad of ['0', '-1', '1.5', 'two', '', '0x4']) {
        expect(topologyError(() => parseTopology(`threads=${bad}`)).message, bad).to.match(/threads must be a positive integer/);
      }
    });

    it('writes back what it reads', () => {
      expect(formatTopology(parseTopology('sockets=2,cores=3,threads=1'))).to.equal('sockets=2,cores=3,threads=1');
      expect(formatTopology({ threads: 2 })).to.equal('threads=2');
    });
  });

  describe('resolveTopology', () => {
    it('defaults to one socket of one core per vCPU', () => {
      expect(resolveTopology(4, undefined)).to.deep.equal({ sockets: 1, cores: 4, threads: 1 });
      expect(resolveTopology(undefined, undefined)).to.deep.equal({ sockets: 1, cores: 1, threads: 1 });
    });

    it('takes the vCPU count from the topology when it is not given', () => {
      expect(resolveTopology(undefined, { sockets: 2, cores: 3, threads: 2 })).to.deep.equal({ sockets: 2, cores: 3, threads: 2 });
      expect(resolveTopology(undefined, { sockets: 2 })).to.deep.equal({ sockets: 2, cores: 1, threads: 1 });
    });

    it('fills in left-out sockets and threads with 1 and left-out cores with what the vCPU count leaves', () => {
      expect(resolveTopology(8, { threads: 2 })).to.deep.equal({ sockets: 1, cores: 4, threads: 2 });
      expect(resolveTopology(12, { sockets: 2, threads: 2 })).to.deep.equal({ sockets: 2, cores: 3, threads: 2 });
      expect(resolveTopology(4, { cores: 4 })).to.deep.equal({ sockets: 1, cores: 4, threads: 1 });
    });

    it('refuses a topology whose product is not the vCPU count, saying both and what to change', () => {
      const e = topologyError(() => resolveTopology(4, { sockets: 2, cores: 3, threads: 1 }));
      expect(e.message).to.match(/^topology sockets=2,cores=3,threads=1 has 6 vCPUs \(2 x 3 x 1\) but 4 were asked for \(--smp\/vcpus\): sockets x cores x threads must equal the vCPU count/);
      expect(e.message).to.match(/no CPU hot-plug/);
      expect(e.message).to.match(/leave the vCPU count out to take it from the topology$/);
      expect(topologyError(() => resolveTopology(2, { sockets: 1, cores: 1, threads: 4 })).message).to.match(/has 4 vCPUs .* but 2 were asked for/);
    });

    it('refuses a vCPU count that the given sockets and threads do not divide', () => {
      expect(topologyError(() => resolveTopology(6, { sockets: 4 })).message).to.match(/6 vCPUs cannot be split into 4 socket\(s\) of cores with 1 thread\(s\) each: make the vCPU count a multiple of sockets x threads \(4\)/);
    });

    it('refuses counts that are not positive integers', () => {
      for (const bad of [0, -2, 1.5, NaN]) expect(topologyError(() => resolveTopology(undefined, { cores: bad })).message).to.match(/cores must be a positive integer/);
    });

    it('refuses a topology whose APIC IDs need more than 32 bits', () => {
      expect(topologyError(() => resolveTopology(undefined, { sockets: 2 ** 12 + 1, cores: 2 ** 10 + 1, threads: 2 ** 9 + 1 })).message).to.match(/wider than 32 bits/);
    });
  });

  describe('CpuLayout', () => {
    const layout = (sockets: number, cores: number, threads: number): CpuLayout => new CpuLayout({ sockets, cores, threads });

    it('needs ceil(log2(n)) bits for n of a kind', () => {
      expect([1, 2, 3, 4, 5, 8, 9, 255, 256, 257].map(bitsFor)).to.deep.equal([0, 1, 2, 2, 3, 3, 4, 8, 8, 9]);
    });

    it('numbers vCPUs threads first, then cores, then sockets', () => {
      const l = layout(2, 3, 2);
      expect(l.vcpus).to.equal(12);
      expect(l.position(0)).to.deep.equal({ socket: 0, core: 0, thread: 0 });
      expect(l.position(1)).to.deep.equal({ socket: 0, core: 0, thread: 1 });
      expect(l.position(2)).to.deep.equal({ socket: 0, core: 1, thread: 0 });
      expect(l.position(7)).to.deep.equal({ socket: 1, core: 0, thread: 1 });
      expect(l.position(11)).to.deep.equal({ socket: 1, core: 2, thread: 1 });
      expect(() => l.position(12)).to.throw(RangeError);
    });

    it('gives dense APIC IDs when every count below the sockets is a power of two', () => {
      const dense: Array<[number, number, number]> = [[1, 4, 1], [4, 1, 1], [2, 2, 2], [3, 4, 2], [1, 6, 1], [2, 1, 4]];
      for (const t of dense) {
        const l = layout(...t);
        expect(l.apicIds(), JSON.stringify(t)).to.deep.equal(Array.from({ length: l.vcpus }, (_, i) => i));
        expect(l.sparse).to.equal(false);
      }
    });

    it('leaves gaps in the APIC IDs for cores or threads that are not a power of two', () => {
      expect(layout(2, 3, 1).apicIds()).to.deep.equal([0, 1, 2, 4, 5, 6]);
      expect(layout(1, 2, 3).apicIds()).to.deep.equal([0, 1, 2, 4, 5, 6]);
      expect(layout(2, 3, 3).apicIds()).to.deep.equal([0, 1, 2, 4, 5, 6, 8, 9, 10, 16, 17, 18, 20, 21, 22, 24, 25, 26]);
      expect(layout(2, 3, 1).sparse).to.equal(true);
      expect(layout(2, 3, 1).maxApicId).to.equal(6);
      const l = layout(2, 3, 2);
      expect([l.threadBits, l.coreBits, l.packageShift, l.threadsPerPackage]).to.deep.equal([1, 2, 3, 6]);
    });

    it('uses all 32 bits of an APIC ID without going negative', () => {
      const l = new CpuLayout({ sockets: 2, cores: 2 ** 31, threads: 1 });
      expect(l.apicId(l.vcpus - 1)).to.equal(2 ** 32 - 1);
    });
  });

  describe('checkApicIds', () => {
    const roomy = { maxVcpuId: 4096, x2apic: true };

    it('accepts IDs below KVM\'s vCPU ID limit, and IDs from 255 where the guest has x2APIC', () => {
      checkApicIds(new CpuLayout(resolveTopology(255, undefined)), { maxVcpuId: 255, x2apic: false });
      checkApicIds(new CpuLayout(resolveTopology(288, undefined)), roomy);
      checkApicIds(new CpuLayout({ sockets: 2, cores: 3, threads: 1 }), { maxVcpuId: 7, x2apic: false });
    });

    it('refuses IDs that KVM cannot create, naming the highest ID, the limit and the gaps', () => {
      const e = topologyError(() => checkApicIds(new CpuLayout({ sockets: 2, cores: 3, threads: 1 }), { maxVcpuId: 6, x2apic: true }));
      expect(e.message).to.equal(
        "topology sockets=2,cores=3,threads=1 gives APIC IDs up to 6 (cores and threads that are not powers of two leave gaps between the IDs), but this host's KVM only creates vCPU IDs below 6: use powers of two for cores and threads, or fewer vCPUs",
      );
    });

    it('refuses IDs above 254 without x2APIC, for many vCPUs and for a topology whose gaps push the IDs up', () => {
      const many = topologyError(() => checkApicIds(new CpuLayout(resolveTopology(256, undefined)), { maxVcpuId: 4096, x2apic: false, x2apicMissing: 'because' }));
      expect(many.message).to.equal('256 vCPUs need APIC IDs up to 255, but xAPIC IDs stop at 254 and the guest cannot have x2APIC (because): use fewer vCPUs, or the split or kernel irqchip (--irqchip), whose LAPICs offer x2APIC');
      // 28 sockets of 3 cores of 3 threads: 252 vCPUs, 16 IDs per package.
      const sparse = topologyError(() => checkApicIds(new CpuLayout({ sockets: 28, cores: 3, threads: 3 }), { maxVcpuId: 4096, x2apic: false }));
      expect(sparse.message).to.match(/^topology sockets=28,cores=3,threads=3 gives APIC IDs up to 442 \(cores and threads that are not powers of two leave gaps between the IDs\), but xAPIC IDs stop at 254 .*: use powers of two for cores and threads, or fewer vCPUs, or the split or kernel irqchip/);
    });
  });
});
