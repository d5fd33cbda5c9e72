/*
 * Device interrupt latency, timed in the guest with RDTSC. The UART's IRQ 4
 * is routed through the IOAPIC to this vCPU (edge, vector 0x70) and the
 * 8259s are masked. A sample is the TSC from just before the OUT that sets
 * IER.THRI (the transmitter is always empty, so the UART model raises IRQ 4
 * while handling that port write) to the first statement of the handler:
 * one port exit, the line through the IOAPIC (ours, or KVM's with
 * irqchip=kernel) to the LAPIC, and the injection on re-entry. The handler
 * reads IIR (clearing the THRE interrupt, so the line falls) and clears IER.
 *
 * For scale, ROUNDS plain OUTs to the POST port (no interrupt) are timed
 * first: REF_SAMPLES holds those port-exit round trips.
 */
#include "micro-common.h"

#ifndef ROUNDS
#define ROUNDS 200
#endif
#ifndef WARMUP
#define WARMUP 10
#endif
#define VECTOR 0x70
#define UART_IER (COM1 + 1)
#define UART_IIR (COM1 + 2)
#define UART_MCR (COM1 + 4)

static volatile u64 t0;
static volatile u32 round, fired;

void isr(u32 vector) {
  if (vector == VECTOR) {
    u64 t1 = rdtsc();
    SAMPLES[round] = (u32)(t1 - t0);
    (void)inb(UART_IIR);
    outb(UART_IER, 0);
    fired = 1;
  }
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) for (;;) { cli(); hlt(); }
  lapic_enable();
  outb(0x21, 0xff); outb(0xa1, 0xff);   /* mask the 8259s, as an IOAPIC OS does */
  outb(UART_IER, 0);
  outb(UART_MCR, 0x08);                 /* OUT2 gates the IRQ line on a PC */
  ioapic_route(4, VECTOR, 0, 0);
  calibration_start();
  for (u32 r = 0; r < ROUNDS; r++) {
    u64 a = rdtsc();
    outb(POST_PORT, (u8)r);
    REF_SAMPLES[r] = (u32)(rdtsc() - a);
  }
  sti();
  for (u32 r = 0; r < WARMUP + ROUNDS; r++) {
    round = r;
    fired = 0;
    t0 = rdtsc();
    outb(UART_IER, 0x02);
    while (!fired) pause();
  }
  cli();
  micro_finish(WARMUP + ROUNDS, ROUNDS);
}

void ap_main(u32 apic_id) { (void)apic_id; }
