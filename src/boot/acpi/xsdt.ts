/**
 * The Extended System Description Table (ACPI 6.x §5.2.8, table 5-32): the
 * header and an array of 64-bit table addresses. It lists every table but
 * the DSDT and FACS, which the FADT points to.
 */
import { ByteWriter } from '../bytes.js';
import { buildSdt, DEFAULT_SDT_IDS, type SdtIds } from './sdt.js';

export const XSDT_REVISION = 1;

export function buildXsdt(tableAddresses: readonly number[], ids: SdtIds = DEFAULT_SDT_IDS): Uint8Array {
  const w = new ByteWriter(tableAddresses.length * 8);
  for (const a of tableAddresses) w.u64(a);
  return buildSdt('XSDT', XSDT_REVISION, w.toBytes(), ids);
}
