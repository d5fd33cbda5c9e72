import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FlatImage } from '../boot/flat-image.js';
import { buildGuest, PACKAGE_ROOT } from './build.js';

export const DEMO_LOAD_ADDRESS = 0x100000;
const DEMO_SOURCE = join(PACKAGE_ROOT, 'guests', 'demo.S');
/** Where `npm install` leaves the demo guest. */
export const DEMO_BINARY = join(PACKAGE_ROOT, 'dist', 'guests', 'demo.bin');

/** Builds the demo guest (at install time, or on first use if missing). */
export function buildDemo(outDir?: string): string {
  return buildGuest({ sources: [DEMO_SOURCE], loadAddress: DEMO_LOAD_ADDRESS, outDir });
}

/**
 * The built-in demo guest: every vCPU enters in 64-bit mode and checks in
 * with its APIC ID; the first reports each on the serial console and powers
 * the machine off through ACPI.
 */
export function demoImage(): FlatImage {
  const path = existsSync(DEMO_BINARY) ? DEMO_BINARY : buildDemo();
  return { source: path, mode: 'long', loadAddress: DEMO_LOAD_ADDRESS };
}
