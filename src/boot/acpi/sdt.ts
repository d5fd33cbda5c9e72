/**
 * What every ACPI table shares: the 36-byte System Description Table header
 * (ACPI 6.x §5.2.6, table 5-29), its checksum, and the Generic Address
 * Structure (§5.2.3.2) the FADT uses for register blocks.
 */
import { ByteWriter, asciiField, concatBytes, setChecksum8 } from '../bytes.js';

export const SDT_HEADER_SIZE = 36;
/** Offsets in the SDT header. */
export const SdtOffset = {
  signature: 0,
  length: 4,
  revision: 8,
  checksum: 9,
  oemId: 10,
  oemTableId: 16,
  oemRevision: 24,
  creatorId: 28,
  creatorRevision: 32,
} as const;

/** The identification fields of the header; the same for all our tables but the table ID. */
export interface SdtIds {
  /** 6 characters. */
  readonly oemId: string;
  /** 8 characters. */
  readonly oemTableId: string;
  readonly oemRevision: number;
  /** 4 characters: the tool that built the table. */
  readonly creatorId: string;
  readonly creatorRevision: number;
}

export const DEFAULT_SDT_IDS: SdtIds = Object.freeze({
  oemId: 'NODEVI',
  oemTableId: 'NODEVISR',
  oemRevision: 1,
  creatorId: 'NDVR',
  creatorRevision: 1,
});

/**
 * A complete table: header + `body`, with Length and Checksum filled in
 * (the whole table sums to 0, §5.2.6).
 */
export function buildSdt(signature: string, revision: number, body: Uint8Array, ids: SdtIds = DEFAULT_SDT_IDS): Uint8Array {
  if (signature.length !== 4) throw new RangeError(`ACPI signature "${signature}" must be 4 characters`);
  const w = new ByteWriter(SDT_HEADER_SIZE);
  w.ascii(signature, 4)
    .u32(SDT_HEADER_SIZE + body.length)
    .u8(revision)
    .u8(0)
    .bytes(asciiField(ids.oemId, 6))
    .bytes(asciiField(ids.oemTableId, 8))
    .u32(ids.oemRevision)
    .bytes(asciiField(ids.creatorId, 4))
    .u32(ids.creatorRevision);
  const table = concatBytes([w.toBytes(), body]);
  setChecksum8(table, SdtOffset.checksum);
  return table;
}

/** Generic Address Structure address space IDs (§5.2.3.2, table 5-25). */
export const AddressSpace = { SystemMemory: 0, SystemIo: 1, PciConfig: 2 } as const;
/** GAS access sizes. */
export const AccessSize = { Undefined: 0, Byte: 1, Word: 2, Dword: 3, Qword: 4 } as const;
export const GAS_SIZE = 12;

export interface GenericAddress {
  readonly space: number;
  readonly bitWidth: number;
  readonly bitOffset: number;
  readonly accessSize: number;
  readonly address: number;
}

/** The all-zero GAS: "not present". */
export const NO_REGISTER: GenericAddress = Object.freeze({ space: 0, bitWidth: 0, bitOffset: 0, accessSize: 0, address: 0 });

/** An I/O-port register block of `bytes` bytes, accessed `accessSize` at a time. */
export function ioRegister(port: number, bytes: number, accessSize: number): GenericAddress {
  return { space: AddressSpace.SystemIo, bitWidth: bytes * 8, bitOffset: 0, accessSize, address: port };
}

export function writeGas(w: ByteWriter, gas: GenericAddress): void {
  w.u8(gas.space).u8(gas.bitWidth).u8(gas.bitOffset).u8(gas.accessSize).u64(gas.address);
}
