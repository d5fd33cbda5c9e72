/**
 * The Differentiated System Description Table (ACPI 6.x §5.2.11.1): a
 * definition block of AML. Revision 2, so AML integers are 64-bit (§5.2.11.1:
 * revision < 2 means 32-bit integers).
 *
 *   Name (\_S5_, Package () { SLP_TYP, SLP_TYP })   // §7.4.2.5, soft-off
 *   Scope (\_SB_) {
 *     Device (PCI0) {                                // the PCI host bridge
 *       Name (_HID, EisaId ("PNP0A03"))
 *       Name (_SEG, Zero)
 *       Name (_BBN, Zero)
 *       Name (_UID, Zero)
 *     }
 *   }
 *
 * \_S5_'s two values are SLP_TYPa and SLP_TYPb; Linux writes SLP_TYPa with
 * SLP_EN to PM1a_CNT to power off, which acpi-pm.ts answers for SLP_TYP 5.
 */
import { concatBytes } from '../bytes.js';
import { amlDevice, amlEisaId, amlInteger, amlName, amlPackage, amlScope } from './aml.js';
import { buildSdt, DEFAULT_SDT_IDS, type SdtIds } from './sdt.js';

export const DSDT_REVISION = 2;

export interface DsdtConfig {
  /** SLP_TYP for soft-off (S5). */
  readonly s5SlpTyp: number;
  /** Whether to declare \_SB_.PCI0; only when the VM has a PCI host bridge (config ports 0xCF8/0xCFC). */
  readonly pciHostBridge: boolean;
  readonly ids?: SdtIds;
}

/** Name(\_S5_, Package(){typ, typ}). */
export function amlS5(slpTyp: number): Uint8Array {
  if (!Number.isInteger(slpTyp) || slpTyp < 0 || slpTyp > 7) throw new RangeError(`SLP_TYP ${slpTyp} is not a 3-bit value`);
  return amlName('\\_S5_', amlPackage([amlInteger(slpTyp), amlInteger(slpTyp)]));
}

/** Scope(\_SB_){ Device(PCI0){ _HID PNP0A03, _SEG 0, _BBN 0, _UID 0 } }. */
export function amlPciHostBridge(): Uint8Array {
  return amlScope('\\_SB_', [
    amlDevice('PCI0', [
      amlName('_HID', amlEisaId('PNP0A03')),
      amlName('_SEG', amlInteger(0)),
      amlName('_BBN', amlInteger(0)),
      amlName('_UID', amlInteger(0)),
    ]),
  ]);
}

export function buildDsdt(config: DsdtConfig): Uint8Array {
  const aml = concatBytes([amlS5(config.s5SlpTyp), ...(config.pciHostBridge ? [amlPciHostBridge()] : [])]);
  return buildSdt('DSDT', DSDT_REVISION, aml, config.ids ?? DEFAULT_SDT_IDS);
}
