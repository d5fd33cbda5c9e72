/**
 * The benchmark suites `nodevisor bench` and `runBenchmark` know, by name.
 * A suite implements `Suite` (types.ts); register it here.
 */
import type { Suite } from './types.js';
import { microSuite } from './micro.js';
import { scalingSuite } from './scaling.js';
import { bootSuite } from './boot.js';
import { virtioBlkSuite } from './virtio-blk.js';
import { linuxSuite } from './linux.js';
import { snapshotSuite } from './snapshot.js';
import { firmwareSuite } from './firmware.js';
import { virtioNetSuite } from './virtio-net.js';
import { footprintSuite } from './footprint.js';

export const SUITES: Map<string, Suite> = new Map<string, Suite>([
  [microSuite.name, microSuite],
  [scalingSuite.name, scalingSuite],
  [bootSuite.name, bootSuite],
  [virtioBlkSuite.name, virtioBlkSuite],
  [linuxSuite.name, linuxSuite],
  [snapshotSuite.name, snapshotSuite],
  [firmwareSuite.name, firmwareSuite],
  [virtioNetSuite.name, virtioNetSuite],
  [footprintSuite.name, footprintSuite],
]);

/** What runs when no suite is named (those of these that are registered). `boot`, `linux` and `firmware` need the test kernel, so they are asked for by name. */
export const DEFAULT_SUITES: readonly string[] = ['micro', 'scaling'];
