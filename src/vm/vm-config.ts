import { NodevisorError } from '../kvm/errors.js';
import { parseSize } from '../memory/layout.js';
import { CpuLayout, resolveTopology, type Topology } from '../vcpu/topology.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import { CONSOLE_KINDS, type ConsoleKind } from './guest-console.js';
import { irqchipFor, type Irqchip } from './irqchip.js';
import { DEFAULT_MEMORY, IRQCHIP_MODES, type VmOptions } from './options.js';
import { readSnapshot, type SnapshotContents } from './snapshot-files.js';
import { SnapshotError } from './snapshot-manifest.js';
import { checkRestoreOptions, restoredNets } from './snapshot.js';
import type { NetOptions } from './net-options.js';
import { MAX_IO_THREADS, defaultIoThreads } from './threads/blk-io-pool.js';
import { KVM_HALT_POLL_NS } from '../sync/poll-window.js';
import { availableParallelism } from 'node:os';

/** Longer polls than this would be a mistake, not a tuning. */
export const MAX_POLL_NS = 10_000_000;

/** QEMU's default iothread poll-max-ns. */
export const QEMU_IO_POLL_NS = 32_768;

/**
 * A poll limit's default (KVM_HALT_POLL_NS for halts, QEMU_IO_POLL_NS for
 * I/O threads): `limitNs` where every vCPU can have a core and one is left
 * for the VMM's threads, none when vCPUs share cores - a polling thread
 * holds a core.
 */
export function defaultPollNs(limitNs: number, vcpus: number, hostCpus = availableParallelism()): number {
  return vcpus < hostCpus ? limitNs : 0;
}

function pollLimit(name: string, value: number | undefined, fallback: number): number {
  const ns = value ?? fallback;
  if (!Number.isInteger(ns) || ns < 0 || ns > MAX_POLL_NS) throw new NodevisorError('EPOLLNS', `${name} must be an integer from 0 to ${MAX_POLL_NS} (got ${value})`);
  return ns;
}

/**
 * A VM's configuration: the options checked and resolved into what the
 * machine will be, before anything is opened or allocated. A restore takes
 * the machine's shape (vCPUs, topology, RAM, irqchip mode, console) from
 * the snapshot, and refuses options that would change it.
 */
export interface VmConfig {
  readonly options: VmOptions;
  readonly vcpus: number;
  /** Sockets, cores per socket, threads per core. */
  readonly topology: Topology;
  /** APIC IDs and CPUID topology per vCPU. */
  readonly cpus: CpuLayout;
  readonly memorySize: number;
  readonly irqchip: IrqchipMode;
  /** What the irqchip mode does, as one object (irqchips/). */
  readonly irqchipMode: Irqchip;
  /** The device that is the guest's console. */
  readonly consoleKind: ConsoleKind;
  /** I/O threads per virtio-blk disk. */
  readonly ioThreads: number;
  /** The longest a halted vCPU polls before sleeping (userspace LAPIC), in ns. */
  readonly haltPollNs: number;
  /** The longest an idle virtio-blk I/O thread polls its queues before sleeping, in ns. */
  readonly ioPollNs: number;
  /** The NICs to open: the options', or on a restore the snapshot's (each may have a new back end of its kind). */
  readonly nets: readonly NetOptions[];
  /** The snapshot being restored (`restore` option), read and checked. */
  readonly restoring?: SnapshotContents;
}

export function resolveVmConfig(options: VmOptions): VmConfig {
  const sizeOf = (mem: number | string): number => {
    try {
      return typeof mem === 'number' ? mem : parseSize(mem);
    } catch (e) {
      throw new NodevisorError('EMEMORY', (e as Error).message);
    }
  };
  let restoring: SnapshotContents | undefined;
  if (options.restore !== undefined) {
    restoring = readSnapshot(options.restore);
    checkRestoreOptions(options, restoring.manifest, sizeOf);
  }
  const saved = restoring?.manifest.vm;
  if (options.vcpus !== undefined && (!Number.isInteger(options.vcpus) || options.vcpus < 1)) throw new NodevisorError('EVCPUS', `the vCPU count must be a positive integer (got ${options.vcpus})`);
  // A restored VM keeps the snapshot's topology, and with it every APIC ID.
  const topology = saved?.topology ?? resolveTopology(saved?.vcpus ?? options.vcpus, options.topology);
  const cpus = new CpuLayout(topology);
  if (saved && cpus.vcpus !== saved.vcpus) throw new SnapshotError(`the snapshot's topology (${JSON.stringify(topology)}) does not give its ${saved.vcpus} vCPUs`);
  const memorySize = saved?.memory ?? sizeOf(options.memory ?? DEFAULT_MEMORY);
  const irqchip = saved?.irqchip ?? options.irqchip ?? 'user';
  if (!IRQCHIP_MODES.includes(irqchip)) throw new NodevisorError('EIRQCHIP', `unknown irqchip mode "${irqchip}": use one of ${IRQCHIP_MODES.join(', ')}`);
  const ioThreads = options.ioThreads ?? defaultIoThreads();
  if (!Number.isInteger(ioThreads) || ioThreads < 1 || ioThreads > MAX_IO_THREADS) {
    throw new NodevisorError('EIOTHREADS', `ioThreads must be an integer from 1 to ${MAX_IO_THREADS} (got ${options.ioThreads})`);
  }
  const haltPollNs = pollLimit('haltPollNs', options.haltPollNs, defaultPollNs(KVM_HALT_POLL_NS, cpus.vcpus));
  const ioPollNs = pollLimit('ioPollNs', options.ioPollNs, defaultPollNs(QEMU_IO_POLL_NS, cpus.vcpus));
  const consoleKind = saved?.console ?? options.console ?? 'serial';
  if (!CONSOLE_KINDS.includes(consoleKind)) throw new NodevisorError('ECONSOLE', `unknown console "${consoleKind}": use one of ${CONSOLE_KINDS.join(', ')}`);
  const nets = saved ? restoredNets(options.nets, saved.nets ?? []) : (options.nets ?? []);
  return { options, vcpus: cpus.vcpus, topology, cpus, memorySize, irqchip, irqchipMode: irqchipFor(irqchip), consoleKind, ioThreads, haltPollNs, ioPollNs, nets, ...(restoring ? { restoring } : {}) };
}
