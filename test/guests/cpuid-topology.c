/*
 * The topology as a guest sees it. Every vCPU records its LAPIC ID and
 * what CPUID returns for the leaves a guest reads its topology from; then
 * vCPU 0 sends one fixed IPI (vector 0x60, physical destination) to each
 * other vCPU, addressed by the APIC ID that vCPU recorded, one at a time.
 * Exit 0x44 when every IPI has arrived, 0x45 if one does not.
 * RESULTS: [0] vCPUs that recorded, [1] IPIs taken; per vCPU i from word
 * 64 + i * 256: [0] LAPIC ID, [1] IPIs it took, [2] probes, then six words
 * per probe: leaf, subleaf, EAX, EBX, ECX, EDX.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)
#define CPU(i) (R + 64 + (i) * 256)
#define VECTOR 0x60

static const u32 probes[][2] = {
  {0, 0}, {1, 0}, {4, 0}, {4, 1}, {4, 2}, {4, 3}, {4, 4},
  {0xb, 0}, {0xb, 1}, {0xb, 2}, {0x1f, 0}, {0x1f, 1}, {0x1f, 2},
  {0x80000000, 0}, {0x80000001, 0}, {0x80000008, 0},
  {0x8000001d, 0}, {0x8000001d, 1}, {0x8000001d, 2}, {0x8000001d, 3}, {0x8000001d, 4}, {0x8000001e, 0},
};
#define NPROBES (sizeof(probes) / sizeof(probes[0]))

/* vCPU index by APIC ID (the test keeps IDs below 256). */
static volatile u32 index_of[256];

void isr(u32 vector) {
  if (vector == VECTOR) {
    CPU(index_of[lapic_id()])[1]++;
    atomic_inc(&R[1]);
  }
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  lapic_enable();
  volatile u32 *me = CPU(cpu);
  u32 id = lapic_id();
  me[0] = id;
  me[2] = NPROBES;
  for (u32 p = 0; p < NPROBES; p++) {
    u32 a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(probes[p][0]), "c"(probes[p][1]));
    volatile u32 *out = me + 3 + p * 6;
    out[0] = probes[p][0];
    out[1] = probes[p][1];
    out[2] = a;
    out[3] = b;
    out[4] = c;
    out[5] = d;
  }
  index_of[id & 0xff] = cpu;
  atomic_inc(&R[0]);
  if (cpu != 0) for (;;) safe_halt();

  while (atomic_load(&R[0]) < ncpus) pause();
  for (u32 j = 1; j < ncpus; j++) {
    send_ipi(CPU(j)[0], VECTOR); /* fixed, physical, edge, no shorthand */
    u64 spin = 0;
    while (atomic_load(&R[1]) < j) {
      if (++spin == 30000000) debug_exit(0x45);
      pause();
    }
  }
  debug_exit(0x44);
}

void ap_main(u32 apic_id) { (void)apic_id; }
