/*
 * IPI ping-pong across every ordered pair of vCPUs: the sender pings the
 * receiver (vector 0x50), whose handler pongs back (vector 0x51); ROUNDS
 * times per pair, one sender at a time. Senders take turns; the next one is
 * woken by an IPI (0x52). Exit 0x60 when every count is exact, 0x61 if not.
 * RESULTS: [4 + dst * 64 + src] pings dst received from src, [3] pongs.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)
#define ROUNDS 8
#define PING 0x50
#define PONG 0x51
#define POKE 0x52

static volatile u32 sender, turn, pong, ncpu;

void isr(u32 vector) {
  u32 me = lapic_id();
  if (vector == PING) {
    R[4 + me * 64 + sender]++;
    send_ipi(sender, PONG);
  } else if (vector == PONG) {
    pong = 1;
    R[3]++;
  }
  lapic_eoi();
}

void guest_main(u32 cpu, u32 ncpus) {
  lapic_enable();
  if (cpu == 0) ncpu = ncpus;
  atomic_inc(&R[1]);
  while (atomic_load(&R[1]) < ncpus) pause();
  sti();
  while (turn != cpu) safe_halt();
  sender = cpu;
  for (u32 dst = 0; dst < ncpus; dst++) {
    if (dst == cpu) continue;
    for (u32 r = 0; r < ROUNDS; r++) {
      cli();
      pong = 0;
      send_ipi(dst, PING);
      while (!pong) safe_halt();
    }
  }
  if (cpu + 1 < ncpus) {
    turn = cpu + 1;
    send_ipi(cpu + 1, POKE);
    for (;;) safe_halt();
  }
  for (u32 d = 0; d < ncpus; d++)
    for (u32 s = 0; s < ncpus; s++)
      if (d != s && R[4 + d * 64 + s] != ROUNDS) debug_exit(0x61);
  debug_exit(R[3] == ncpus * (ncpus - 1) * ROUNDS ? 0x60 : 0x61);
}

void ap_main(u32 apic_id) { (void)apic_id; }
