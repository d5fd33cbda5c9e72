/*
 * Many virtio-blk requests in flight from every vCPU. Each vCPU writes
 * PER_CPU single sectors of its own region (sectors cpu * PER_CPU ...),
 * keeping up to QD of them outstanding, waits for all, then reads them back
 * the same way and checks the data. Completions are found only by interrupt
 * handlers, which drain the used ring and hand each request back to the
 * vCPU that issued it; a used id that is not outstanding counts as bad.
 *
 *   default    queue i belongs to vCPU i; MSI-X vector BLK_VECTOR + i,
 *              routed to that vCPU; event idx on; direct 3-descriptor chains
 *   SHARED=1   every vCPU submits to queue 0 under a spinlock (so notifies of
 *              one queue come from every vCPU); its vector goes to vCPU 0;
 *              chains through per-request indirect tables
 *   INTX=1     MSI-X stays off: INTA# is routed level-triggered to vCPU 0,
 *              whose handler reads the ISR (lowering the line) and drains
 *              every queue; no event idx (VIRTQ_AVAIL_F_NO_INTERRUPT path)
 *
 * A vCPU that takes its own completion interrupts halts while it waits;
 * the others spin. Exit EXIT_PASS once every vCPU is done and every count
 * in here adds up; the host checks the counts in RESULTS (struct report)
 * and the image file too.
 */
#include "virtio-blk-common.h"

#if !defined(QD) || !defined(PER_CPU) || !defined(SEED)
#error "build with -DQD=, -DPER_CPU= and -DSEED="
#endif
#ifndef SHARED
#define SHARED 0
#endif
#ifndef INTX
#define INTX 0
#endif

#define MAX_CPUS_HERE 4
#define BLK_VECTOR  0x40 /* + queue */
#define INTX_VECTOR 0x60
#define QUEUE_SIZE  128
#define QUEUES  0x1100000ul /* + queue * 0x10000 */
#define SLOTS   0x1200000ul /* + cpu * 0x40000 + slot * 0x1000 */
#define SECTOR  VIRTIO_BLK_SECTOR

_Static_assert(QD <= 32, "slots are 4 KiB each in a 128 KiB area per vCPU");
_Static_assert(SHARED ? MAX_CPUS_HERE * QD <= QUEUE_SIZE : 3 * QD <= QUEUE_SIZE, "outstanding descriptors fit the queue");

/* The host reads this at RESULTS (u32 words); kvm-virtio-blk.test.ts mirrors it. */
struct cpu_report {
  u32 submitted, retired, completions, irqs, status_errors, length_errors, data_errors, wrong_cpu, notifies, pad[7];
};
struct queue_report { u32 found, bad, drains, pad; };
struct report {
  u32 stage, failed, ncpus, nqueues, features_lo, features_hi, finished, isr_queue_bits, isr_empty, pad[7];
  struct cpu_report cpu[MAX_CPUS_HERE];  /* word 16 */
  struct queue_report queue[MAX_CPUS_HERE]; /* word 80 */
};
_Static_assert(__builtin_offsetof(struct report, cpu) == 64, "layout is part of the host contract");
_Static_assert(__builtin_offsetof(struct report, queue) == 320, "layout is part of the host contract");
#define REPORT ((volatile struct report *)RESULTS)

struct queue {
  struct virtq vq;
  volatile u32 lock;
  u32 token[QUEUE_SIZE]; /* per head: (cpu << 8 | slot) + 1 while outstanding */
};

struct slot { volatile u32 done; u32 len, busy, sector; };

static struct virtio_dev dev;
static struct queue queues[MAX_CPUS_HERE];
static struct slot slots[MAX_CPUS_HERE][QD];
static volatile u32 ticks[MAX_CPUS_HERE];
static u32 nqueues;
static volatile u32 device_ready;

static inline u32 queue_of(u32 cpu) { return SHARED ? 0 : cpu; }
/* Whether this vCPU takes the interrupts that complete its requests (and so may halt). */
static inline int interrupted(u32 cpu) { return cpu == 0 || !(SHARED || INTX); }

static inline u64 irq_save(void) {
  u64 flags;
  __asm__ volatile("pushfq; pop %0; cli" : "=r"(flags)::"memory");
  return flags;
}
static inline void irq_restore(u64 flags) {
  if (flags & 0x200) sti();
}
static inline void lock(volatile u32 *l) {
  while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE)) pause();
}
static inline void unlock(volatile u32 *l) { __atomic_store_n(l, 0, __ATOMIC_RELEASE); }

static inline u64 slot_base(u32 cpu, u32 s) { return SLOTS + cpu * 0x40000ul + s * 0x1000ul; }

/* Takes everything used on queue `qi`, handing each request back to its vCPU. Interrupt context. */
static void drain(u32 qi) {
  struct queue *q = &queues[qi];
  volatile struct queue_report *rep = &REPORT->queue[qi];
  lock(&q->lock);
  rep->drains++;
  do {
    u32 id, len;
    while ((id = virtq_get_used(&q->vq, &len)) != VIRTQ_NONE) {
      if (id >= q->vq.size || !q->token[id]) {
        rep->bad++; /* a duplicate, or an id we never made available */
        continue;
      }
      u32 t = q->token[id] - 1;
      q->token[id] = 0;
      virtq_free_chain(&q->vq, (u16)id);
      struct slot *s = &slots[t >> 8][t & 0xff];
      s->len = len;
      __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
      atomic_inc(&REPORT->cpu[t >> 8].completions);
      rep->found++;
    }
  } while (virtq_arm(&q->vq));
  unlock(&q->lock);
}

void isr(u32 vector) {
  if (vector == 0xff) return; /* spurious: no EOI */
  u32 me = lapic_id();
  if (vector == TIMER_VECTOR) {
    ticks[me]++;
  } else if (!INTX && vector >= BLK_VECTOR && vector < BLK_VECTOR + nqueues) {
    REPORT->cpu[me].irqs++;
    if (me != (SHARED ? 0 : vector - BLK_VECTOR)) REPORT->cpu[me].wrong_cpu++;
    drain(vector - BLK_VECTOR);
  } else if (INTX && vector == INTX_VECTOR) {
    REPORT->cpu[me].irqs++;
    if (me != 0) REPORT->cpu[me].wrong_cpu++;
    /* Reading the ISR lowers INTA#; what follows it raises the line again. */
    if (virtio_isr_read(&dev) & VIRTIO_ISR_QUEUE) REPORT->isr_queue_bits++;
    else REPORT->isr_empty++; /* KVM's early EOI of level vectors can re-deliver once */
    for (u32 qi = 0; qi < nqueues; qi++) drain(qi);
  }
  lapic_eoi();
}

static void submit(u32 cpu, u32 s, u32 type, u32 sector) {
  struct slot *sl = &slots[cpu][s];
  u64 base = slot_base(cpu, s);
  volatile struct virtio_blk_req *hdr = (volatile struct virtio_blk_req *)base;
  volatile u8 *status = (volatile u8 *)(base + 0x10);
  volatile struct virtq_desc *table = (volatile struct virtq_desc *)(base + 0x40);
  struct virtq_buf data = { base + 0x200, SECTOR, 0 };
  if (type == VIRTIO_BLK_T_OUT) {
    for (u32 i = 0; i < SECTOR; i += 4) *(volatile u32 *)(data.addr + i) = pattern((u64)sector * SECTOR + i, SEED);
  }
  struct virtq_buf b[3];
  u32 n = virtio_blk_request(b, hdr, type, sector, &data, 1, status);
  sl->sector = sector;
  sl->busy = 1;
  sl->done = 0;
  struct queue *q = &queues[queue_of(cpu)];
  u64 flags = irq_save();
  lock(&q->lock);
  u32 head = SHARED ? virtq_add_indirect(&q->vq, table, b, n) : virtq_add_chain(&q->vq, b, n);
  CHECK(head != VIRTQ_NONE && !q->token[head]);
  q->token[head] = (cpu << 8 | s) + 1;
  virtq_publish(&q->vq, head);
  if (virtq_kick(&q->vq)) REPORT->cpu[cpu].notifies++;
  unlock(&q->lock);
  irq_restore(flags);
  REPORT->cpu[cpu].submitted++;
}

/* Waits for slot `s` of this vCPU; a stall (no completion for STALL_TICKS) fails the run. */
static void wait_done(u32 cpu, u32 s) {
  u32 t0 = ticks[cpu];
  cli();
  while (!__atomic_load_n(&slots[cpu][s].done, __ATOMIC_ACQUIRE)) {
    CHECK(ticks[cpu] - t0 < STALL_TICKS);
    if (interrupted(cpu)) {
      safe_halt();
      cli();
    } else {
      sti();
      pause();
      cli();
    }
  }
  sti();
}

static void retire(u32 cpu, u32 s, u32 type) {
  struct slot *sl = &slots[cpu][s];
  volatile struct cpu_report *rep = &REPORT->cpu[cpu];
  u64 base = slot_base(cpu, s);
  if (*(volatile u8 *)(base + 0x10) != VIRTIO_BLK_S_OK) rep->status_errors++;
  if (sl->len != (type == VIRTIO_BLK_T_IN ? SECTOR + 1 : 1)) rep->length_errors++;
  if (type == VIRTIO_BLK_T_IN) {
    for (u32 i = 0; i < SECTOR; i += 4) {
      if (*(volatile u32 *)(base + 0x200 + i) != pattern((u64)sl->sector * SECTOR + i, SEED)) {
        rep->data_errors++;
        break;
      }
    }
  }
  sl->busy = 0;
  rep->retired++;
}

/* PER_CPU requests of `type` over this vCPU's region, QD at a time, then waits for the rest. */
static void phase(u32 cpu, u32 type) {
  for (u32 r = 0; r < PER_CPU; r++) {
    u32 s = r % QD;
    if (slots[cpu][s].busy) {
      wait_done(cpu, s);
      retire(cpu, s, type);
    }
    submit(cpu, s, type, cpu * PER_CPU + r);
  }
  for (u32 s = 0; s < QD; s++) {
    if (!slots[cpu][s].busy) continue;
    wait_done(cpu, s);
    retire(cpu, s, type);
  }
}

static void setup_device(u32 ncpus) {
  CHECK(virtio_pci_probe(&dev, 1, VIRTIO_ID_BLOCK) == 0);
  CHECK(virtio_negotiate(&dev, VIRTIO_F_INDIRECT_DESC | VIRTIO_BLK_F_MQ | (INTX ? 0 : VIRTIO_F_EVENT_IDX)) == 0);
  REPORT->features_lo = (u32)dev.features;
  REPORT->features_hi = (u32)(dev.features >> 32);
  nqueues = SHARED ? 1 : ncpus;
  CHECK(virtio_blk_num_queues(&dev) >= nqueues);
  REPORT->nqueues = nqueues;
  if (INTX) {
    virtio_intx_route(&dev, 0, INTX_VECTOR);
  } else {
    CHECK(dev.msix_vectors > nqueues);
    virtio_msix_enable(&dev);
    for (u32 qi = 0; qi < nqueues; qi++) virtio_msix_route(&dev, 1 + qi, SHARED ? 0 : qi, BLK_VECTOR + qi);
  }
  for (u32 qi = 0; qi < nqueues; qi++) {
    u16 vector = INTX ? VIRTIO_MSI_NO_VECTOR : (u16)(1 + qi);
    CHECK(virtio_queue_setup(&dev, &queues[qi].vq, qi, QUEUES + qi * 0x10000ul, QUEUE_SIZE, vector) == 0);
    CHECK(queues[qi].vq.size == QUEUE_SIZE);
  }
  virtio_driver_ok(&dev);
}

void guest_main(u32 cpu, u32 ncpus) {
  if (cpu >= MAX_CPUS_HERE) for (;;) { cli(); hlt(); }
  lapic_enable();
  watchdog_start();
  sti();
  if (cpu == 0) {
    REPORT->ncpus = ncpus;
    CHECK(ncpus <= MAX_CPUS_HERE);
    setup_device(ncpus);
    REPORT->stage = 1;
    __atomic_store_n(&device_ready, 1, __ATOMIC_RELEASE);
  }
  while (!__atomic_load_n(&device_ready, __ATOMIC_ACQUIRE)) pause();
  phase(cpu, VIRTIO_BLK_T_OUT);
  phase(cpu, VIRTIO_BLK_T_IN);
  atomic_inc(&REPORT->finished);
  if (cpu != 0) for (;;) safe_halt();

  /* vCPU 0 keeps taking interrupts (others' completions, with SHARED or INTX) until everyone is done. */
  u32 t0 = ticks[0];
  cli();
  while (atomic_load(&REPORT->finished) < ncpus) {
    CHECK(ticks[0] - t0 < STALL_TICKS);
    safe_halt();
    cli();
  }
  u32 found = 0;
  for (u32 qi = 0; qi < nqueues; qi++) {
    CHECK(REPORT->queue[qi].bad == 0);
    found += REPORT->queue[qi].found;
  }
  for (u32 c = 0; c < ncpus; c++) {
    volatile struct cpu_report *r = &REPORT->cpu[c];
    CHECK(r->submitted == 2 * PER_CPU && r->retired == r->submitted && r->completions == r->submitted);
    CHECK(!r->status_errors && !r->length_errors && !r->data_errors && !r->wrong_cpu);
  }
  CHECK(found == 2 * PER_CPU * ncpus);
  REPORT->stage = 2;
  debug_exit(EXIT_PASS);
}

void ap_main(u32 apic_id) { (void)apic_id; }
