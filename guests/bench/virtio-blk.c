/*
 * virtio-blk benchmark guest (src/bench/virtio-blk*.ts). One vCPU. Ring 0
 * sets up disk 0 with one queue whose interrupts are suppressed
 * (VIRTQ_AVAIL_F_NO_INTERRUPT: the guest polls the used ring), builds QD
 * fixed request chains (header, REQ_BYTES of data, status), notes the TSC
 * against the ACPI PM timer and drops to ring 3, which runs natively even
 * where KVM emulates ring 0. There it keeps QD reads outstanding until
 * WARMUP + COUNT have completed, timing the last COUNT (the VMM's serving
 * code reaches its steady state - JIT tiers, caches - during the first
 * thousands): PATTERN RANDOM reads REQ_BYTES-aligned blocks that
 * an LCG picks over the whole disk, SEQUENTIAL reads the disk in order,
 * wrapping. Each completion is checked (status, used length, and the first
 * word of the data, which the host set to the offset / 4096) and its slot
 * refilled at once; one notify covers all refills of a poll.
 *
 * The end of the loop is a UD2: the #UD handler runs in ring 0, closes the
 * TSC calibration (micro-common.c) and leaves through the debug-exit port.
 *
 * RESULTS: the micro-common.h header, then struct report at RESULTS + 0x100.
 */
#include "micro-common.h"
#include "virtio.h"
#include "ring3.h"

#define RANDOM     1
#define SEQUENTIAL 2
#if !defined(PATTERN) || !defined(QD) || !defined(COUNT) || !defined(REQ_BYTES) || !defined(SEED)
#error "build with -DPATTERN=RANDOM|SEQUENTIAL -DQD= -DCOUNT= -DREQ_BYTES= -DSEED= [-DWARMUP=]"
#endif
#ifndef WARMUP
#define WARMUP 0
#endif
#define TOTAL (WARMUP + COUNT)

#define QUEUE_SIZE 128
#define QUEUE_MEM  0x1100000ul
#define HEADERS    0x1104000ul /* 32 bytes per slot: header, then status */
#define DATA       0x1200000ul /* REQ_BYTES per slot */
#define STACK_BYTES 8192
#define BLOCK_WORD_BYTES 4096  /* the host writes offset / 4096 at every 4 KiB */

_Static_assert(3 * QD <= QUEUE_SIZE, "every slot's chain fits the queue");
_Static_assert(REQ_BYTES % BLOCK_WORD_BYTES == 0, "requests start on a 4 KiB boundary");
_Static_assert(DATA + (u64)QD * REQ_BYTES <= 0x3000000ul, "buffers fit below 48 MiB");

struct report {
  u64 tsc_start, tsc_end; /* the measured loop, ring 3: the last COUNT requests */
  u64 completed, errors;  /* completed: after the warm-up; errors: all */
  u64 capacity;           /* sectors */
  u64 notifies;
  u64 offset_hash;        /* FNV-1a of every request's block number, in issue order */
  u64 setup_error;        /* the failed set-up step's line; 0 */
};
#define REPORT ((volatile struct report *)(RESULTS + 0x100))

static struct virtio_dev dev;
static struct virtq vq;
static struct ring3_cpu ring3;
static u8 kernel_stack[STACK_BYTES] __attribute__((aligned(16)));
static u8 user_stack[STACK_BYTES] __attribute__((aligned(16)));
static u32 blocks;             /* REQ_BYTES blocks on the disk */
static u32 expected[QD];       /* first data word each slot's read must bring */

void isr(u32 vector) {
  if (vector != 0xff) lapic_eoi();
}

/* The LCG that src/bench/virtio-blk-guest.ts replays for the host reference. */
static inline u32 next_block(u32 *x, u32 r) {
  if (PATTERN == SEQUENTIAL) return r % blocks;
  *x = *x * 1664525u + 1013904223u;
  return (u32)(((u64)*x * blocks) >> 32);
}

static inline void issue(u32 slot, u32 block) {
  volatile struct virtio_blk_req *hdr = (volatile struct virtio_blk_req *)(HEADERS + 32ul * slot);
  hdr->sector = (u64)block * (REQ_BYTES / VIRTIO_BLK_SECTOR);
  *(volatile u8 *)(HEADERS + 32ul * slot + 16) = 0xff;
  expected[slot] = block * (REQ_BYTES / BLOCK_WORD_BYTES);
  virtq_publish(&vq, 3 * slot);
}

/* Ring 3: the measured loop. */
static void __attribute__((noreturn, used)) bench(u64 unused) {
  (void)unused;
  u32 x = SEED, issued = 0, completed = 0, errors = 0, hash = 0x811c9dc5u;
  u64 notifies = 0;
  u64 t0 = rdtsc();
  for (; issued < QD && issued < TOTAL; issued++) {
    u32 b = next_block(&x, issued);
    hash = (hash ^ b) * 16777619u;
    issue(issued, b);
  }
  notifies += virtq_kick(&vq);
  while (completed < TOTAL) {
    u32 id, len, refilled = 0;
    while ((id = virtq_get_used(&vq, &len)) != VIRTQ_NONE) {
      u32 slot = id / 3;
      if (id % 3 || slot >= QD || len != REQ_BYTES + 1 || *(volatile u8 *)(HEADERS + 32ul * slot + 16) != VIRTIO_BLK_S_OK ||
          *(volatile u32 *)(DATA + (u64)slot * REQ_BYTES) != expected[slot]) {
        errors++;
      }
      if (++completed == WARMUP) {
        t0 = rdtsc();
        notifies = 0;
      }
      if (issued < TOTAL) {
        u32 b = next_block(&x, issued++);
        hash = (hash ^ b) * 16777619u;
        issue(slot, b);
        refilled = 1;
      }
    }
    if (refilled) notifies += virtq_kick(&vq);
    else pause();
  }
  u64 t1 = rdtsc();
  REPORT->tsc_start = t0;
  REPORT->tsc_end = t1;
  REPORT->completed = completed - WARMUP;
  REPORT->errors = errors;
  REPORT->notifies = notifies;
  REPORT->offset_hash = hash;
  __asm__ volatile("ud2");
  __builtin_unreachable();
}

/* #UD from ring 3, on the TSS stack: the loop is over. */
void __attribute__((used)) bench_done(void) { micro_finish(0, 0); }
__asm__(".text\n"
        "ud_entry:\n\t"
        "and $-16, %rsp\n\t"
        "call bench_done\n");
extern u8 ud_entry[];

/* Points IDT vector `vector` (start64.S fills only 32-255) at `handler`: interrupt gate, ring 0 code. */
static void set_gate(u32 vector, void *handler) {
  struct { u16 limit; u64 base; } __attribute__((packed)) idtr;
  __asm__ volatile("sidt %0" : "=m"(idtr));
  volatile u32 *g = (volatile u32 *)(idtr.base + 16ul * vector);
  u64 h = (u64)handler;
  g[0] = (u32)(h & 0xffff) | (0x08u << 16);
  g[1] = (u32)(h & 0xffff0000u) | 0x8e00u;
  g[2] = (u32)(h >> 32);
  g[3] = 0;
}

#define SETUP(cond) do { if (!(cond)) { REPORT->setup_error = __LINE__; debug_exit(MICRO_EXIT + 1); } } while (0)

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) for (;;) { cli(); hlt(); }
  SETUP(virtio_pci_probe(&dev, 1, VIRTIO_ID_BLOCK) == 0);
  SETUP(virtio_negotiate(&dev, 0) == 0);
  SETUP(virtio_queue_setup(&dev, &vq, 0, QUEUE_MEM, QUEUE_SIZE, VIRTIO_MSI_NO_VECTOR) == 0);
  SETUP(vq.size >= 3 * QD);
  virtq_no_interrupts(&vq);
  virtio_driver_ok(&dev);
  u64 cap = virtio_blk_capacity(&dev);
  REPORT->capacity = cap;
  blocks = (u32)(cap * VIRTIO_BLK_SECTOR / REQ_BYTES);
  SETUP(blocks >= 1);
  /* Slot s owns descriptors 3s..3s+2 for the whole run: only the sector changes. */
  for (u32 s = 0; s < QD; s++) {
    struct virtq_buf data = { DATA + (u64)s * REQ_BYTES, REQ_BYTES, 1 }, b[3];
    volatile struct virtio_blk_req *hdr = (volatile struct virtio_blk_req *)(HEADERS + 32ul * s);
    u32 n = virtio_blk_request(b, hdr, VIRTIO_BLK_T_IN, 0, &data, 1, (volatile u8 *)(HEADERS + 32ul * s + 16));
    SETUP(virtq_add_chain(&vq, b, n) == 3 * s);
  }
  set_gate(6, ud_entry);
  ring3_setup(&ring3, (u64)kernel_stack + STACK_BYTES);
  calibration_start();
  ring3_enter(bench, 0, (u64)user_stack + STACK_BYTES, 0); /* interrupts stay off: nothing here raises any */
}

void ap_main(u32 apic_id) { (void)apic_id; }
