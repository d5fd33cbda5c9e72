/**
 * Routes device interrupt lines to the interrupt controllers, the way a PC's
 * chipset wires them:
 * - lines 0-15 are the ISA IRQs: each drives the 8259 input of the same
 *   number and an IOAPIC pin, identity unless an ISA interrupt source
 *   override moves it (by default IRQ 0 -> pin 2, which is what PC firmware
 *   reports in the MADT and MP table);
 * - lines 16-23 are PCI-style lines that reach the IOAPIC only (pin = GSI).
 *
 * The numbering of 0-15 follows KVM_IRQ_LINE / QEMU's GSI routing: "GSI 0"
 * here is ISA IRQ 0 even though, in ACPI terms, its global system interrupt
 * is 2. Line 2 is the 8259 cascade: with the default overrides it has
 * neither a PIC input nor an IOAPIC pin, so driving it is an error.
 */
import type { IrqLines } from '../devices/device.js';

export const ISA_IRQS = 16;
export const ROUTER_GSIS = 24;
const CASCADE_IRQ = 2;

/** MPS INTI / ACPI MADT polarity; `conforming` means "as the bus defines" (ISA: active high). */
export type IntiPolarity = 'conforming' | 'active-high' | 'active-low';
/** MPS INTI / ACPI MADT trigger mode; `conforming` means "as the bus defines" (ISA: edge). */
export type IntiTrigger = 'conforming' | 'edge' | 'level';

/** An ISA interrupt source override (ACPI MADT type 2, MP-table I/O interrupt entry). */
export interface IsaIrqOverride {
  readonly isaIrq: number;
  /** The global system interrupt, i.e. the IOAPIC pin (0-15 here). */
  readonly gsi: number;
  readonly polarity: IntiPolarity;
  readonly trigger: IntiTrigger;
}

/**
 * The routing this router implements unless told otherwise, and what the
 * ACPI/MP-table code must describe: the PIT's IRQ 0 on IOAPIC pin 2.
 */
export const DEFAULT_ISA_OVERRIDES: readonly IsaIrqOverride[] = Object.freeze([
  Object.freeze({ isaIrq: 0, gsi: 2, polarity: 'conforming', trigger: 'conforming' } as const),
]);

/**
 * The 16-bit flags field shared by MADT interrupt source overrides and MP
 * I/O interrupt entries: polarity in bits 1:0, trigger mode in bits 3:2
 * (00 conforming, 01 active high / edge, 11 active low / level).
 */
export function intiFlags(o: Pick<IsaIrqOverride, 'polarity' | 'trigger'>): number {
  const polarity = o.polarity === 'active-high' ? 1 : o.polarity === 'active-low' ? 3 : 0;
  const trigger = o.trigger === 'edge' ? 1 : o.trigger === 'level' ? 3 : 0;
  return polarity | (trigger << 2);
}

/** Where one line goes; null where it reaches no input of that chip. */
export interface GsiRoute {
  readonly picIrq: number | null;
  readonly ioapicPin: number | null;
}

/**
 * The full routing table (index = line number) for a set of overrides.
 * Throws RangeError for an inconsistent table: IRQ or pin out of range,
 * an override of the cascade IRQ 2, a pin above 15 (those are lines
 * 16-23's own), or two overrides for one IRQ or onto one pin. A pin taken
 * by another IRQ's override is no longer reached by its identity IRQ.
 */
export function isaRoutes(overrides: readonly IsaIrqOverride[] = DEFAULT_ISA_OVERRIDES): readonly GsiRoute[] {
  const pinOfIrq = new Map<number, number>();
  const targeted = new Set<number>();
  for (const o of overrides) {
    if (!Number.isInteger(o.isaIrq) || o.isaIrq < 0 || o.isaIrq >= ISA_IRQS || o.isaIrq === CASCADE_IRQ) {
      throw new RangeError(`ISA override source IRQ ${o.isaIrq} is invalid (0..15, not the cascade IRQ 2)`);
    }
    if (!Number.isInteger(o.gsi) || o.gsi < 0 || o.gsi >= ISA_IRQS) {
      throw new RangeError(`ISA override target GSI ${o.gsi} is invalid (0..15; 16..23 belong to PCI lines)`);
    }
    if (pinOfIrq.has(o.isaIrq)) throw new RangeError(`ISA IRQ ${o.isaIrq} has two overrides`);
    if (targeted.has(o.gsi)) throw new RangeError(`two ISA overrides target GSI ${o.gsi}`);
    pinOfIrq.set(o.isaIrq, o.gsi);
    targeted.add(o.gsi);
  }
  const routes: GsiRoute[] = [];
  for (let irq = 0; irq < ISA_IRQS; irq++) {
    const pin = pinOfIrq.get(irq) ?? (targeted.has(irq) ? null : irq);
    routes.push(Object.freeze({ picIrq: irq === CASCADE_IRQ ? null : irq, ioapicPin: pin }));
  }
  for (let gsi = ISA_IRQS; gsi < ROUTER_GSIS; gsi++) routes.push(Object.freeze({ picIrq: null, ioapicPin: gsi }));
  return Object.freeze(routes);
}

/** What the router drives: `Ioapic` and `DualPic` both fit. */
export interface IrqInputs {
  setLevel(line: number, high: boolean): void;
}

export interface IrqRouterOptions {
  /** The IOAPIC view of this thread; absent when there is none (PIC-only guests) or it is modelled elsewhere. */
  ioapic?: IrqInputs;
  /** The dual-8259 view of this thread; absent when there is none or it is modelled elsewhere. */
  pic?: IrqInputs;
  overrides?: readonly IsaIrqOverride[];
}

/**
 * The `IrqLines` devices are given. Build one per thread over that
 * thread's chip views. It holds no state and takes no lock of its own: the
 * chips serialise themselves, and callers must serialise the calls for any
 * one line (one driver per line, e.g. under the device's lock), since
 * the PIC and IOAPIC are updated one after the other. Lines are not
 * wire-ORed: two devices sharing a line must combine their levels first.
 *
 * A line whose chip is absent is accepted and does nothing on that side;
 * only a line with no route at all in the table is rejected.
 */
export class IrqRouter implements IrqLines {
  readonly routes: readonly GsiRoute[];
  private readonly picIrq: Int8Array;
  private readonly ioapicPin: Int8Array;
  private readonly ioapic: IrqInputs | undefined;
  private readonly pic: IrqInputs | undefined;

  constructor(options: IrqRouterOptions) {
    this.ioapic = options.ioapic;
    this.pic = options.pic;
    this.routes = isaRoutes(options.overrides);
    this.picIrq = Int8Array.from(this.routes, (r) => r.picIrq ?? -1);
    this.ioapicPin = Int8Array.from(this.routes, (r) => r.ioapicPin ?? -1);
  }

  /** Drives line `gsi`; throws RangeError for a line that does not exist or leads nowhere. */
  setLevel(gsi: number, high: boolean): void {
    const picIrq = this.picIrq[gsi] ?? -1;
    const pin = this.ioapicPin[gsi] ?? -1;
    if ((picIrq < 0 && pin < 0) || !Number.isInteger(gsi)) throw this.badLine(gsi);
    if (picIrq >= 0) this.pic?.setLevel(picIrq, high);
    if (pin >= 0) this.ioapic?.setLevel(pin, high);
  }

  /** The route of line `gsi` (throws like `setLevel`). */
  route(gsi: number): GsiRoute {
    const route = Number.isInteger(gsi) ? this.routes[gsi] : undefined;
    if (!route || (route.picIrq === null && route.ioapicPin === null)) throw this.badLine(gsi);
    return route;
  }

  private badLine(gsi: number): RangeError {
    if (gsi === CASCADE_IRQ) {
      return new RangeError(
        'GSI 2 is not routable: it is the 8259 cascade input, and its IOAPIC pin is taken by an ISA override',
      );
    }
    return new RangeError(`GSI ${gsi} is not routable: lines are 0..${ROUTER_GSIS - 1} (a device wiring bug)`);
  }
}
