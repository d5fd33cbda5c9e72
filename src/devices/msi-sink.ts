/**
 * Where a device's message-signalled interrupts go: the raw address/data
 * pair it writes (MSI-X table entries hold exactly that). Each irqchip mode
 * provides one (src/vm/msi-signal.ts); every thread builds its own.
 */
export interface MsiSink {
  signal(addressLo: number, addressHi: number, data: number): void;
}
