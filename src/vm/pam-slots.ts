import { k } from '../kvm/addon.js';
import { setMemoryRegion } from '../kvm/vm-fd.js';
import { PAM_AREA_END, PAM_SEGMENTS, PamMode } from '../devices/i440fx-pam.js';

/**
 * KVM memory slots for the PAM area (0xC0000-0xFFFFF), one per PAM
 * segment, following the modes the guest programs: DRAM read/write, DRAM
 * read-only (KVM_MEM_READONLY: writes exit and are dropped), the firmware
 * image read-only for "bus" mode. Write-only mode has no slot at all, so
 * every access exits to `PamArea`. KVM cannot change a slot's read-only
 * flag in place, so a slot is deleted and created anew; in between,
 * accesses exit and `PamArea` answers them by the same rules.
 */
export interface PamSlotsSpec {
  readonly vmFd: number;
  /** First of 13 consecutive slot numbers. */
  readonly firstSlot: number;
  /** Host address of guest-physical 0 (RAM region 0). */
  readonly ramHost: bigint;
  /** Host address and size of the firmware image (its last byte is seen at 0xFFFFF). */
  readonly romHost: bigint;
  readonly romSize: number;
}

export function applyPamModes(spec: PamSlotsSpec, modes: readonly PamMode[], before?: readonly PamMode[]): void {
  const readonly = k('KVM_MEM_READONLY');
  PAM_SEGMENTS.forEach((seg, i) => {
    const mode = modes[i]!;
    if (before && before[i] === mode) return;
    const slot = spec.firstSlot + i;
    const romOffset = spec.romSize - (PAM_AREA_END - seg.start);
    const mapped = (m: PamMode): boolean => m === PamMode.ReadWrite || m === PamMode.ReadOnly || (m === PamMode.Bus && romOffset >= 0);
    if (before && mapped(before[i]!)) setMemoryRegion(spec.vmFd, slot, seg.start, 0, 0n);
    if (mode === PamMode.ReadWrite || mode === PamMode.ReadOnly) {
      setMemoryRegion(spec.vmFd, slot, seg.start, seg.size, spec.ramHost + BigInt(seg.start), mode === PamMode.ReadOnly ? readonly : 0);
    } else if (mode === PamMode.Bus && romOffset >= 0) {
      setMemoryRegion(spec.vmFd, slot, seg.start, seg.size, spec.romHost + BigInt(romOffset), readonly);
    }
  });
}
