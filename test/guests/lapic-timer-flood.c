/*
 * A LAPIC timer in periodic mode with an initial count of 1 at divide-by-1:
 * a 1 ns period, which no interrupt handler can keep up with. With the
 * timer running and interrupts on, the guest writes WRITES bytes to the POST
 * port and then exits with 0x50. A VMM that delivers every period starves
 * the guest; one that clamps the period (as KVM and hardware effectively
 * do) lets it finish. RESULTS: [0] timer interrupts taken, [1] port writes
 * done.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)
#define WRITES 20000

static volatile u32 ticks;

void isr(u32 vector) {
  if (vector == 0x40) ticks++;
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) return;
  lapic_enable();
  lapic_write(LAPIC_TIMER_DCR, 0xb);              /* divide by 1 */
  lapic_write(LAPIC_LVT_TIMER, 0x40 | (1 << 17)); /* periodic */
  lapic_write(LAPIC_TIMER_ICR, 1);
  sti();
  for (u32 i = 0; i < WRITES; i++) {
    outb(POST_PORT, (u8)i);
    R[1] = i + 1;
  }
  cli();
  R[0] = ticks;
  debug_exit(0x50);
}

void ap_main(u32 apic_id) { (void)apic_id; }
