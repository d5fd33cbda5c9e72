/*
 * Broadcast IPIs: vCPU 0 sends ROUNDS all-excluding-self IPIs (vector 0x58),
 * each time waiting until every other vCPU has counted it, then ROUNDS
 * all-including-self IPIs (0x59). Exit 0x62 if every count is exact.
 * RESULTS: [8 + cpu] 0x58 count, [8 + 64 + cpu] 0x59 count.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)
#define ROUNDS 10

static volatile u32 acks;

void isr(u32 vector) {
  u32 me = lapic_id();
  if (vector == 0x58) R[8 + me]++;
  if (vector == 0x59) R[8 + 64 + me]++;
  atomic_inc(&acks);
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  lapic_enable();
  atomic_inc(&R[1]);
  if (cpu != 0) for (;;) safe_halt();
  while (atomic_load(&R[1]) < ncpus) pause();
  for (u32 r = 0; r < ROUNDS; r++) {
    acks = 0;
    send_ipi(0, 0xc0000 | 0x58);
    while (atomic_load(&acks) < ncpus - 1) pause();
  }
  for (u32 r = 0; r < ROUNDS; r++) {
    acks = 0;
    send_ipi(0, 0x80000 | 0x59);
    /* Spin, not hlt: other vCPUs' acks are memory writes, which wake nobody. */
    sti();
    while (atomic_load(&acks) < ncpus) pause();
    cli();
  }
  for (u32 c = 0; c < ncpus; c++) {
    if (R[8 + c] != (c == 0 ? 0 : ROUNDS)) debug_exit(0x63);
    if (R[8 + 64 + c] != ROUNDS) debug_exit(0x63);
  }
  debug_exit(0x62);
}

void ap_main(u32 apic_id) { (void)apic_id; }
