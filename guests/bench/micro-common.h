/*
 * Shared by the `micro` benchmark guests (guests/bench/micro-*.c, linked
 * with micro-common.c). Guests time events with RDTSC and calibrate the TSC
 * against the ACPI PM timer (3.579545 MHz, derived by the VMM from the
 * host's CLOCK_MONOTONIC) over the whole run, so the host converts ticks to
 * microseconds without trusting a nominal TSC frequency.
 *
 * Results (read by src/bench/micro-guests.ts once the guest has exited):
 *   u64 header at RESULTS: see the H_* indices;
 *   u32 samples (TSC ticks) at SAMPLES, u32 reference samples at REF_SAMPLES.
 */
#ifndef MICRO_COMMON_H
#define MICRO_COMMON_H
#include "kit.h"

#define PM_TMR_PORT   0x608      /* ACPI PM timer: 24 bits at 3.579545 MHz */
#define MICRO_MAGIC   0x6f7263696dul
#define MICRO_EXIT    0x3c       /* debug-exit code of a finished run */
#define HDR           ((volatile u64 *)RESULTS)
#define SAMPLES       ((volatile u32 *)(RESULTS + 0x1000))
#define REF_SAMPLES   ((volatile u32 *)(RESULTS + 0x41000))
#define MAX_SAMPLES   0x10000

enum { H_MAGIC, H_TSC0, H_PM0, H_TSC1, H_PM1, H_COUNT, H_REF_COUNT };

static inline u64 rdtsc(void) {
  u32 lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)::"memory");
  return ((u64)hi << 32) | lo;
}

static inline u32 inl(u16 port) {
  u32 v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

/* Records the TSC and the PM timer at the start of the measured window. */
void calibration_start(void);
/* Records them at the end (after at least 10 ms), publishes the counts and exits with MICRO_EXIT. */
void micro_finish(u32 count, u32 ref_count);

#endif
