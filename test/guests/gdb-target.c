/*
 * For the gdb stub: vCPU 0 calls gdb_marker(1), (2), (3) - a breakpoint
 * target whose first argument (RDI) a debugger can check - and stores
 * the sum of the results (30) in RESULTS[0], then exits 0x21. Other vCPUs
 * spin until it is done. Built with symbols kept in the .elf beside the
 * flat binary.
 */
#include "kit.h"
#define R ((volatile u64 *)RESULTS)

volatile u64 gdb_counter;
volatile u32 gdb_done;

__attribute__((noinline)) u64 gdb_marker(u64 step) {
  gdb_counter += step;
  return gdb_counter * 3;
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) {
    while (!gdb_done) pause();
    return;
  }
  u64 sum = 0;
  for (u64 i = 1; i <= 3; i++) sum += gdb_marker(i);
  R[0] = sum;
  gdb_done = 1;
  debug_exit(0x21);
}

void isr(u32 vector) { (void)vector; }
void ap_main(u32 apic_id) { (void)apic_id; }
