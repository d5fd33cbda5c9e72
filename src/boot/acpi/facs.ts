/**
 * The Firmware ACPI Control Structure (ACPI 6.x §5.2.10, table 5-37). A FADT
 * without HW_REDUCED_ACPI must point at one. It has no checksum and must be
 * 64-byte aligned. We never wake from sleep states, so the waking vectors stay
 * 0; the global lock dword exists (Linux reads it), with no owner.
 */
import { ByteWriter } from '../bytes.js';

export const FACS_SIZE = 64;
export const FACS_ALIGNMENT = 64;
export const FACS_VERSION = 2;

/** `hardwareSignature` changes when the hardware configuration does (an OS compares it across S4). */
export function buildFacs(hardwareSignature = 0): Uint8Array {
  const w = new ByteWriter(FACS_SIZE);
  w.ascii('FACS', 4)
    .u32(FACS_SIZE)
    .u32(hardwareSignature >>> 0)
    .u32(0) // firmware waking vector
    .u32(0) // global lock
    .u32(0) // flags: no S4BIOS, no 64-bit wake
    .u64(0) // X firmware waking vector
    .u8(FACS_VERSION)
    .zeros(3)
    .u32(0) // OSPM flags
    .zeros(24);
  return w.toBytes();
}
