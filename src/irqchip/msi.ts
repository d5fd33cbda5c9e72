/**
 * Message Signalled Interrupts: the address/data pair a device writes to the
 * local-APIC window at 0xFEExxxxx (Intel SDM vol. 3, 11.11), decoded into the
 * `ApicMessage` the APIC bus delivers.
 *
 * Supported destination formats:
 * - standard: destination ID in address bits 19:12 (8-bit xAPIC ID or logical mask);
 * - extended: the 15-bit scheme Linux uses under KVM when the hypervisor
 *   advertises KVM_FEATURE_MSI_EXT_DEST_ID: address bits 11:5 carry
 *   destination ID bits 14:8 (bits the SDM calls reserved);
 * - x2apic: KVM_X2APIC_API style, address_hi bits 31:8 carry destination ID
 *   bits 31:8 (the upper half of a 64-bit address otherwise has no meaning in
 *   the APIC window). When address_hi carries bits, address bits 11:5 are
 *   ignored, as QEMU does before handing routes to KVM.
 *
 * Not supported (decode returns null): addresses outside 0xFEExxxxx, a
 * nonzero address_hi low byte (a real address above 4 GiB), the Intel
 * interrupt-remapping format (address bit 4, meaningless without an IOMMU),
 * and the reserved delivery modes 011 and 110.
 */
import { DeliveryMode, Shorthand, type ApicMessage } from './types.js';

/** Base of the MSI address window (the local-APIC range). */
export const MSI_ADDRESS_BASE = 0xfee00000;

const ADDR_WINDOW_MASK = 0xfff00000;
const ADDR_DEST_SHIFT = 12; // bits 19:12
const ADDR_EXT_DEST_SHIFT = 5; // bits 11:5
const ADDR_REMAPPABLE = 1 << 4;
const ADDR_REDIRECTION_HINT = 1 << 3;
const ADDR_DEST_LOGICAL = 1 << 2;

const DATA_VECTOR_MASK = 0xff;
const DATA_DELIVERY_SHIFT = 8; // bits 10:8
const DATA_LEVEL_ASSERT = 1 << 14;
const DATA_TRIGGER_LEVEL = 1 << 15;

/** Where destination ID bits above 7 live; see the module comment. */
export type MsiDestFormat = 'standard' | 'extended' | 'x2apic';

/** Every field of an MSI address/data pair, raw (no interpretation). */
export interface MsiFields {
  /** Full destination ID (8, 15 or 32 bits depending on `destFormat`). */
  dest: number;
  logical: boolean;
  redirectionHint: boolean;
  vector: number;
  /** The 3-bit delivery-mode field, reserved values included. */
  deliveryMode: number;
  levelTriggered: boolean;
  /** Data bit 14 (level assert); the SDM ignores it for edge messages. */
  assert: boolean;
  destFormat: MsiDestFormat;
}

/** What a device writes: the 64-bit address as two halves and the data word (all unsigned). */
export interface MsiAddressData {
  addressLo: number;
  addressHi: number;
  data: number;
}

/** Input to `encodeMsi`: only `vector` and `dest` are required. */
export type MsiEncodeInput = Pick<MsiFields, 'vector' | 'dest'> & Partial<Omit<MsiFields, 'vector' | 'dest'>>;

/**
 * The SDM's 3-bit delivery-mode encoding, shared by MSI data and IOAPIC
 * redirection entries; null for the reserved values 011 and 110.
 */
export function deliveryModeFromBits(bits: number): DeliveryMode | null {
  switch (bits & 7) {
    case DeliveryMode.Fixed:
      return DeliveryMode.Fixed;
    case DeliveryMode.LowestPriority:
      return DeliveryMode.LowestPriority;
    case DeliveryMode.SMI:
      return DeliveryMode.SMI;
    case DeliveryMode.NMI:
      return DeliveryMode.NMI;
    case DeliveryMode.INIT:
      return DeliveryMode.INIT;
    case DeliveryMode.ExtINT:
      return DeliveryMode.ExtINT;
    default:
      return null;
  }
}

/** Splits an MSI write into its fields, or null if it is not a decodable APIC message. */
export function parseMsi(addressLo: number, addressHi: number, data: number): MsiFields | null {
  const lo = addressLo >>> 0;
  const hi = addressHi >>> 0;
  if ((lo & ADDR_WINDOW_MASK) >>> 0 !== MSI_ADDRESS_BASE) return null;
  if (lo & ADDR_REMAPPABLE) return null;
  if (hi & 0xff) return null;

  const dest0to7 = (lo >>> ADDR_DEST_SHIFT) & 0xff;
  const ext8to14 = (lo >>> ADDR_EXT_DEST_SHIFT) & 0x7f;
  const hi8to31 = hi >>> 8;
  let dest = dest0to7;
  let destFormat: MsiDestFormat = 'standard';
  if (hi8to31 !== 0) {
    dest = ((hi & 0xffffff00) >>> 0) + dest0to7;
    destFormat = 'x2apic';
  } else if (ext8to14 !== 0) {
    dest = (ext8to14 << 8) | dest0to7;
    destFormat = 'extended';
  }

  return {
    dest,
    logical: (lo & ADDR_DEST_LOGICAL) !== 0,
    redirectionHint: (lo & ADDR_REDIRECTION_HINT) !== 0,
    vector: data & DATA_VECTOR_MASK,
    deliveryMode: (data >>> DATA_DELIVERY_SHIFT) & 7,
    levelTriggered: (data & DATA_TRIGGER_LEVEL) !== 0,
    assert: (data & DATA_LEVEL_ASSERT) !== 0,
    destFormat,
  };
}

/**
 * Decodes an MSI write into the message the APIC bus delivers (source -1).
 * `dest` is the full destination ID; `x2apic` is set when it has bits above 7
 * (extended or x2apic format), so the bus must not truncate it to 8 bits.
 * A redirection hint on a Fixed message becomes LowestPriority, as KVM does:
 * SDM 11.11.1 makes RH=1 mean "deliver to one of the destinations".
 * `assert` is data bit 14 for level-triggered messages and true for edge.
 */
export function decodeMsi(addressLo: number, addressHi: number, data: number): ApicMessage | null {
  const f = parseMsi(addressLo, addressHi, data);
  if (f === null) return null;
  let deliveryMode = deliveryModeFromBits(f.deliveryMode);
  if (deliveryMode === null) return null;
  if (f.redirectionHint && deliveryMode === DeliveryMode.Fixed) deliveryMode = DeliveryMode.LowestPriority;
  return {
    vector: f.vector,
    deliveryMode,
    logical: f.logical,
    dest: f.dest,
    levelTriggered: f.levelTriggered,
    assert: f.levelTriggered ? f.assert : true,
    shorthand: Shorthand.None,
    source: -1,
    x2apic: f.destFormat !== 'standard',
  };
}

/**
 * Builds the address/data pair for a message (the inverse of `parseMsi`).
 * Defaults: physical, no redirection hint, Fixed, edge, `assert` =
 * `levelTriggered`, and the narrowest `destFormat` that holds `dest`
 * (standard up to 0xFF, extended up to 0x7FFF, x2apic beyond).
 * Throws RangeError for fields that do not fit.
 */
export function encodeMsi(input: MsiEncodeInput): MsiAddressData {
  const {
    vector,
    dest,
    logical = false,
    redirectionHint = false,
    deliveryMode = DeliveryMode.Fixed,
    levelTriggered = false,
    assert = levelTriggered,
  } = input;
  checkField('vector', vector, 0xff);
  checkField('deliveryMode', deliveryMode, 7);
  checkField('dest', dest, 0xffffffff);
  const destFormat = input.destFormat ?? (dest <= 0xff ? 'standard' : dest <= 0x7fff ? 'extended' : 'x2apic');

  let lo = MSI_ADDRESS_BASE | ((dest & 0xff) << ADDR_DEST_SHIFT);
  let hi = 0;
  switch (destFormat) {
    case 'standard':
      if (dest > 0xff) throw new RangeError(`MSI dest 0x${dest.toString(16)} needs an extended format`);
      break;
    case 'extended':
      if (dest > 0x7fff) throw new RangeError(`MSI dest 0x${dest.toString(16)} exceeds the 15-bit extended format`);
      lo |= (dest >>> 8) << ADDR_EXT_DEST_SHIFT;
      break;
    case 'x2apic':
      hi = (dest & 0xffffff00) >>> 0;
      break;
  }
  if (redirectionHint) lo |= ADDR_REDIRECTION_HINT;
  if (logical) lo |= ADDR_DEST_LOGICAL;

  let data = vector | (deliveryMode << DATA_DELIVERY_SHIFT);
  if (assert) data |= DATA_LEVEL_ASSERT;
  if (levelTriggered) data |= DATA_TRIGGER_LEVEL;
  return { addressLo: lo >>> 0, addressHi: hi, data: data >>> 0 };
}

function checkField(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`MSI ${name} ${value} is outside 0..0x${max.toString(16)}`);
  }
}
