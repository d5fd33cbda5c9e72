/* TSC calibration and the result header for the micro benchmark guests (see micro-common.h). */
#include "micro-common.h"

#define PM_MASK 0xffffffu
#define MIN_WINDOW_PM_TICKS 35795u /* 10 ms: reading the PM timer costs one port exit, ~0.1% of this */

/*
 * A PM timer read is a port exit taking microseconds; the TSC is sampled on
 * both sides and the midpoint stands for the moment of the read.
 */
static void mark(u32 tsc_slot, u32 pm_slot) {
  u64 a = rdtsc();
  u32 pm = inl(PM_TMR_PORT) & PM_MASK;
  u64 b = rdtsc();
  HDR[tsc_slot] = a + (b - a) / 2;
  HDR[pm_slot] = pm;
}

void calibration_start(void) {
  mark(H_TSC0, H_PM0);
}

void micro_finish(u32 count, u32 ref_count) {
  /* The 24-bit PM timer wraps every 4.69 s; runs are far shorter. */
  do mark(H_TSC1, H_PM1);
  while (((HDR[H_PM1] - HDR[H_PM0]) & PM_MASK) < MIN_WINDOW_PM_TICKS);
  HDR[H_COUNT] = count;
  HDR[H_REF_COUNT] = ref_count;
  HDR[H_MAGIC] = MICRO_MAGIC;
  debug_exit(MICRO_EXIT);
}
