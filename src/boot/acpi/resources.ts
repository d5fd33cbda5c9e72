/**
 * ACPI resource descriptors (ACPI 6.x §6.4) for the DSDT's resource
 * templates (_CRS/_PRS buffers): plain byte lists, little-endian, joined
 * and closed with `endTag()`.
 */

const le = (value: number, bytes: number): number[] => Array.from({ length: bytes }, (_, i) => Math.floor(value / 2 ** (8 * i)) & 0xff);

/** Address space resource types (§6.4.3.5). */
export const AddressSpace = { Memory: 0, Io: 1, BusNumber: 2 } as const;
/**
 * General flags of an address space descriptor: a window the device
 * produces (a bridge forwarding it to its children), positive decode, with
 * fixed minimum and maximum.
 */
const PRODUCER_FIXED = 0x0c;
/** Memory type-specific flags: read-write, non-cacheable. */
const MEMORY_RW_UNCACHED = 0x01;
/** I/O type-specific flags: ISA and non-ISA ranges both. */
const IO_ENTIRE_RANGE = 0x03;

function checkRange(what: string, min: number, max: number, limit: number): void {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min < 0 || max < min || max > limit) {
    throw new RangeError(`${what} 0x${min.toString(16)}-0x${max.toString(16)} is not a range within 0-0x${limit.toString(16)}`);
  }
}

/** Word Address Space Descriptor (§6.4.3.5.3) for a bus-number or I/O window. */
export function wordWindow(type: typeof AddressSpace.BusNumber | typeof AddressSpace.Io, min: number, max: number): number[] {
  checkRange(type === AddressSpace.Io ? 'I/O window' : 'bus range', min, max, type === AddressSpace.Io ? 0xffff : 0xff);
  const specific = type === AddressSpace.Io ? IO_ENTIRE_RANGE : 0;
  return [0x88, ...le(13, 2), type, PRODUCER_FIXED, specific, ...le(0, 2), ...le(min, 2), ...le(max, 2), ...le(0, 2), ...le(max - min + 1, 2)];
}

/** DWord Address Space Descriptor (§6.4.3.5.2) for a 32-bit memory window. */
export function dwordMemoryWindow(min: number, max: number): number[] {
  checkRange('memory window', min, max, 0xffffffff);
  return [0x87, ...le(23, 2), AddressSpace.Memory, PRODUCER_FIXED, MEMORY_RW_UNCACHED, ...le(0, 4), ...le(min, 4), ...le(max, 4), ...le(0, 4), ...le(max - min + 1, 4)];
}

/** I/O Port Descriptor (§6.4.2.5), 16-bit decode, at one fixed base: ports the device itself uses. */
export function ioPorts(base: number, length: number): number[] {
  checkRange('I/O ports', base, base + length - 1, 0xffff);
  return [0x47, 0x01, ...le(base, 2), ...le(base, 2), 1, length];
}

/**
 * Extended Interrupt Descriptor (§6.4.3.6) for one GSI: consumer,
 * level-triggered, active-high, shared.
 */
export function extendedIrq(gsi: number): number[] {
  const flags = 0x01 /* consumer */ | 0x08; /* shared; bit 1 clear: level; bit 2 clear: active-high */
  return [0x89, ...le(6, 2), flags, 1, ...le(gsi, 4)];
}

/** End Tag (§6.4.2.9); a zero checksum means "treat as correct". */
export function endTag(): number[] {
  return [0x79, 0];
}
