import type { Vm } from '../../src/vm/vm.js';

/** Where test/guests/pause-ticks.c (and snapshot-storm.c) publish their result words. */
export const RESULTS = 0x1000000;
/** Result word `i`: [0] timer ticks, [1] spins of vCPU 1, [4] largest PM-timer step between ticks, [15] stop. */
export const R = (vm: Vm, i: number): number => vm.memory.readU32(RESULTS + i * 4);
/** The ACPI PM timer's rate. */
export const PM_HZ = 3_579_545;
