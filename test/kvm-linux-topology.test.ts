import { expect } from 'chai';
import { runVm } from './helpers/guests.js';
import { testKernelOrSkip } from './helpers/linux.js';
import { buildInitramfs } from '../src/images/initramfs.js';
import { CpuLayout, formatTopology, type Topology } from '../src/vcpu/topology.js';
import type { IrqchipMode } from '../src/vcpu/cpuid.js';

/**
 * The test kernel (Linux 6.12) reads the topology nodevisor gives it: its
 * boot log's "CPU topo:" summary and, from a shell script run as /init,
 * each CPU's package, core, thread siblings and cache sharing in sysfs.
 * 4 vCPUs in every irqchip mode, each mode with a different split so that
 * sockets, cores and threads are each more than one somewhere; and a
 * 6-vCPU topology whose APIC IDs have gaps (0, 1, 2, 4, 5, 6).
 */
// One grep prints every file as "path:value": each fork costs ~0.2 s of emulated kernel here.
const SCRIPT = `#!/bin/sh
cd /sys/devices/system/cpu
grep -H . cpu[0-9]*/topology/physical_package_id cpu[0-9]*/topology/core_id cpu[0-9]*/topology/thread_siblings_list \\
  cpu[0-9]*/topology/core_siblings_list cpu[0-9]*/cache/index*/level cpu[0-9]*/cache/index*/type cpu[0-9]*/cache/index*/shared_cpu_list
`;

const BOOTS: { irqchip: IrqchipMode; topology: Topology }[] = [
  { irqchip: 'user', topology: { sockets: 2, cores: 2, threads: 1 } },
  { irqchip: 'split', topology: { sockets: 1, cores: 2, threads: 2 } },
  { irqchip: 'kernel', topology: { sockets: 2, cores: 1, threads: 2 } },
  { irqchip: 'user', topology: { sockets: 2, cores: 3, threads: 1 } },
];

/** A CPU list as Linux prints it (bitmap_print_to_pagebuf, "%*pbl"): ranges joined by commas. */
function cpuList(cpus: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; ) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    parts.push(i === j ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

for (const { irqchip, topology } of BOOTS) {
  const layout = new CpuLayout(topology);
  const { sockets, cores, threads } = topology;
  describe(`Linux test kernel with --topology ${formatTopology(topology)} (${layout.vcpus} vCPUs, irqchip "${irqchip}")`, function () {
    this.timeout(360000);
    let log = '';

    before(async function () {
      const kernel = testKernelOrSkip(this);
      const initrd = buildInitramfs({ busybox: true, initScript: { contents: SCRIPT } });
      const run = await runVm({ topology, irqchip, memory: '128M', kernel, initrd }, undefined, 330000);
      log = run.console;
      if (run.result.reason.kind !== 'poweroff' || !/^cpu0\/topology\/core_id:/m.test(log)) {
        throw new Error(`the guest did not report its topology (${run.result.message}); last console output:\n${log.slice(-3000)}`);
      }
    });

    it(`brings up all ${layout.vcpus} vCPUs without firmware-bug complaints about APIC IDs or topology`, () => {
      expect(log).to.match(new RegExp(`smpboot: Total of ${layout.vcpus} processors activated`));
      expect(log).not.to.match(/FW_BUG|\[Firmware Bug\]|APIC ID mismatch|Topology domain/);
    });

    it(`reports ${sockets} package(s) of ${cores} core(s) of ${threads} thread(s) in its "CPU topo" summary`, () => {
      const field = (name: string): number => Number(new RegExp(`CPU topo: ${name}:\\s+(\\d+)`).exec(log)?.[1]);
      expect(field('Max\\. logical packages'), 'packages').to.equal(sockets);
      expect(field('Max\\. threads per core'), 'threads per core').to.equal(threads);
      expect(field('Num\\. cores per package'), 'cores per package').to.equal(cores);
      expect(field('Num\\. threads per package'), 'threads per package').to.equal(cores * threads);
    });

    /** `cpuN/...` sysfs files as the script printed them. */
    const sysfs = (): Map<string, string> => new Map(Array.from(log.matchAll(/^(cpu\d+\/[a-z_/0-9]+):(.*?)\r?$/gm), (m) => [m[1]!, m[2]!]));
    /** The CPUs of `cpu`'s core and of its package, as lists. */
    const siblings = (cpu: number): { core: string; pkg: string } => {
      const all = Array.from({ length: layout.vcpus }, (_, i) => i);
      const at = layout.position(cpu);
      const where = all.map((o) => layout.position(o));
      return {
        core: cpuList(all.filter((o) => where[o]!.socket === at.socket && where[o]!.core === at.core)),
        pkg: cpuList(all.filter((o) => where[o]!.socket === at.socket)),
      };
    };

    it("shows each CPU's package, core, thread siblings and package siblings in sysfs as the topology places it", () => {
      const files = sysfs();
      for (let cpu = 0; cpu < layout.vcpus; cpu++) {
        const at = layout.position(cpu);
        const { core, pkg } = siblings(cpu);
        const read = (name: string): string | undefined => files.get(`cpu${cpu}/topology/${name}`);
        expect([read('physical_package_id'), read('core_id'), read('thread_siblings_list'), read('core_siblings_list')], `cpu${cpu}`).to.deep.equal([`${at.socket}`, `${at.core}`, core, pkg]);
      }
    });

    it('shares L1 among the threads of a core and the last-level cache among the package', () => {
      const files = sysfs();
      for (let cpu = 0; cpu < layout.vcpus; cpu++) {
        const { core, pkg } = siblings(cpu);
        const caches = [...files.keys()].filter((k) => k.startsWith(`cpu${cpu}/cache/`) && k.endsWith('/level')).map((k) => k.slice(0, -'/level'.length));
        const l1d = caches.find((c) => files.get(`${c}/level`) === '1' && files.get(`${c}/type`) === 'Data');
        const llc = caches.reduce((best, c) => (Number(files.get(`${c}/level`)) > Number(files.get(`${best}/level`)) ? c : best), caches[0]!);
        expect(files.get(`${l1d}/shared_cpu_list`), `cpu${cpu} L1d`).to.equal(core);
        expect(files.get(`${llc}/shared_cpu_list`), `cpu${cpu} LLC (L${files.get(`${llc}/level`)})`).to.equal(pkg);
      }
    });
  });
}
