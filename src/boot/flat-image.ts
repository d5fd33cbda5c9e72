import type { EntryMode } from '../vcpu/boot-state.js';

/** A flat binary the VMM loads and enters directly (our test and demo guests). */
export interface FlatImage {
  /** Path of the binary, or its bytes. */
  source: string | Uint8Array;
  mode: EntryMode;
  /** Guest-physical load address; default 0x100000 (0x8000 in real mode). */
  loadAddress?: number;
  /** Entry point; default the load address. */
  entry?: number;
  /**
   * 'all' (default): every vCPU enters at `entry` with its index in rdi.
   * 'sipi': only vCPU 0 does; the others wait for INIT-SIPI-SIPI, as under
   * firmware that leaves APs to the OS.
   */
  startup?: 'all' | 'sipi';
}
