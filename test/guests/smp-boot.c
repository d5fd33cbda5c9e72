/*
 * SMP bring-up: the BSP wakes every AP with INIT, INIT de-assert and two
 * StartUp IPIs (broadcast, all excluding self). Each AP switches to long
 * mode in ap_trampoline and records its APIC ID. Exit 0x42 when all
 * ncpus-1 APs are up, 0x43 if they do not come.
 * RESULTS: [0] APs online, [1] BSP APIC ID, [16 + id] = id + 1 per AP.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)

void guest_main(u32 cpu, u32 ncpus) {
  (void)cpu;
  lapic_enable();
  R[1] = lapic_id();
  u32 vector = install_trampoline();
  send_ipi(0, 0xc4500);          /* INIT, assert, all excluding self */
  send_ipi(0, 0x88500);          /* INIT level de-assert, all including self */
  send_ipi(0, 0xc4600 | vector); /* StartUp */
  send_ipi(0, 0xc4600 | vector); /* StartUp again, as the MP spec says */
  for (u64 spin = 0; spin < 3000000; spin++) {
    if (atomic_load(&R[0]) == ncpus - 1) debug_exit(0x42);
    pause();
  }
  debug_exit(0x43);
}

void ap_main(u32 apic_id) {
  R[16 + apic_id] = apic_id + 1;
  atomic_inc(&R[0]);
  for (;;) { cli(); hlt(); }
}

void isr(u32 vector) { (void)vector; }
