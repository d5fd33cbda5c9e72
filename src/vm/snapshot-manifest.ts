/**
 * A snapshot directory's manifest (manifest.json) and the checks a restore
 * makes before it changes anything: the format, the files, the host's CPU
 * features against what the guest saw, and the disks against what they
 * were when the snapshot was taken.
 *
 *   manifest.json   this file, written last (a directory without it is an
 *                   interrupted snapshot)
 *   ram.img         guest RAM, sparse (memory/ram-file.ts)
 *   devices.json    every device's state by name and layout version
 *   irqchip.json    the irqchip mode's state
 *   vcpu-N.json     vCPU N's architectural state (vcpu/arch-state.ts)
 */
import { statSync } from 'node:fs';
import type { CpuidEntry } from '../kvm/structs.js';
import { NodevisorError } from '../kvm/errors.js';
import type { NetOptions } from './net-options.js';

export const SNAPSHOT_FORMAT = 'nodevisor-snapshot/1';

export interface SnapshotDisk {
  path: string;
  readonly: boolean;
  size: number;
  mtimeMs: number;
}

export interface SnapshotManifest {
  format: typeof SNAPSHOT_FORMAT;
  nodevisorVersion: string;
  created: string;
  host: { cpuModel: string; softwareVirtualised: boolean };
  vm: {
    vcpus: number;
    /** Sockets, cores and threads: the APIC IDs follow from it. */
    topology: { sockets: number; cores: number; threads: number };
    memory: number;
    irqchip: 'user' | 'split' | 'kernel';
    console: 'serial' | 'virtio';
    rng: boolean;
    disks: SnapshotDisk[];
    /**
     * The NICs as their options, resolved: each MAC, a tap's queue pairs.
     * Absent in snapshots of VMs from before NICs could be saved (none).
     */
    nets?: NetOptions[];
    /**
     * A VM booted through firmware: its image's size (the image is
     * firmware.bin) and what its fw_cfg said of the boot order, which a
     * restore gives it again.
     */
    firmware?: { size: number; bootOrder?: number[]; bootFailWaitMs?: number };
    x2apic: boolean;
  };
  /** The VM clock's reading (sync/vm-clock.ts) and kvmclock when the snapshot was taken. */
  clock: { vmNs: number; kvmclock?: string };
  /** What each vCPU's CPUID said: the features the guest may be using. */
  cpuid: CpuidEntry[][];
  ram: { file: string; size: number; dataBytes: number };
}

/** A snapshot that cannot be written or restored; the message says why. */
export class SnapshotError extends NodevisorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ESNAPSHOT', message, options);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a parsed manifest's shape; throws a SnapshotError naming the first problem. */
export function checkManifest(doc: unknown, dir: string): SnapshotManifest {
  const bad = (what: string): never => {
    throw new SnapshotError(`${dir} is not a usable snapshot: ${what}`);
  };
  if (!isObject(doc)) return bad('manifest.json is not a JSON object');
  if (doc.format !== SNAPSHOT_FORMAT) return bad(`manifest.json has format ${JSON.stringify(doc.format)}, this nodevisor reads ${SNAPSHOT_FORMAT}`);
  const vm = doc.vm;
  if (!isObject(vm)) return bad('manifest.json has no "vm" section');
  if (!Number.isInteger(vm.vcpus) || (vm.vcpus as number) < 1) return bad('manifest.json has no valid vCPU count');
  if (!Number.isSafeInteger(vm.memory) || (vm.memory as number) <= 0) return bad('manifest.json has no valid memory size');
  const t = vm.topology as Record<string, unknown> | undefined;
  if (!isObject(t) || !['sockets', 'cores', 'threads'].every((k) => Number.isInteger(t[k]) && (t[k] as number) >= 1)) return bad('manifest.json has no valid CPU topology');
  if (!['user', 'split', 'kernel'].includes(vm.irqchip as string)) return bad('manifest.json has no valid irqchip mode');
  if (!Array.isArray(vm.disks)) return bad('manifest.json has no disk list');
  // The NICs' options are checked in full when the restore opens them (openNics), as a run's are.
  if (vm.nets !== undefined && (!Array.isArray(vm.nets) || !vm.nets.every((n) => isObject(n) && typeof n.mac === 'string' && (n.kind === 'user' || (n.kind === 'tap' && typeof n.name === 'string' && Number.isInteger(n.queues)))))) {
    return bad('manifest.json has no valid NIC list');
  }
  const fw = vm.firmware;
  if (fw !== undefined && (!isObject(fw) || !Number.isSafeInteger(fw.size) || (fw.bootOrder !== undefined && !(Array.isArray(fw.bootOrder) && fw.bootOrder.every((i) => Number.isInteger(i)))) || (fw.bootFailWaitMs !== undefined && !Number.isInteger(fw.bootFailWaitMs)))) {
    return bad('manifest.json has no valid firmware entry');
  }
  const clock = doc.clock;
  if (!isObject(clock) || typeof clock.vmNs !== 'number') return bad('manifest.json has no clock reading');
  if (!Array.isArray(doc.cpuid) || doc.cpuid.length !== vm.vcpus) return bad('manifest.json has no CPUID for every vCPU');
  const ram = doc.ram;
  if (!isObject(ram) || typeof ram.file !== 'string' || ram.size !== vm.memory) return bad('manifest.json has no valid RAM file entry');
  return doc as unknown as SnapshotManifest;
}

/** Feature registers whose bits a guest may rely on, by leaf and subleaf. */
const FEATURE_REGISTERS: readonly { fn: number; index: number; regs: readonly ('eax' | 'ebx' | 'ecx' | 'edx')[] }[] = [
  { fn: 1, index: 0, regs: ['ecx', 'edx'] },
  { fn: 7, index: 0, regs: ['ebx', 'ecx', 'edx'] },
  { fn: 7, index: 1, regs: ['eax'] },
  { fn: 0xd, index: 1, regs: ['eax'] },
  { fn: 0x80000001, index: 0, regs: ['ecx', 'edx'] },
  { fn: 0x80000007, index: 0, regs: ['edx'] },
];

/** Names of well-known feature bits, for the refusal message. */
const FEATURE_NAMES: Record<string, string> = {
  '1.ecx.0': 'sse3', '1.ecx.9': 'ssse3', '1.ecx.12': 'fma', '1.ecx.13': 'cx16', '1.ecx.19': 'sse4.1', '1.ecx.20': 'sse4.2', '1.ecx.22': 'movbe',
  '1.ecx.23': 'popcnt', '1.ecx.25': 'aes', '1.ecx.26': 'xsave', '1.ecx.28': 'avx', '1.ecx.29': 'f16c', '1.ecx.30': 'rdrand',
  '1.edx.25': 'sse', '1.edx.26': 'sse2', '7.ebx.3': 'bmi1', '7.ebx.5': 'avx2', '7.ebx.8': 'bmi2', '7.ebx.9': 'erms', '7.ebx.16': 'avx512f',
  '7.ebx.18': 'rdseed', '7.ebx.19': 'adx', '7.ebx.29': 'sha', '7.ecx.22': 'rdpid', '80000001.ecx.5': 'lzcnt', '80000001.edx.27': 'rdtscp',
};

const key = (fn: number, index: number): string => `${fn}/${index}`;

/**
 * The features the guest saw (in `saved`, per vCPU) that this host would
 * not give it now (`now`): restoring would let the guest execute
 * instructions the CPU lacks. Empty when compatible.
 */
export function missingCpuFeatures(saved: readonly CpuidEntry[], now: readonly CpuidEntry[]): string[] {
  const byLeaf = new Map(now.map((e) => [key(e.function, e.index), e]));
  const missing: string[] = [];
  for (const f of FEATURE_REGISTERS) {
    const s = saved.find((e) => e.function === f.fn && e.index === f.index);
    if (!s) continue;
    const n = byLeaf.get(key(f.fn, f.index));
    for (const reg of f.regs) {
      const lost = (s[reg] >>> 0) & ~((n?.[reg] ?? 0) >>> 0);
      for (let bit = 0; bit < 32; bit++) {
        if (!((lost >>> bit) & 1)) continue;
        const id = `${f.fn.toString(16)}.${reg}.${bit}`;
        missing.push(FEATURE_NAMES[id] ?? `CPUID 0x${f.fn.toString(16)}${f.index ? `.${f.index}` : ''} ${reg} bit ${bit}`);
      }
    }
  }
  return missing;
}

/** Why a disk may not be used with this snapshot, or undefined when it is unchanged. */
export function diskChange(d: SnapshotDisk): string | undefined {
  let st;
  try {
    st = statSync(d.path);
  } catch {
    return `disk ${d.path} is gone`;
  }
  if (st.size !== d.size) return `disk ${d.path} changed since the snapshot (size ${d.size} -> ${st.size} bytes)`;
  if (Math.abs(st.mtimeMs - d.mtimeMs) > 1) return `disk ${d.path} was modified since the snapshot (${new Date(d.mtimeMs).toISOString()} -> ${new Date(st.mtimeMs).toISOString()})`;
  return undefined;
}
