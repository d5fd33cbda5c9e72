/*
 * Scaling benchmark guest. Every vCPU enters guest_main (startup 'all'),
 * builds its own GDT and TSS, starts a periodic LAPIC timer and runs one
 * workload, chosen at build time with -DWORKLOAD=WL_* (scaling-workloads.h):
 * compute, memory and contention run in ring 3 (native speed on hosts that
 * emulate ring 0), ipi runs in ring 0 because only ring 0 can send IPIs.
 *
 * Time is kept by vCPU 0's timer interrupt, which walks the phases:
 *   START   until every vCPU has checked in (after a warm-up pass, if any),
 *   WARMUP  WARMUP_TICKS ticks, so all vCPUs are up to speed together,
 *   MEASURE MEASURE_TICKS ticks: each vCPU counts its own work between the
 *           first and the last chunk it finishes in this phase, timed by RDTSC,
 *   STOP    each vCPU writes its record, sets its done flag and spins (ring 3
 *           cannot halt); once all are done vCPU 0 writes the debug-exit port.
 * At the start and end of MEASURE vCPU 0 also reads the ACPI PM timer (the
 * host's monotonic clock) between two RDTSCs, so the host can convert TSC
 * ticks into seconds without trusting a nominal TSC frequency.
 *
 * Memory (all user-accessible through the VMM's identity map):
 *   0x100000             image, then .bss: per-CPU GDT/TSS, kernel and user stacks
 *   RESULTS = 0x1000000  control block (below), the host reads it after the stop
 *   RESULTS + 0x1000     one 128-byte record per vCPU (struct rec)
 *   BUFFERS = 0x2000000  memory workload: per vCPU MEM_BUF_BYTES source, then as much destination
 * src/bench/scaling-guest.ts mirrors these offsets.
 */
#include "kit.h"
#include "ring3.h"
#include "scaling-workloads.h"

#ifndef WORKLOAD
#error "build with -DWORKLOAD=WL_COMPUTE|WL_MEMORY|WL_CONTENTION|WL_IPI"
#endif
#ifndef WARMUP_TICKS
#define WARMUP_TICKS 30
#endif
#ifndef MEASURE_TICKS
#define MEASURE_TICKS 250
#endif
#ifndef TIMER_PERIOD
#define TIMER_PERIOD 1000000 /* APIC bus ticks: 1 ms at the 1 GHz bus clock KVM and nodevisor use */
#endif
#ifndef MEM_BUF_BYTES
#define MEM_BUF_BYTES (4ul << 20)
#endif

#define TIMER_VECTOR 0x40
#define IPI_VECTOR   0x41
#define EXIT_OK      0x31
#define PM_TIMER_PORT 0x608
#define MSR_GS_BASE  0xc0000101u
#define STACK_BYTES 4096

enum { P_START, P_WARMUP, P_MEASURE, P_STOP };

/* Control block at RESULTS; the contention counter sits on its own cache lines. */
struct control {
  u32 phase, ready, done, ncpus, workload, ticks_in_phase;
  u64 pad0[5];
  /* 0x40: calibration pairs [0] at the start of MEASURE, [1] at STOP. */
  u64 cal_tsc[2];   /* midpoint of the RDTSC bracket */
  u64 cal_pm[2];    /* PM timer reading (24 bits) */
  u64 cal_width[2]; /* bracket width in TSC ticks: the pair's uncertainty */
  u64 pad1[18];
  /* 0x100 */
  volatile u64 counter;
};

/* One per vCPU at RESULTS + 0x1000 + cpu * 128. */
struct rec {
  u64 tsc_start, tsc_end; /* the measured window */
  u64 ops;                /* iterations, bytes or increments done in it; IPIs sent for ipi */
  u64 ticks;              /* timer interrupts taken so far (kept by the ISR) */
  u64 window_ticks;       /* timer interrupts taken inside the window */
  u64 checksum;           /* the compute state: keeps the loop alive */
  u64 ipis;               /* IPIs taken (kept by the ISR) */
  u32 done, alive;        /* alive = cpu + 1 once the vCPU has started */
  u64 inbox;              /* ipi: tokens the previous vCPU passed to this one */
  u64 pad[7];
};

#define CTL ((volatile struct control *)RESULTS)
#define REC(cpu) ((volatile struct rec *)(RESULTS + 0x1000 + (u64)(cpu) * sizeof(struct rec)))
#define BUFFERS 0x2000000ul

_Static_assert(sizeof(struct rec) == 128, "record size is part of the host contract");
_Static_assert(__builtin_offsetof(struct control, cal_tsc) == 0x40, "control layout is part of the host contract");
_Static_assert(__builtin_offsetof(struct control, counter) == 0x100, "control layout is part of the host contract");

/* Reached through GS in the ISR: which vCPU is this, without an APIC exit. */
struct percpu {
  struct percpu *self;
  u32 cpu, ncpus;
  volatile struct rec *rec;
  struct ring3_cpu ring3;
} __attribute__((aligned(64)));

static struct percpu percpu[MAX_CPUS];
static u8 kernel_stacks[MAX_CPUS][STACK_BYTES] __attribute__((aligned(16)));
#if WORKLOAD != WL_IPI
static u8 user_stacks[MAX_CPUS][STACK_BYTES] __attribute__((aligned(16)));
#endif

static inline u64 rdtsc(void) {
  u32 lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((u64)hi << 32) | lo;
}
static inline u32 pm_timer(void) {
  u32 v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"((u16)PM_TIMER_PORT));
  return v & 0xffffff;
}
static inline void wrmsr(u32 msr, u64 v) {
  __asm__ volatile("wrmsr" : : "c"(msr), "a"((u32)v), "d"((u32)(v >> 32)));
}
static inline struct percpu *this_cpu(void) {
  struct percpu *p;
  __asm__ volatile("mov %%gs:0, %0" : "=r"(p));
  return p;
}

/* Boot GDT entries plus ring-3 code/data and a TSS whose RSP0 is this vCPU's kernel stack. */
static void setup_cpu(struct percpu *pc, u32 cpu, u32 ncpus) {
  pc->self = pc;
  pc->cpu = cpu;
  pc->ncpus = ncpus;
  pc->rec = REC(cpu);
  ring3_setup(&pc->ring3, (u64)kernel_stacks[cpu] + STACK_BYTES);
  wrmsr(MSR_GS_BASE, (u64)pc);
}

/* RDTSC / PM timer / RDTSC, best of a few: the narrowest bracket pins the pair down. */
static void calibrate(int which) {
  u64 best = ~0ul;
  for (int i = 0; i < 4; i++) {
    u64 a = rdtsc();
    u32 pm = pm_timer();
    u64 b = rdtsc();
    if (b - a < best) {
      best = b - a;
      CTL->cal_tsc[which] = a + (b - a) / 2;
      CTL->cal_pm[which] = pm;
    }
  }
  CTL->cal_width[which] = best;
}

/* vCPU 0's clock: one step per timer tick. */
static void drive(u32 ncpus) {
  u32 phase = CTL->phase;
  u32 ticks = ++CTL->ticks_in_phase;
  if (phase == P_START && atomic_load(&CTL->ready) == ncpus) {
    CTL->ticks_in_phase = 0;
    CTL->phase = P_WARMUP;
  } else if (phase == P_WARMUP && ticks >= WARMUP_TICKS) {
    calibrate(0);
    CTL->ticks_in_phase = 0;
    CTL->phase = P_MEASURE;
  } else if (phase == P_MEASURE && ticks >= MEASURE_TICKS) {
    calibrate(1);
    CTL->phase = P_STOP;
  } else if (phase == P_STOP && atomic_load(&CTL->done) == ncpus) {
    debug_exit(EXIT_OK);
  }
}

void isr(u32 vector) {
  struct percpu *pc = this_cpu();
  if (vector == TIMER_VECTOR) {
    pc->rec->ticks++;
    if (pc->cpu == 0) drive(pc->ncpus);
  } else if (vector == IPI_VECTOR) {
    pc->rec->ipis++;
  } else if (vector == 0xff) {
    return; /* spurious: no EOI */
  }
  lapic_eoi();
}

static void finish(volatile struct rec *rec, u64 t0, u64 ops, u64 ticks0, u64 checksum) {
  u64 t1 = rdtsc();
  rec->tsc_start = t0;
  rec->tsc_end = t1;
  rec->ops = ops;
  rec->window_ticks = rec->ticks - ticks0;
  rec->checksum = checksum;
  rec->done = 1;
  atomic_inc(&CTL->done);
}

#if WORKLOAD != WL_IPI
/* Ring 3: chunks of work until STOP, counting only what falls inside MEASURE. */
static void __attribute__((noreturn, used)) user_main(u64 cpu) {
  volatile struct rec *rec = REC(cpu);
  u64 state = 0x9e3779b97f4a7c15ul * (cpu + 1), ops = 0, base = 0, t0 = 0, ticks0 = 0;
  int started = 0;
#if WORKLOAD == WL_MEMORY
  u8 *src = (u8 *)(BUFFERS + cpu * 2 * MEM_BUF_BYTES), *dst = src + MEM_BUF_BYTES;
  u64 off = 0;
  /* Fill and copy once before checking in: first touches fault pages in, unmeasured. */
  wl_fill(src, state, MEM_BUF_BYTES);
  for (u64 o = 0; o < MEM_BUF_BYTES; o += WL_MEMORY_CHUNK) wl_copy(dst + o, src + o, WL_MEMORY_CHUNK);
#endif
  atomic_inc(&CTL->ready);
  for (;;) {
#if WORKLOAD == WL_COMPUTE
    state = wl_compute(state, WL_COMPUTE_CHUNK);
    ops += WL_COMPUTE_CHUNK;
#elif WORKLOAD == WL_MEMORY
    wl_copy(dst + off, src + off, WL_MEMORY_CHUNK);
    off = (off + WL_MEMORY_CHUNK) % MEM_BUF_BYTES;
    ops += WL_MEMORY_CHUNK;
#elif WORKLOAD == WL_CONTENTION
    wl_contend(&CTL->counter, WL_CONTENTION_CHUNK);
    ops += WL_CONTENTION_CHUNK;
#else
#error "unknown WORKLOAD"
#endif
    u32 phase = CTL->phase;
    if (phase == P_MEASURE && !started) {
      t0 = rdtsc();
      base = ops;
      ticks0 = rec->ticks;
      started = 1;
    } else if (phase == P_STOP) {
      break;
    }
  }
  finish(rec, t0, started ? ops - base : 0, ticks0, state);
  for (;;) pause(); /* no hlt in ring 3: vCPU 0's timer ISR ends the VM */
}

/* Into user_main on this vCPU's user stack, interrupts on. */
static void __attribute__((noreturn)) enter_user(u32 cpu) {
  ring3_enter(user_main, cpu, (u64)user_stacks[cpu] + STACK_BYTES, RFLAGS_IF);
}
#else
/*
 * Ring 0 token ring: each round passes a token to the next vCPU (in memory,
 * so IPIs that coalesce in the IRR lose nothing) and sends it an IPI, then
 * halts until the previous vCPU's token arrives. With one vCPU the IPI is a
 * self-IPI. Interrupts stay enabled outside the check-then-halt, so each IPI
 * (and the timer) is taken as soon as the VMM can inject it. Counts IPIs
 * sent: every one is an ICR write the VMM delivers.
 */
static void ipi_loop(struct percpu *pc) {
  volatile struct rec *rec = pc->rec;
  u32 next = (pc->cpu + 1) % pc->ncpus;
  volatile struct rec *nrec = REC(next);
  u64 sent = 0, consumed = 0, base = 0, t0 = 0, ticks0 = 0;
  int started = 0;
  atomic_inc(&CTL->ready);
  sti();
  /* IPIs to a LAPIC that is not enabled yet would be lost: wait for everyone. */
  while (atomic_load(&CTL->ready) < pc->ncpus) pause();
  for (;;) {
    u32 phase = CTL->phase;
    if (phase == P_MEASURE && !started) {
      t0 = rdtsc();
      base = sent;
      ticks0 = rec->ticks;
      started = 1;
    } else if (phase == P_STOP) {
      break;
    }
    __atomic_add_fetch(&nrec->inbox, 1, __ATOMIC_SEQ_CST);
    send_ipi(next, IPI_VECTOR);
    sent++;
    /* Checked with IF=0, then sti;hlt: a token that arrives in between still wakes us. */
    cli();
    while (rec->inbox <= consumed && CTL->phase != P_STOP) {
      safe_halt();
      cli();
    }
    sti();
    consumed++;
  }
  finish(rec, t0, started ? sent - base : 0, ticks0, rec->ipis);
  for (;;) safe_halt();
}
#endif

void guest_main(u32 cpu, u32 ncpus) {
  struct percpu *pc = &percpu[cpu];
  setup_cpu(pc, cpu, ncpus);
  pc->rec->alive = cpu + 1;
  if (cpu == 0) {
    CTL->ncpus = ncpus;
    CTL->workload = WORKLOAD;
  }
  lapic_enable();
  lapic_write(LAPIC_TIMER_DCR, 0xb);                        /* divide by 1 */
  lapic_write(LAPIC_LVT_TIMER, TIMER_VECTOR | (1 << 17));   /* periodic */
  lapic_write(LAPIC_TIMER_ICR, TIMER_PERIOD);
#if WORKLOAD == WL_IPI
  ipi_loop(pc);
#else
  enter_user(cpu);
#endif
}

void ap_main(u32 apic_id) { (void)apic_id; }
