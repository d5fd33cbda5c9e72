/*
 * IPI round trip between two vCPUs, timed by the sender with RDTSC.
 * vCPU 0 sends PING (fixed IPI) to vCPU 1, whose handler sends PONG back;
 * a sample is the TSC from just before vCPU 0's ICR write to the first
 * statement of its PONG handler. WARMUP + ROUNDS round trips; the host drops
 * the first WARMUP samples.
 *
 * BUSY=0: both vCPUs wait halted (sti; hlt), as an idle OS does; vCPU 0
 *   starts a round only once vCPU 1 has announced it is halting and a short
 *   pause loop has passed, so every PING finds it parked in HLT.
 * BUSY=1: both spin in a `pause` loop with interrupts enabled, so every
 *   delivery has to force a running vCPU out of the guest (with the
 *   userspace irqchip: the VMM's kick, a signal to the vCPU's thread).
 *
 * Handlers end with paravirtual EOI where the hypervisor offers it, as a
 * Linux guest's do (in every irqchip mode: KVM's LAPIC offers it too).
 */
#include "micro-common.h"

#ifndef ROUNDS
#define ROUNDS 200
#endif
#ifndef WARMUP
#define WARMUP 10
#endif
#ifndef BUSY
#define BUSY 0
#endif
#define PING 0x50
#define PONG 0x51
#define SETTLE_PAUSES 64

static volatile u64 t0;
static volatile u32 round, pong, ready, idle;
/* Each CPU's PV EOI word; PING is handled on CPU 1, PONG on CPU 0. */
static volatile u32 pv_word[2] __attribute__((aligned(8)));
static volatile u32 pv_on[2];

void isr(u32 vector) {
  u32 cpu = vector == PING ? 1 : 0;
  if (vector == PONG) {
    u64 t1 = rdtsc();
    SAMPLES[round] = (u32)(t1 - t0);
    pong = 1;
  } else if (vector == PING) {
    idle = 0;
    send_ipi(0, PONG);
  }
  if (pv_on[cpu]) pv_eoi(&pv_word[cpu]);
  else lapic_eoi();
}

static void receiver(void) {
  atomic_inc(&ready);
  for (;;) {
#if BUSY
    sti();
    pause();
#else
    cli();
    idle = 1;
    safe_halt();
#endif
  }
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  lapic_enable();
  pv_on[cpu] = (u32)pv_eoi_enable(&pv_word[cpu]);
  if (cpu != 0) receiver();
  while (!atomic_load(&ready)) pause();
  calibration_start();
  for (u32 r = 0; r < WARMUP + ROUNDS; r++) {
#if !BUSY
    while (!atomic_load(&idle)) pause();
    for (u32 i = 0; i < SETTLE_PAUSES; i++) pause();
#endif
    cli();
    round = r;
    pong = 0;
    t0 = rdtsc();
    send_ipi(1, PING);
#if BUSY
    sti();
    while (!pong) pause();
#else
    while (!pong) safe_halt();
#endif
  }
  cli();
  micro_finish(WARMUP + ROUNDS, 0);
}

void ap_main(u32 apic_id) { (void)apic_id; }
