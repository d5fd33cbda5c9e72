/*
 * Work in progress for snapshot/restore tests: every vCPU passes IPI tokens
 * round a ring (token t on vector 0x50 + t: count it, pass it on to the
 * next APIC; one vector per token, as two IPIs of one vector pending at one
 * APIC merge into one, on hardware too) while
 * vCPU 0 also writes sectors 0..TOTAL-1 of virtio-blk disk 0 with up to QD
 * requests in flight (pattern(offset, SEED) per word), each completion
 * checked against the requests it has outstanding.
 *
 * The host snapshots it mid-work, restores it, and then sets R_STOP: the
 * tokens stop travelling (a received token is kept), so once they settle
 * every sent IPI must have been received exactly once. R_EXIT ends it with
 * 0x42 once all writes completed. Any check that fails exits 0x11
 * (R_FAILED: the line).
 *
 * RESULTS: R_SENT + cpu, R_RECV + cpu per vCPU; R_DONE writes completed,
 * R_NEXT writes submitted.
 */
#include "virtio-blk-common.h"

#if !defined(SEED) || !defined(TOTAL) || !defined(QD) || !defined(TOKENS)
#error "build with -DSEED, -DTOTAL, -DQD and -DTOKENS"
#endif

enum { R_DONE = 2, R_NEXT, R_STOP, R_EXIT, R_CPUS, R_READY, R_SENT = 16, R_RECV = 48 };

#define TOKEN_VECTOR 0x50
#define BLK_VECTOR 0x41
#define QUEUE   0x1100000ul
#define BUFFERS 0x1200000ul
#define SLOT(s) (BUFFERS + (u64)(s) * 0x1000) /* header at +0, status at +0x100, data at +0x200 */

static struct virtio_dev dev;
static struct virtq vq;
static volatile u32 ncpus;
static volatile u32 ticks, irqs;
static u32 slot_of_head[64];
static u32 busy[QD];

void isr(u32 vector) {
  if (vector >= TOKEN_VECTOR && vector < TOKEN_VECTOR + TOKENS) {
    u32 me = lapic_id();
    atomic_inc(&R[R_RECV + me]);
    if (!atomic_load(&R[R_STOP])) {
      atomic_inc(&R[R_SENT + me]);
      send_ipi((me + 1) % ncpus, vector);
    }
  } else if (vector == TIMER_VECTOR) ticks++;
  else if (vector == BLK_VECTOR) irqs++;
  else if (vector == 0xff) return;
  lapic_eoi();
}

static void submit(u32 s, u64 sector) {
  volatile struct virtio_blk_req *hdr = (volatile struct virtio_blk_req *)SLOT(s);
  volatile u8 *status = (volatile u8 *)(SLOT(s) + 0x100);
  struct virtq_buf data = { SLOT(s) + 0x200, VIRTIO_BLK_SECTOR, 0 };
  for (u32 i = 0; i < VIRTIO_BLK_SECTOR; i += 4) *(volatile u32 *)(data.addr + i) = pattern(sector * VIRTIO_BLK_SECTOR + i, SEED);
  struct virtq_buf b[3];
  u32 n = virtio_blk_request(b, hdr, VIRTIO_BLK_T_OUT, sector, &data, 1, status);
  u32 head = virtq_add_chain(&vq, b, n);
  CHECK(head != VIRTQ_NONE && head < 64);
  slot_of_head[head] = s;
  busy[s] = 1;
  virtq_publish(&vq, head);
}

static void writer(void) {
  CHECK(virtio_pci_probe(&dev, 1, VIRTIO_ID_BLOCK) == 0);
  CHECK(dev.msix_cap && dev.msix_vectors >= 2);
  CHECK(virtio_negotiate(&dev, VIRTIO_F_VERSION_1) == 0);
  virtio_msix_enable(&dev);
  virtio_msix_route(&dev, 1, 0, BLK_VECTOR);
  CHECK(virtio_queue_setup(&dev, &vq, 0, QUEUE, 64, 1) == 0);
  virtio_driver_ok(&dev);
  u32 inflight = 0;
  while (R[R_DONE] < TOTAL) {
    for (u32 s = 0; s < QD && R[R_NEXT] < TOTAL; s++) {
      if (busy[s]) continue;
      submit(s, R[R_NEXT]);
      R[R_NEXT]++;
      inflight++;
    }
    virtq_kick(&vq);
    u32 t0 = ticks;
    cli();
    while (!virtq_arm(&vq)) {
      CHECK(ticks - t0 < STALL_TICKS);
      safe_halt();
      cli();
    }
    sti();
    u32 len, head;
    while ((head = virtq_get_used(&vq, &len)) != VIRTQ_NONE) {
      CHECK(head < 64);
      u32 s = slot_of_head[head];
      /* Completed exactly once: only a request this driver has outstanding. */
      CHECK(s < QD && busy[s]);
      CHECK(*(volatile u8 *)(SLOT(s) + 0x100) == VIRTIO_BLK_S_OK);
      busy[s] = 0;
      virtq_free_chain(&vq, (u16)head);
      inflight--;
      R[R_DONE]++;
    }
  }
  CHECK(inflight == 0);
}

void guest_main(u32 cpu, u32 n) {
  lapic_enable();
  if (cpu == 0) {
    ncpus = n;
    R[R_CPUS] = n;
    watchdog_start();
  }
  while (!atomic_load(&R[R_CPUS])) pause();
  ncpus = R[R_CPUS];
  /* An APIC that is not enabled yet drops fixed IPIs: no token leaves before every APIC is on. */
  atomic_inc(&R[R_READY]);
  while (atomic_load(&R[R_READY]) < ncpus) pause();
  sti();
  /* The first TOKENS vCPUs each start a token on its way. */
  if (cpu < TOKENS && cpu < ncpus) {
    atomic_inc(&R[R_SENT + cpu]);
    send_ipi((cpu + 1) % ncpus, TOKEN_VECTOR + cpu);
  }
  if (cpu == 0) writer();
  while (!atomic_load(&R[R_EXIT])) safe_halt();
  if (cpu == 0) debug_exit(0x42);
  for (;;) safe_halt();
}

void ap_main(u32 apic_id) { (void)apic_id; }
