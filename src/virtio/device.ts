import type { AccessSize } from '../devices/device.js';
import type { GuestRanges } from './guest-ranges.js';
import type { SplitVirtqueue } from './queue.js';

/**
 * The contract between the virtio PCI transport and a device type (block,
 * console, entropy): the transport owns feature negotiation, status, queues
 * and interrupts; the device interprets its configuration space and the
 * buffers on its queues.
 */

/** What the transport gives a device model in each thread. */
export interface VirtioContext {
  readonly ram: GuestRanges;
  readonly queues: readonly SplitVirtqueue[];
  /** Signals "used buffer" for queue `index` (MSI-X vector or INTx), if the driver asked for it. */
  interruptQueue(index: number): void;
  /**
   * The device hit a malformed queue or request: sets DEVICE_NEEDS_RESET,
   * signals a configuration change and stops processing until reset.
   */
  fail(reason: string): void;
  /** True once the driver set DRIVER_OK and until reset or failure. */
  live(): boolean;
  /** Feature bits the driver accepted. */
  driverFeatures(): bigint;
  /** The device changed its configuration space (e.g. link status): bumps config_generation and signals the driver. */
  configChanged(): void;
}

export interface VirtioDeviceModel {
  readonly name: string;
  /** Device-specific feature bits offered (the transport adds VERSION_1 and the ring features). */
  readonly features: bigint;
  /** Device configuration space size in bytes. */
  readonly configSize: number;
  configRead(offset: number, size: AccessSize): number;
  configWrite(offset: number, size: AccessSize, value: number): void;
  /** The driver notified queue `index` (any vCPU thread). Must return promptly. */
  notify(index: number): void;
  /** The driver reset the device; the transport has already reset the queues. */
  reset(): void;
  /** The device accepted the driver's features (FEATURES_OK), on the thread that set it. */
  featuresAccepted?(features: bigint): void;
}

/** Per-type facts the transport needs before a model exists in a thread. */
export interface VirtioDeviceType {
  readonly deviceId: number;
  /** PCI class code (base << 16 | sub << 8 | interface). */
  readonly classCode: number;
  /** Maximum size of each queue. */
  readonly queueSizes: readonly number[];
}
