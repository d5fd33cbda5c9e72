/*
 * Shared by the virtio-blk test guests (virtio-blk.c, virtio-blk-mq.c):
 * the data pattern the host test computes too, failure reporting, and a
 * LAPIC timer that lets a wait notice it has stalled.
 */
#ifndef VIRTIO_BLK_COMMON_H
#define VIRTIO_BLK_COMMON_H
#include "virtio.h"

#define R ((volatile u32 *)RESULTS)
/* R[R_FAILED]: the source line of the first failed check. */
#define R_STAGE  0
#define R_FAILED 1
#define EXIT_PASS 0x10
#define EXIT_FAIL 0x11

#define TIMER_VECTOR 0x30
#define TIMER_PERIOD 10000000 /* 10 ms at the 1 GHz APIC bus clock */
/* A wait that sees no progress for this many ticks has stalled: a lost completion or interrupt. */
#define STALL_TICKS  500

#define CHECK(cond) do { if (!(cond)) fail(__LINE__); } while (0)
static void __attribute__((noreturn)) fail(u32 line) {
  __atomic_compare_exchange_n(&R[R_FAILED], &(u32){ 0 }, line, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  debug_exit(EXIT_FAIL);
  __builtin_unreachable();
}

/* u32 words that depend on the sector, the offset in it and a seed; kvm-virtio-blk.test.ts computes the same. */
static inline u32 pattern(u64 off, u32 seed) {
  return (u32)(off >> 9) * 0x9e3779b1u + (u32)(off & 511) * 0x85ebca77u + seed;
}
static inline u8 pattern_byte(u64 off, u32 seed) { return (u8)(pattern(off & ~3ul, seed) >> (8 * (off & 3))); }

/* Periodic 10 ms ticks on this vCPU. */
static inline void watchdog_start(void) {
  lapic_write(LAPIC_TIMER_DCR, 0xb); /* divide by 1 */
  lapic_write(LAPIC_LVT_TIMER, TIMER_VECTOR | (1 << 17));
  lapic_write(LAPIC_TIMER_ICR, TIMER_PERIOD);
}
#endif
