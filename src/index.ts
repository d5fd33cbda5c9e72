/**
 * nodevisor's library API.
 *
 *   import { createVm } from 'nodevisor';
 *   const vm = createVm({ vcpus: 4, memory: '512M' });
 *   vm.on('console', (chunk) => process.stdout.write(chunk));
 *   await vm.start();
 *   const { reason, exitStatus } = await vm.wait();
 */
import { Vm } from './vm/vm.js';
import type { VmOptions } from './vm/options.js';

export { Vm } from './vm/vm.js';
export type { VmResult, VmStats, VcpuStats } from './vm/vm.js';
export type { VmOptions, FlatImage } from './vm/options.js';
export type { ConsoleKind } from './vm/guest-console.js';
export type { DiskOptions } from './vm/disk-images.js';
export type { BlkAio } from './virtio/blk.js';
export { parseNetSpec, type NetOptions, type TapNetOptions, type UserNetOptions, type HostForward } from './vm/net-options.js';
export type { NetStats, NetDirectionStats } from './virtio/net-stats.js';
export type { StopReason } from './devices/device.js';
export type { EntryMode } from './vcpu/boot-state.js';
export type { IrqchipMode } from './vcpu/cpuid.js';
export type { ExitProfileEntry } from './vcpu/exit-profile.js';
export type { Topology, TopologySpec } from './vcpu/topology.js';
export { ExitStatus, exitStatusOf, describeStop } from './vm/stop-reason.js';
export { NodevisorError } from './kvm/errors.js';
export { GuestMemory, GuestMemoryError } from './memory/guest-memory.js';
export { buildGuest } from './guests/build.js';
export { parseSize } from './memory/layout.js';
export * from './bench/index.js';
export { fetchDebianImage, debianImagePaths, type DebianImage } from './images/debian.js';
export { buildTestKernel, findTestKernel } from './images/test-kernel.js';
export { buildInitramfs, type InitramfsOptions, type InitramfsAddition } from './images/initramfs.js';
export { fetchBusybox } from './images/busybox.js';
export { buildDisk, type BuildDiskOptions } from './images/build-disk.js';
export { DEFAULT_BIOS } from './boot/firmware.js';

/** Creates a VM (nothing runs until `start()`). */
export function createVm(options: VmOptions = {}): Vm {
  return new Vm(options);
}

export { VERSION } from './version.js';
