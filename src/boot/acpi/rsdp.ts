/**
 * The Root System Description Pointer, ACPI 2.0+ form (ACPI 6.x §5.2.5.3,
 * table 5-27). The OS finds it at boot_params.acpi_rsdp_addr or by scanning
 * 0xE0000-0xFFFFF on 16-byte boundaries for "RSD PTR " (§5.2.5.1).
 *
 * Revision 2 with only an XSDT: RsdtAddress is 0. Every OS that reads ACPI
 * 2.0 tables (Linux since 2.6) prefers the XSDT when revision >= 2 and
 * XsdtAddress is non-zero.
 */
import { ByteWriter, asciiField, setChecksum8 } from '../bytes.js';

export const RSDP_SIZE = 36;
/** The first checksum covers the ACPI 1.0 part, bytes 0-19. */
export const RSDP_V1_SIZE = 20;
export const RSDP_REVISION = 2;
export const RsdpOffset = {
  signature: 0,
  checksum: 8,
  oemId: 9,
  revision: 15,
  rsdtAddress: 16,
  length: 20,
  xsdtAddress: 24,
  extendedChecksum: 32,
} as const;

export function buildRsdp(xsdtAddress: number, oemId: string): Uint8Array {
  const w = new ByteWriter(RSDP_SIZE);
  w.ascii('RSD PTR ', 8)
    .u8(0)
    .bytes(asciiField(oemId, 6))
    .u8(RSDP_REVISION)
    .u32(0) // RsdtAddress: no RSDT
    .u32(RSDP_SIZE)
    .u64(xsdtAddress)
    .u8(0)
    .zeros(3);
  const bytes = w.toBytes();
  setChecksum8(bytes, RsdpOffset.checksum, 0, RSDP_V1_SIZE);
  setChecksum8(bytes, RsdpOffset.extendedChecksum, 0, RSDP_SIZE);
  return bytes;
}
