/**
 * The guest's CPU topology - sockets of cores of threads - and the x86 APIC
 * IDs it implies. An APIC ID is a stack of bit fields: the thread within
 * its core, then the core within its package, then the package, each field
 * ceil(log2(count)) bits wide (Intel SDM vol. 3A, "Hierarchical Mapping of
 * Shared Resources", and CPUID leaf 0BH; AMD APM vol. 3, appendix E,
 * "Multiple Core Calculation"). When a count is not a power of two the IDs
 * have gaps: two sockets of three cores are IDs 0, 1, 2, 4, 5, 6. CPUID,
 * the MADT, the MP table, our local APICs and KVM's vCPU IDs all take their
 * IDs from a `CpuLayout`, so they agree.
 */
import { NodevisorError } from '../kvm/errors.js';

/** Sockets (packages), cores per socket, threads per core. */
export interface Topology {
  readonly sockets: number;
  readonly cores: number;
  readonly threads: number;
}

/** A topology as a user writes it: any count left out is worked out (see `resolveTopology`). */
export type TopologySpec = Partial<Topology>;

const LEVELS = ['sockets', 'cores', 'threads'] as const;

/** Bits of an APIC ID field that numbers `count` things: ceil(log2(count)). */
export const bitsFor = (count: number): number => (count <= 1 ? 0 : 32 - Math.clz32(count - 1));

/** "sockets=2,cores=3,threads=1" (only the counts given). */
export function formatTopology(t: TopologySpec): string {
  return LEVELS.filter((k) => t[k] !== undefined)
    .map((k) => `${k}=${t[k]}`)
    .join(',');
}

const topologyError = (message: string): NodevisorError => new NodevisorError('ETOPOLOGY', message);

/**
 * Parses "sockets=S,cores=C,threads=T"; any of the three may be left out.
 * Throws NodevisorError ETOPOLOGY naming what is wrong.
 */
export function parseTopology(text: string): TopologySpec {
  const spec: { -readonly [K in keyof Topology]?: number } = {};
  const usage = 'write it as sockets=S,cores=C,threads=T, e.g. sockets=2,cores=4,threads=2';
  if (text.trim() === '') throw topologyError(`the topology is empty: ${usage}`);
  for (const part of text.split(',')) {
    const m = /^\s*([a-z]+)\s*=\s*(\S*)\s*$/.exec(part);
    if (!m) throw topologyError(`"${part}" in topology "${text}" is not NAME=COUNT: ${usage}`);
    const key = LEVELS.find((k) => k === m[1]);
    if (key === undefined) throw topologyError(`unknown topology level "${m[1]}" in "${text}": the levels are ${LEVELS.join(', ')}`);
    if (spec[key] !== undefined) throw topologyError(`${key} is given twice in topology "${text}"`);
    if (!/^[0-9]+$/.test(m[2]!) || Number(m[2]) < 1) throw topologyError(`${key} must be a positive integer (got "${m[2]}" in "${text}")`);
    spec[key] = Number(m[2]);
  }
  return spec;
}

/**
 * The full topology for `vcpus` (undefined: not given) and `spec`
 * (undefined: the default, one socket of `vcpus` cores). Sockets and threads
 * left out are 1; cores left out are what the vCPU count leaves for them.
 * sockets x cores x threads must equal the vCPU count: nodevisor has no CPU
 * hot-plug, so unlike QEMU's -smp it cannot leave topology slots empty.
 * Without a vCPU count, the count is the topology's product.
 */
export function resolveTopology(vcpus: number | undefined, spec: TopologySpec | undefined): Topology {
  if (spec === undefined) return { sockets: 1, cores: vcpus ?? 1, threads: 1 };
  for (const k of LEVELS) {
    const n = spec[k];
    if (n !== undefined && (!Number.isSafeInteger(n) || n < 1)) throw topologyError(`topology ${k} must be a positive integer (got ${n})`);
  }
  const sockets = spec.sockets ?? 1;
  const threads = spec.threads ?? 1;
  let cores = spec.cores;
  if (cores === undefined) {
    if (vcpus === undefined) cores = 1;
    else if (vcpus % (sockets * threads) === 0) cores = vcpus / (sockets * threads);
    else throw topologyError(`${vcpus} vCPUs cannot be split into ${sockets} socket(s) of cores with ${threads} thread(s) each: make the vCPU count a multiple of sockets x threads (${sockets * threads}), or give cores= too`);
  }
  const t = { sockets, cores, threads };
  const product = sockets * cores * threads;
  if (vcpus !== undefined && product !== vcpus) {
    throw topologyError(
      `topology ${formatTopology(t)} has ${product} vCPUs (${sockets} x ${cores} x ${threads}) but ${vcpus} were asked for (--smp/vcpus): ` +
        'sockets x cores x threads must equal the vCPU count, as nodevisor has no CPU hot-plug to fill the rest; change one of them, or leave the vCPU count out to take it from the topology',
    );
  }
  if (bitsFor(sockets) + bitsFor(cores) + bitsFor(threads) > 32) throw topologyError(`topology ${formatTopology(t)} needs APIC IDs wider than 32 bits`);
  return t;
}

/** Where a vCPU sits in the topology. */
export interface CpuPosition {
  readonly socket: number;
  /** The core within its socket. */
  readonly core: number;
  /** The thread within its core. */
  readonly thread: number;
}

/**
 * A topology's APIC ID layout. vCPU indices count threads fastest, then
 * cores, then sockets (vCPU 0 is socket 0, core 0, thread 0: the BSP, APIC
 * ID 0), the order Linux numbers CPUs in when it reads the MADT.
 */
export class CpuLayout {
  /** APIC ID bits for the thread within a core. */
  readonly threadBits: number;
  /** APIC ID bits for the core within a package. */
  readonly coreBits: number;
  /** Where the package number starts in an APIC ID (threadBits + coreBits). */
  readonly packageShift: number;
  readonly vcpus: number;

  constructor(readonly topology: Topology) {
    this.threadBits = bitsFor(topology.threads);
    this.coreBits = bitsFor(topology.cores);
    this.packageShift = this.threadBits + this.coreBits;
    this.vcpus = topology.sockets * topology.cores * topology.threads;
  }

  /** Logical processors in one package. */
  get threadsPerPackage(): number {
    return this.topology.cores * this.topology.threads;
  }

  position(vcpu: number): CpuPosition {
    if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= this.vcpus) throw new RangeError(`no vCPU ${vcpu} in a topology of ${this.vcpus}`);
    const { cores, threads } = this.topology;
    return { socket: Math.floor(vcpu / (cores * threads)), core: Math.floor(vcpu / threads) % cores, thread: vcpu % threads };
  }

  apicId(vcpu: number): number {
    const p = this.position(vcpu);
    // Multiplication, not <<: an ID may use all 32 bits.
    return p.socket * 2 ** this.packageShift + p.core * 2 ** this.threadBits + p.thread;
  }

  /** The APIC ID of every vCPU, by index. */
  apicIds(): number[] {
    return Array.from({ length: this.vcpus }, (_, i) => this.apicId(i));
  }

  /** The highest APIC ID (IDs grow with the vCPU index). */
  get maxApicId(): number {
    return this.apicId(this.vcpus - 1);
  }

  /** True when the IDs leave gaps: some count below the socket level is not a power of two. */
  get sparse(): boolean {
    return this.maxApicId !== this.vcpus - 1;
  }
}

/** What the host and irqchip allow for APIC IDs. */
export interface ApicIdLimits {
  /** KVM_CAP_MAX_VCPU_ID: vCPU IDs (we use the APIC ID) must be below it. */
  readonly maxVcpuId: number;
  /** The guest can switch its local APICs to x2APIC mode (32-bit IDs). */
  readonly x2apic: boolean;
  /** Why x2APIC is missing, for the error message. */
  readonly x2apicMissing?: string;
}

/** Highest APIC ID an xAPIC can be addressed by: 0xFF is the broadcast ID. */
export const MAX_XAPIC_ID = 254;

/**
 * Throws ETOPOLOGY when `layout`'s APIC IDs cannot be created (KVM's vCPU
 * ID limit) or addressed (IDs above 254 need x2APIC), saying what to change.
 */
export function checkApicIds(layout: CpuLayout, limits: ApicIdLimits): void {
  const max = layout.maxApicId;
  const what = layout.sparse
    ? `topology ${formatTopology(layout.topology)} gives APIC IDs up to ${max} (cores and threads that are not powers of two leave gaps between the IDs)`
    : `${layout.vcpus} vCPUs need APIC IDs up to ${max}`;
  const fix = layout.sparse ? 'use powers of two for cores and threads, or fewer vCPUs' : 'use fewer vCPUs';
  if (max >= limits.maxVcpuId) {
    throw topologyError(`${what}, but this host's KVM only creates vCPU IDs below ${limits.maxVcpuId}: ${fix}`);
  }
  if (max > MAX_XAPIC_ID && !limits.x2apic) {
    throw topologyError(`${what}, but xAPIC IDs stop at ${MAX_XAPIC_ID} and the guest cannot have x2APIC${limits.x2apicMissing ? ` (${limits.x2apicMissing})` : ''}: ${fix}, or the split or kernel irqchip (--irqchip), whose LAPICs offer x2APIC`);
  }
}

