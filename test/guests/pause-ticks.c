/*
 * For pause/resume: vCPU 0 takes a 1 ms periodic LAPIC timer and counts its
 * ticks, recording the ACPI PM timer (port 0x608, 3.579545 MHz) at each
 * one; vCPU 1 spins, counting loop iterations. The host pauses, checks that
 * nothing moved, resumes, and compares the PM timer across the pause.
 * Until the host sets R[15], then exit 0x42.
 * RESULTS: [0] ticks, [1] spins (in thousands), [2] PM timer at the last
 * tick, [3] PM timer at the tick before it, [4] largest PM-timer step
 * between two ticks seen since the host last cleared it.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)
#define PM_TMR 0x608

static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

void isr(u32 vector) {
  if (vector == 0x40) {
    u32 now = inl(PM_TMR) & 0xffffff;
    u32 step = (now - R[2]) & 0xffffff;
    if (R[0] > 0 && step > R[4]) R[4] = step;
    R[3] = R[2];
    R[2] = now;
    R[0]++;
  }
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu == 1) {
    for (u32 n = 0; !R[15]; n++)
      if ((n & 1023) == 0) R[1]++;
    return;
  }
  lapic_enable();
  lapic_write(LAPIC_TIMER_DCR, 0xb);              /* divide by 1 */
  lapic_write(LAPIC_LVT_TIMER, 0x40 | (1 << 17)); /* periodic */
  lapic_write(LAPIC_TIMER_ICR, 1000000);          /* 1 ms at the 1 GHz bus clock */
  while (!R[15]) safe_halt();
  cli();
  debug_exit(0x42);
}

void ap_main(u32 apic_id) { (void)apic_id; }
