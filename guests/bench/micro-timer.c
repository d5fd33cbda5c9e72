/*
 * LAPIC timer accuracy: periodic mode, divide by 1, PERIOD bus ticks (the
 * APIC bus runs at 1 GHz under KVM and nodevisor, so ticks are ns). The
 * handler stamps every interrupt with RDTSC; a sample is the TSC between
 * consecutive interrupts. WARMUP + TICKS periods; the host drops the first
 * WARMUP and compares the rest with the requested period.
 */
#include "micro-common.h"

#ifndef PERIOD
#define PERIOD 1000000 /* 1 ms */
#endif
#ifndef TICKS
#define TICKS 200
#endif
#ifndef WARMUP
#define WARMUP 2
#endif
#define VECTOR 0x40

static volatile u64 last;
static volatile u32 ticks;

void isr(u32 vector) {
  if (vector == VECTOR) {
    u64 now = rdtsc();
    if (ticks > 0 && ticks <= WARMUP + TICKS) SAMPLES[ticks - 1] = (u32)(now - last);
    last = now;
    ticks++;
  }
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) for (;;) { cli(); hlt(); }
  lapic_enable();
  lapic_write(LAPIC_TIMER_DCR, 0xb);                /* divide by 1 */
  lapic_write(LAPIC_LVT_TIMER, VECTOR | (1 << 17)); /* periodic */
  calibration_start();
  lapic_write(LAPIC_TIMER_ICR, PERIOD);
  while (atomic_load(&ticks) <= WARMUP + TICKS) safe_halt();
  cli();
  lapic_write(LAPIC_LVT_TIMER, VECTOR | (1 << 16)); /* masked */
  lapic_write(LAPIC_TIMER_ICR, 0);
  micro_finish(WARMUP + TICKS, 0);
}

void ap_main(u32 apic_id) { (void)apic_id; }
