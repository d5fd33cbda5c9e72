/*
 * Serial receive interrupts. IOAPIC build (default): vCPU 0 routes IOAPIC
 * pin 4 (COM1's IRQ) to APIC ID TARGET as vector 0x70. PIC build (-DPIC):
 * the 8259 pair is initialised (vectors 0x20/0x28) with only IRQ 4
 * unmasked, the IOAPIC left masked, so the interrupt arrives as ExtINT
 * through the BSP's LINT0. Then the UART's receive interrupt is enabled and
 * every vCPU halts; the handler records (APIC ID << 8 | byte) per byte.
 * Exit 0x70 once EXPECTED bytes have arrived.
 * RESULTS: [1] ready, [2] bytes received, [3] APICs enabled, [16 + i] records.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)
#ifndef TARGET
#define TARGET 0
#endif
#ifndef EXPECTED
#define EXPECTED 3
#endif
#ifdef PIC
#define VECTOR 0x24
#else
#define VECTOR 0x70
#endif

void isr(u32 vector) {
  if (vector == VECTOR) {
    while (inb(COM1_LSR) & 1) {
      u32 i = atomic_inc(&R[2]) - 1;
      R[16 + i] = (lapic_id() << 8) | inb(COM1);
    }
#ifdef PIC
    outb(0x20, 0x20);
#endif
  }
  lapic_eoi();
}

static void pic_init(void) {
  outb(0x20, 0x11); outb(0xa0, 0x11);   /* ICW1: edge, cascade, ICW4 */
  outb(0x21, 0x20); outb(0xa1, 0x28);   /* ICW2: vector bases */
  outb(0x21, 0x04); outb(0xa1, 0x02);   /* ICW3: slave on IR2 */
  outb(0x21, 0x01); outb(0xa1, 0x01);   /* ICW4: 8086 mode */
  outb(0x21, 0xef); outb(0xa1, 0xff);   /* only IRQ 4 */
}

void guest_main(u32 cpu, u32 ncpus) {
  lapic_enable();
  atomic_inc(&R[3]);
  if (cpu == 0) {
    /* A software-disabled APIC refuses fixed interrupts: route only once all are enabled. */
    while (atomic_load(&R[3]) < ncpus) pause();
#ifdef PIC
    lapic_write(LAPIC_LVT_LINT0, 0x700); /* ExtINT, unmasked: virtual wire */
    pic_init();
#else
    outb(0x21, 0xff); outb(0xa1, 0xff);  /* mask the 8259s, as an IOAPIC OS does */
    ioapic_route(4, VECTOR, TARGET, 0);
#endif
    outb(COM1 + 1, 0x01); /* IER: received data available */
    outb(COM1 + 4, 0x08); /* MCR: OUT2 gates the IRQ line on a PC */
    R[1] = 1;
  }
  for (;;) {
    cli();
    if (atomic_load(&R[2]) >= EXPECTED) debug_exit(0x70);
    safe_halt();
  }
}

void ap_main(u32 apic_id) { (void)apic_id; }
