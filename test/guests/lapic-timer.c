/*
 * LAPIC timer: periodic mode (vector 0x40, divide by 1, PERIOD bus ticks)
 * until 10 interrupts arrive, then one-shot mode (vector 0x41): exactly one
 * interrupt, then none while the CPU keeps halting on the periodic tick
 * source switched off. Exit 0x50.
 * RESULTS: [0] periodic ticks, [1] one-shot ticks, [2] CCR read while
 * counting (must be below the initial count), [3] ticks after the one-shot.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)
#define PERIOD 2000000 /* 2 ms at the 1 GHz APIC bus clock KVM and nodevisor use */

static volatile u32 periodic, oneshot;

void isr(u32 vector) {
  if (vector == 0x40) periodic++;
  if (vector == 0x41) oneshot++;
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)cpu; (void)ncpus;
  lapic_enable();
  lapic_write(LAPIC_TIMER_DCR, 0xb);                /* divide by 1 */
  lapic_write(LAPIC_LVT_TIMER, 0x40 | (1 << 17));   /* periodic */
  lapic_write(LAPIC_TIMER_ICR, PERIOD);
  R[2] = lapic_read(LAPIC_TIMER_CCR);
  while (periodic < 10) safe_halt();
  cli();
  lapic_write(LAPIC_LVT_TIMER, 0x41);               /* one-shot; writing ICR re-arms */
  lapic_write(LAPIC_TIMER_ICR, PERIOD);
  while (oneshot < 1) safe_halt();
  R[0] = periodic;
  R[1] = oneshot;
  /* A one-shot timer fires once: spin a while (several periods) and check. */
  for (u32 i = 0; i < 20000; i++) { sti(); pause(); }
  cli();
  R[3] = oneshot;
  debug_exit(0x50);
}

void ap_main(u32 apic_id) { (void)apic_id; }
