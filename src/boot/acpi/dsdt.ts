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
 *       Name (_CRS, ResourceTemplate () { ... })    // the windows it decodes
 *     }
 *   }
 *
 * \_S5_'s two values are SLP_TYPa and SLP_TYPb; Linux writes SLP_TYPa with
 * SLP_EN to PM1a_CNT to power off, which acpi-pm.ts answers for SLP_TYP 5.
 */
import { concatBytes } from '../bytes.js';
import { amlBuffer, amlDevice, amlEisaId, amlEmptyMethod, amlInteger, amlName, amlNameString, amlPackage, amlScope, amlString } from './aml.js';
import { PVPANIC_HID } from '../../devices/pvpanic.js';
import { checkPciIntx, type PciIntxRoute } from '../irq-routing.js';
import { buildSdt, DEFAULT_SDT_IDS, type SdtIds } from './sdt.js';
import { AddressSpace, dwordMemoryWindow, endTag, extendedIrq, ioPorts, wordWindow } from './resources.js';
import { PCI_MMIO_BASE, PCI_MMIO_END } from '../../devices/pci-mmio-window.js';
import { PCI_HOST_PORT as PCI_CONFIG_PORTS, PCI_HOST_PORT_COUNT } from '../../devices/pci-host.js';

export const DSDT_REVISION = 2;

export interface DsdtConfig {
  /** SLP_TYP for soft-off (S5). */
  readonly s5SlpTyp: number;
  /** Whether to declare \_SB_.PCI0; only when the VM has a PCI host bridge (config ports 0xCF8/0xCFC). */
  readonly pciHostBridge: boolean;
  /** PCI INTx wiring on bus 0 (only with the host bridge): a _PRT and one interrupt link per route. */
  readonly pciIntx?: readonly PciIntxRoute[];
  /** Declare the pvpanic device (QEMU0001) at this port; none when absent. */
  readonly pvpanicPort?: number;
  readonly ids?: SdtIds;
}

/** Name(\_S5_, Package(){typ, typ}). */
export function amlS5(slpTyp: number): Uint8Array {
  if (!Number.isInteger(slpTyp) || slpTyp < 0 || slpTyp > 7) throw new RangeError(`SLP_TYP ${slpTyp} is not a 3-bit value`);
  return amlName('\\_S5_', amlPackage([amlInteger(slpTyp), amlInteger(slpTyp)]));
}

/**
 * Scope(\_SB_){ Device(PCI0){ _HID PNP0A03, _SEG 0, _BBN 0, _UID 0, _CRS [, _PRT] } [, LNKx...] }.
 *
 * PCI INTx routes go through interrupt link devices (PNP0C0F) whose one
 * possible and current resource is the route's GSI as a level-triggered,
 * active-HIGH extended interrupt, as QEMU's DSDT does: a _PRT entry naming
 * a GSI directly makes Linux program the IOAPIC active-low, while our
 * devices (and KVM's in-kernel IOAPIC, which ignores polarity) drive INTx
 * high when asserted (see irq-routing.ts on polarity). _SRS accepts and
 * ignores the one setting there is.
 */
export function amlPciHostBridge(pciIntx: readonly PciIntxRoute[] = []): Uint8Array {
  checkPciIntx(pciIntx);
  const linkName = (i: number): string => `LNK${'ABCDEFGHIJKLMNOPQRSTUVWXYZ'[i % 26]}${i >= 26 ? String(Math.floor(i / 26) - 1) : ''}`;
  const prt = pciIntx.length
    ? [
        amlName(
          '_PRT',
          amlPackage(pciIntx.map((r, i) => amlPackage([amlInteger(((r.device << 16) | 0xffff) >>> 0), amlInteger(r.pin), amlNameString(`\\_SB_.${linkName(i)}`), amlInteger(0)]))),
        ),
      ]
    : [];
  const links = pciIntx.map((r, i) => {
    const resources = amlBuffer([...extendedIrq(r.gsi), ...endTag()]);
    return amlDevice(linkName(i), [
      amlName('_HID', amlEisaId('PNP0C0F')),
      amlName('_UID', amlInteger(i + 1)),
      amlName('_PRS', resources),
      amlName('_CRS', resources),
      amlEmptyMethod('_SRS', 1),
      amlEmptyMethod('_DIS', 0),
    ]);
  });
  return amlScope('\\_SB_', [
    amlDevice('PCI0', [
      amlName('_HID', amlEisaId('PNP0A03')),
      amlName('_SEG', amlInteger(0)),
      amlName('_BBN', amlInteger(0)),
      amlName('_UID', amlInteger(0)),
      amlName('_CRS', amlBuffer(pciRootResources())),
      ...prt,
    ]),
    ...links,
  ]);
}

/**
 * PCI0's _CRS: what the host bridge decodes, so the OS keeps BARs inside
 * it: bus 0-255, the configuration ports 0xCF8-0xCFF for itself, every
 * other I/O port forwarded (legacy devices included, as on a PC), and the
 * 32-bit MMIO window below the IOAPIC where the VMM places BARs.
 */
export function pciRootResources(): number[] {
  return [
    ...wordWindow(AddressSpace.BusNumber, 0, 0xff),
    ...ioPorts(PCI_CONFIG_PORTS, PCI_HOST_PORT_COUNT),
    ...wordWindow(AddressSpace.Io, 0, PCI_CONFIG_PORTS - 1),
    ...wordWindow(AddressSpace.Io, PCI_CONFIG_PORTS + PCI_HOST_PORT_COUNT, 0xffff),
    ...dwordMemoryWindow(PCI_MMIO_BASE, PCI_MMIO_END - 1),
    ...endTag(),
  ];
}

/**
 * Scope(\_SB_){ Device(PEVT){ _HID "QEMU0001", _CRS IO(port, 1), _STA 0x0B } },
 * as QEMU declares its ISA pvpanic device; Linux's pvpanic driver binds it.
 */
export function amlPvpanic(port: number): Uint8Array {
  return amlScope('\\_SB_', [
    amlDevice('PEVT', [
      amlName('_HID', amlString(PVPANIC_HID)),
      amlName('_CRS', amlBuffer([...ioPorts(port, 1), ...endTag()])),
      // Present, enabled, not shown in UI: a device without a user-visible function.
      amlName('_STA', amlInteger(0x0b)),
    ]),
  ]);
}

export function buildDsdt(config: DsdtConfig): Uint8Array {
  const aml = concatBytes([
    amlS5(config.s5SlpTyp),
    ...(config.pciHostBridge ? [amlPciHostBridge(config.pciIntx)] : []),
    ...(config.pvpanicPort !== undefined ? [amlPvpanic(config.pvpanicPort)] : []),
  ]);
  return buildSdt('DSDT', DSDT_REVISION, aml, config.ids ?? DEFAULT_SDT_IDS);
}
