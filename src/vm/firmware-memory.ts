import { native, k } from '../kvm/addon.js';
import type { KvmVm } from '../kvm/vm-fd.js';
import type { AllocatedMemory } from '../memory/allocate.js';
import { GuestMemory } from '../memory/guest-memory.js';
import { PAM_AREA_END, PAM_AREA_START, PAM_SEGMENTS, PamMode, I440fxPmc, type PamState } from '../devices/i440fx-pam.js';
import type { FirmwareImage } from '../boot/firmware.js';
import { applyPamModes, type PamSlotsSpec } from './pam-slots.js';

/** What the host bridge needs to run the PAM registers in every thread (structured-cloneable). */
export interface PamSpec {
  readonly state: PamState;
  readonly slots: PamSlotsSpec;
  /** The firmware image, for accesses to the PAM area that exit. */
  readonly rom: SharedArrayBuffer;
}

export interface FirmwareMemory {
  readonly pam: PamSpec;
  /** The memfd behind the image (closed with the VM). */
  readonly fd: number;
}

/**
 * Guest memory for a firmware boot. RAM gets the usual slots except for
 * the PAM area (0xC0000-0xFFFFF), which gets one slot per PAM segment; the
 * image is mapped read-only (KVM_MEM_READONLY: a write exits and is
 * dropped) so that it ends at 4 GiB, where the reset vector is; its last
 * 256 KiB are what the PAM area shows until the firmware programs the PAM
 * registers, and are also copied into the RAM beneath, so that the
 * shadow copy is there even for firmware that turns DRAM on without
 * copying (`shadow`; not when restoring a snapshot, whose RAM holds the
 * firmware's own copy).
 */
export function mapFirmwareMemory(vm: KvmVm, ram: AllocatedMemory, image: FirmwareImage, o: { shadow: boolean } = { shadow: true }): FirmwareMemory {
  let slot = 0;
  for (const r of ram.regions) {
    if (r.gpa !== 0) {
      vm.setUserMemoryRegion(slot++, r.gpa, r.size, r.hostAddress);
      continue;
    }
    // Region 0 always extends past 1 MiB (the smallest VM has 4 MiB).
    vm.setUserMemoryRegion(slot++, 0, PAM_AREA_START, r.hostAddress);
    vm.setUserMemoryRegion(slot++, PAM_AREA_END, r.size - PAM_AREA_END, r.hostAddress + BigInt(PAM_AREA_END));
  }
  const size = image.bytes.length;
  const fd = native.memfdCreate('nodevisor-bios', size);
  const rom = native.mapShared(fd, 0, size);
  new Uint8Array(rom.buffer).set(image.bytes);
  vm.setUserMemoryRegion(slot++, image.base, size, rom.address, k('KVM_MEM_READONLY'));

  // Not over a restored VM's RAM, whose shadow copy is the firmware's own (with its data in it).
  const low = image.bytes.subarray(Math.max(0, size - (PAM_AREA_END - PAM_AREA_START)));
  if (o.shadow) new GuestMemory(ram.regions).write(PAM_AREA_END - low.length, low);
  const region0 = ram.regions.find((r) => r.gpa === 0)!;
  const slots: PamSlotsSpec = { vmFd: vm.fd, firstSlot: slot, ramHost: region0.hostAddress, romHost: rom.address, romSize: size };
  applyPamModes(slots, PAM_SEGMENTS.map(() => PamMode.Bus));
  return { fd, pam: { state: I440fxPmc.allocate(), slots, rom: rom.buffer } };
}
