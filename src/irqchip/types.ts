/**
 * The interrupt messages that travel between interrupt controllers: what an
 * ICR write, an IOAPIC redirection entry and an MSI all become. Modelled on
 * the xAPIC/x2APIC system bus message of the Intel SDM, vol. 3, ch. 11.
 */

export const DeliveryMode = {
  Fixed: 0,
  LowestPriority: 1,
  SMI: 2,
  NMI: 4,
  INIT: 5,
  StartUp: 6,
  ExtINT: 7,
} as const;
export type DeliveryMode = (typeof DeliveryMode)[keyof typeof DeliveryMode];

export const Shorthand = {
  None: 0,
  Self: 1,
  AllIncludingSelf: 2,
  AllExcludingSelf: 3,
} as const;
export type Shorthand = (typeof Shorthand)[keyof typeof Shorthand];

export interface ApicMessage {
  /** 0-255; for StartUp the page number of the start address. */
  vector: number;
  deliveryMode: DeliveryMode;
  /** Logical (flat/cluster, or x2APIC cluster) rather than physical destination. */
  logical: boolean;
  /**
   * Destination: an 8-bit APIC ID or logical mask in xAPIC mode, 32 bits in
   * x2APIC mode. 0xFF (xAPIC) / 0xFFFFFFFF (x2APIC) is broadcast.
   */
  dest: number;
  /** Level-triggered (true) or edge-triggered (false). */
  levelTriggered: boolean;
  /** Assert (true) or de-assert (false); only INIT level de-assert uses false. */
  assert: boolean;
  shorthand: Shorthand;
  /** Index of the sending vCPU, or -1 for I/O sources (IOAPIC, MSI). */
  source: number;
  /** Destination IDs are 32-bit (x2APIC format) rather than 8-bit. */
  x2apic?: boolean;
}

/** Where interrupt messages are delivered: the set of local APICs. */
export interface ApicBus {
  deliver(msg: ApicMessage): void;
}

/** Receives EOI broadcasts for level-triggered vectors (the IOAPIC does). */
export interface EoiListener {
  onEoi(vector: number): void;
}

/**
 * Makes vCPU `vcpu` notice that it has something pending: wakes it if it is
 * parked in HLT, forces it out of KVM_RUN if it is running guest code.
 */
export type WakeFn = (vcpu: number) => void;

/** Guest TSC as the LAPIC's TSC-deadline timer sees it. */
export interface TscSource {
  /** Ticks per millisecond (KVM_GET_TSC_KHZ). */
  readonly khz: number;
  /** The guest's current TSC value. */
  nowTicks(): number;
}

/**
 * Guest RAM as the LAPIC's paravirtual EOI word needs it, by guest-physical
 * address (memory/guest-memory.ts's `GuestMemory` is one).
 */
export interface GuestRam {
  /** True if [gpa, gpa + length) is RAM. */
  contains(gpa: number, length: number): boolean;
  /** A live view of RAM over [gpa, gpa + length); throws where it is not RAM. */
  view(gpa: number, length: number): Uint8Array;
}
