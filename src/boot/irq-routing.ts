/**
 * The interrupt routing the firmware tables (MP table and ACPI MADT) both
 * describe, derived from the router's own table (src/irqchip/irq-router.ts)
 * so that what the guest is told is exactly what the VMM wires.
 *
 * Polarity convention: devices drive their lines high while asserting an
 * interrupt (`IrqLines.setLevel(gsi, true)`), and the IOAPIC model honours
 * the redirection entry's polarity bit. So every line the firmware gives an
 * explicit polarity is declared active HIGH, including the SCI and the PCI
 * INTx lines, which real PCs wire active-low: an OS told "active low" would
 * program the entry so that an asserted line reads as idle.
 */
import { DEFAULT_ISA_OVERRIDES, ISA_IRQS, ROUTER_GSIS, isaRoutes, type IsaIrqOverride } from '../irqchip/irq-router.js';
import { PlatformPorts } from '../devices/platform-ports.js';

/** The 8259 cascade input: never routed to the IOAPIC, never described. */
export const CASCADE_IRQ = 2;
/** First IOAPIC pin of the PCI-style lines (16-23). */
export const PCI_GSI_FIRST = ISA_IRQS;
export const PCI_GSI_LAST = ROUTER_GSIS - 1;

/**
 * The ISA overrides the firmware reports: the router's (IRQ 0 -> GSI 2) plus
 * the SCI, declared level-triggered and active-high (ACPI 6.x §5.2.12.5:
 * without an override the OS assumes the SCI is active-low, level).
 */
export function firmwareIsaOverrides(sciIrq: number = PlatformPorts.sciIrq, base: readonly IsaIrqOverride[] = DEFAULT_ISA_OVERRIDES): IsaIrqOverride[] {
  const overrides = base.filter((o) => o.isaIrq !== sciIrq);
  const routed = isaRoutes(base)[sciIrq]?.ioapicPin;
  if (routed == null) throw new RangeError(`the SCI IRQ ${sciIrq} has no IOAPIC pin in the router's table`);
  overrides.push({ isaIrq: sciIrq, gsi: routed, polarity: 'active-high', trigger: 'level' });
  isaRoutes(overrides); // throws RangeError if the result is inconsistent
  return overrides;
}

/** A PCI device's interrupt pin wired to an IOAPIC pin (MP spec 1.4 §4.3.4, PCI bus IRQ encoding). */
export interface PciIntxRoute {
  /** PCI device number on bus 0 (0-31). */
  readonly device: number;
  /** Interrupt pin: 0 = INTA# ... 3 = INTD#. */
  readonly pin: 0 | 1 | 2 | 3;
  /** The IOAPIC pin (16-23). */
  readonly gsi: number;
}

export function checkPciIntx(routes: readonly PciIntxRoute[]): void {
  const seen = new Set<number>();
  for (const r of routes) {
    if (!Number.isInteger(r.device) || r.device < 0 || r.device > 31) throw new RangeError(`PCI device number ${r.device} is out of range (0-31)`);
    if (!Number.isInteger(r.pin) || r.pin < 0 || r.pin > 3) throw new RangeError(`PCI interrupt pin ${r.pin} is out of range (0-3 for INTA#-INTD#)`);
    if (!Number.isInteger(r.gsi) || r.gsi < PCI_GSI_FIRST || r.gsi > PCI_GSI_LAST) {
      throw new RangeError(`PCI INTx GSI ${r.gsi} is out of range (${PCI_GSI_FIRST}-${PCI_GSI_LAST}: the IOAPIC pins only PCI-style lines reach)`);
    }
    const key = r.device * 4 + r.pin;
    if (seen.has(key)) throw new RangeError(`PCI device ${r.device} INT${'ABCD'[r.pin]}# is routed twice`);
    seen.add(key);
  }
}
