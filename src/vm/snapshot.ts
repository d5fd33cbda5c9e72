/**
 * Taking a snapshot of a paused, quiesced VM, and the checks that a
 * restore's options and host fit the snapshot. (Guest RAM is
 * memory/ram-file.ts, devices vm/device-specs.ts, vCPUs vcpu/arch-state.ts,
 * the irqchip mode's state its object in vm/irqchips/.)
 */
import { fdatasyncSync, fstatSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Kvm } from '../kvm/kvm.js';
import type { KvmVm } from '../kvm/vm-fd.js';
import { KvmVcpu } from '../kvm/vcpu-fd.js';
import type { CpuidEntry } from '../kvm/structs.js';
import { saveGuestRam } from '../memory/ram-file.js';
import type { AllocatedMemory } from '../memory/allocate.js';
import { Stat, STAT_WORDS, type VmControlBlock } from '../vcpu/control.js';
import { saveArchState, type VcpuArchState } from '../vcpu/arch-state.js';
import { saveDeviceStates, type DeviceSpec } from './device-specs.js';
import { irqchipFor, saveIrqchip, type IrqchipState } from './irqchip.js';
import type { OpenDisk } from './disk-images.js';
import { SNAPSHOT_FORMAT, SnapshotError, type SnapshotManifest } from './snapshot-manifest.js';
import { prepareSnapshotDir, RAM_FILE, writeSnapshotFiles } from './snapshot-files.js';
import type { VmOptions } from './options.js';
import type { NetOptions } from './net-options.js';
import type { FirmwareBoot } from './firmware-boot.js';
import { formatMac, parseMac } from '../virtio/net-mac.js';

export interface SnapshotInfo {
  dir: string;
  /** Bytes of guest RAM written (the rest were never touched). */
  ramBytes: number;
  seconds: number;
}

/** What a snapshot reads of a paused VM. */
export interface SnapshotSource {
  kvm: Kvm;
  vmFd: KvmVm;
  ram: AllocatedMemory;
  /** RAM is the VM's own memfd (not a restored snapshot's copy-on-write mapping). */
  ramShared: boolean;
  devices: readonly DeviceSpec[];
  irqchip: IrqchipState;
  control: VmControlBlock;
  stats: SharedArrayBuffer;
  disks: readonly OpenDisk[];
  cpuid: readonly CpuidEntry[][];
  vm: Omit<SnapshotManifest['vm'], 'disks'>;
  /** The VM clock's reading (held by the pause). */
  clockNs: number;
  kvmclock?: bigint;
  nodevisorVersion: string;
  cpuModel: string;
  softwareVirtualised: boolean;
  /** A firmware-booted VM's image and boot settings (manifest.vm.firmware). */
  firmware?: FirmwareBoot['settings'];
}

/** Flushes each disk and records its size and modification time, so a restore can tell whether it changed since. */
function diskRecords(disks: readonly OpenDisk[]): SnapshotManifest['vm']['disks'] {
  return disks.map((d) => {
    fdatasyncSync(d.fd);
    const st = fstatSync(d.fd);
    return { path: resolve(d.path), readonly: d.readonly, size: st.size, mtimeMs: st.mtimeMs };
  });
}

/** Writes the snapshot of a paused VM whose virtio queues are quiesced. */
export function takeSnapshot(dir: string, s: SnapshotSource): SnapshotInfo {
  const t0 = performance.now();
  prepareSnapshotDir(dir);
  const memory = s.vm.memory;
  const ramBytes = saveGuestRam(s.ram, join(dir, RAM_FILE), s.ramShared);
  const msrIndices = s.kvm.msrIndexList();
  const archOptions = {
    msrIndices,
    lapic: !irqchipFor(s.irqchip.mode).userLapic,
    xsave: s.vmFd.check('KVM_CAP_XSAVE') > 0,
    xcrs: s.vmFd.check('KVM_CAP_XCRS') > 0,
    debugregs: s.vmFd.check('KVM_CAP_DEBUGREGS') > 0,
  };
  const stats = new Float64Array(s.stats);
  const vcpus: (VcpuArchState & { waitingForSipi: boolean })[] = [];
  for (let i = 0; i < s.vm.vcpus; i++) {
    const fd = s.control.fd(i);
    if (fd < 0) throw new SnapshotError(`vCPU ${i} has no KVM vCPU (it exited)`);
    vcpus.push({ ...saveArchState(new KvmVcpu(fd), archOptions), waitingForSipi: stats[i * STAT_WORDS + Stat.WaitingForSipi] === 1 });
  }
  const manifest: SnapshotManifest = {
    format: SNAPSHOT_FORMAT,
    nodevisorVersion: s.nodevisorVersion,
    created: new Date().toISOString(),
    host: { cpuModel: s.cpuModel, softwareVirtualised: s.softwareVirtualised },
    vm: {
      ...s.vm,
      disks: diskRecords(s.disks),
      ...(s.firmware ? { firmware: { size: s.firmware.image.length, ...(s.firmware.bootOrder ? { bootOrder: [...s.firmware.bootOrder] } : {}), ...(s.firmware.bootFailWaitMs !== undefined ? { bootFailWaitMs: s.firmware.bootFailWaitMs } : {}) } } : {}),
    },
    clock: { vmNs: s.clockNs, ...(s.kvmclock !== undefined ? { kvmclock: s.kvmclock.toString() } : {}) },
    cpuid: s.cpuid.map((c) => [...c]),
    ram: { file: RAM_FILE, size: memory, dataBytes: ramBytes },
  };
  writeSnapshotFiles(dir, { manifest, devices: saveDeviceStates(s.devices), irqchip: saveIrqchip(s.irqchip, s.vmFd), vcpus, ...(s.firmware ? { firmware: s.firmware.image } : {}) });
  return { dir, ramBytes, seconds: (performance.now() - t0) / 1000 };
}

/**
 * A restore continues the snapshot's machine: options that would change it
 * are refused, each naming what the snapshot has. Options that only affect
 * the host side (console streams, I/O threads, test knobs, the KVM path)
 * are free. (NICs: `restoredNets`.)
 */
function refuse(what: string): never {
  throw new SnapshotError(`a restored VM continues the snapshot's machine: ${what}`);
}

export function checkRestoreOptions(o: VmOptions, m: SnapshotManifest, memorySize: (v: number | string) => number): void {
  for (const key of ['kernel', 'initrd', 'image', 'cmdline', 'bios', 'bootOrder'] as const) if (o[key] !== undefined) refuse(`it boots nothing, so "${key}" cannot be given`);
  if (o.vcpus !== undefined && o.vcpus !== m.vm.vcpus) refuse(`the snapshot has ${m.vm.vcpus} vCPUs, ${o.vcpus} were asked for`);
  if (o.topology !== undefined && (['sockets', 'cores', 'threads'] as const).some((k) => o.topology![k] !== undefined && o.topology![k] !== m.vm.topology[k])) {
    refuse(`the snapshot's topology is sockets=${m.vm.topology.sockets},cores=${m.vm.topology.cores},threads=${m.vm.topology.threads}`);
  }
  if (o.memory !== undefined && memorySize(o.memory) !== m.vm.memory) refuse(`the snapshot has ${m.vm.memory} bytes of RAM, ${o.memory} was asked for`);
  if (o.irqchip !== undefined && o.irqchip !== m.vm.irqchip) refuse(`the snapshot's irqchip mode is ${m.vm.irqchip}, ${o.irqchip} was asked for`);
  if (o.console !== undefined && o.console !== m.vm.console) refuse(`the snapshot's console is ${m.vm.console}, ${o.console} was asked for`);
  if (o.rng !== undefined && o.rng !== m.vm.rng) refuse(`the snapshot ${m.vm.rng ? 'has' : 'has no'} virtio-rng`);
  if (o.disks !== undefined) {
    const same = o.disks.length === m.vm.disks.length && o.disks.every((d, i) => resolve(d.path) === m.vm.disks[i]!.path && (d.readonly ?? false) === m.vm.disks[i]!.readonly);
    if (!same) refuse(`the snapshot's disks are ${m.vm.disks.map((d) => `${d.path}${d.readonly ? ',readonly' : ''}`).join(' ') || 'none'}; give none, or exactly those`);
  }
}

/**
 * The NICs a restore opens: the snapshot's, or those given, one for each.
 * A NIC's back end may change (another tap, other forwarded ports); what
 * the driver saw may not - the kind of back end (its offloads were
 * negotiated), the MAC, a tap's queue pairs.
 */
export function restoredNets(given: readonly NetOptions[] | undefined, saved: readonly NetOptions[]): NetOptions[] {
  const describe = (n: NetOptions): string => (n.kind === 'tap' ? `tap=${n.name},mac=${n.mac},queues=${n.queues}` : `user,mac=${n.mac}`);
  if (!given?.length) return saved.map((n) => ({ ...n }));
  if (given.length !== saved.length) refuse(`the snapshot has ${saved.length ? `${saved.length} NIC(s) (${saved.map(describe).join(' ')})` : 'no NICs'}, ${given.length} were given; give none, or one for each`);
  return given.map((g, i) => {
    const s = saved[i]!;
    if (g.kind !== s.kind) refuse(`NIC ${i} is ${describe(s)}: its back end may change, not its kind (the guest's driver negotiated that kind's offloads)`);
    if (g.mac !== undefined && formatMac(parseMac(g.mac)) !== formatMac(parseMac(s.mac!))) refuse(`NIC ${i}'s MAC is ${s.mac}, ${g.mac} was given`);
    if (g.kind === 'tap' && s.kind === 'tap') {
      if (g.queues !== undefined && g.queues !== s.queues) refuse(`NIC ${i} has ${s.queues} queue pairs, ${g.queues} were given`);
      return { ...g, mac: s.mac!, queues: s.queues! };
    }
    return { ...g, mac: s.mac! };
  });
}
