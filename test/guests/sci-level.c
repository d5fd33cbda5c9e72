/*
 * A level-triggered IOAPIC line: the ACPI SCI (IRQ 9), raised by the host
 * pressing the power button. vCPU 0 routes pin 9 level-triggered,
 * active-high to vector 0x71 and enables PWRBTN_EN; the handler clears
 * PWRBTN_STS (lowering the line) and EOIs. A second press can only arrive if
 * the EOI reached the IOAPIC and cleared its remote IRR. Exit 0x71 after two.
 * RESULTS: [1] ready, [2] presses seen, [3] handler runs.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)
#define PM1_STS 0x600
#define PM1_EN  0x602
#define PWRBTN  0x100

void isr(u32 vector) {
  if (vector == 0x71) {
    R[3]++;
    if (inw(PM1_STS) & PWRBTN) {
      outw(PM1_STS, PWRBTN);
      R[2]++;
    }
  }
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)cpu; (void)ncpus;
  lapic_enable();
  outb(0x21, 0xff); outb(0xa1, 0xff);
  ioapic_route(9, 0x71, 0, 1 << 15);   /* level-triggered, active high */
  outw(PM1_EN, PWRBTN);
  R[1] = 1;
  for (;;) {
    cli();
    if (R[2] >= 2) debug_exit(0x71);
    safe_halt();
  }
}

void ap_main(u32 apic_id) { (void)apic_id; }
