/*
 * virtio-blk through guests/lib/virtio.h, one vCPU, one request at a time,
 * each completion signalled by MSI-X (vector per disk, to APIC 0) and
 * waited for with HLT. Built with -DSCENARIO=WRITE or READ.
 *
 * WRITE (disk 0, which the host prefilled with 0xEE; event idx on):
 *   single-sector writes, a write split over three data descriptors, one
 *   through an indirect table, WRITE_ZEROES, the last sector, one past the
 *   end (IOERR), FLUSH. The host checks every byte of the file afterwards.
 * READ (disk 0 holds pattern(offset, SEED_A), disk 1 is read-only with
 *   SEED_B; no event idx): reads into one buffer, into three buffers of
 *   unaligned sizes and addresses, through an indirect table, the last
 *   sector; past the end and across it (IOERR), an unknown type (UNSUPP),
 *   GET_ID; on disk 1 a read, a write (IOERR) and a flush. The guest checks
 *   the data itself and leaves an FNV-1a checksum of it for the host.
 *
 * RESULTS (u32): see the R_* indices; per request i, R_STATUS + i holds its
 * status and R_LEN + i its used length. Exit EXIT_PASS when every check in
 * here passed, EXIT_FAIL with R_FAILED = the first failing check's line.
 */
#include "virtio-blk-common.h"

#define WRITE 1
#define READ  2
#if !defined(SCENARIO) || !defined(SEED_A) || !defined(SEED_B) || !defined(SEED_W)
#error "build with -DSCENARIO=WRITE|READ and the pattern seeds SEED_A, SEED_B, SEED_W"
#endif

enum {
  R_CAP_LO = 2, R_CAP_HI, R_FEAT_LO, R_FEAT_HI, R_IRQS, R_REQUESTS,
  R_RO_OFFERED_LO, R_RO_OFFERED_HI, R_CHECKSUM, R_TICKS,
  R_ID = 16,      /* GET_ID: 20 bytes */
  R_STATUS = 32,  /* per request */
  R_LEN = 96,     /* per request */
};

#define BLK_VECTOR 0x41 /* + disk */
#define QUEUES  0x1100000ul /* + disk * 0x10000 */
#define BUFFERS 0x1200000ul

static volatile u32 irqs, ticks;
static struct virtio_dev dev[2];
static struct virtq vq[2];

void isr(u32 vector) {
  if (vector == TIMER_VECTOR) ticks++;
  else if (vector == BLK_VECTOR || vector == BLK_VECTOR + 1) irqs++;
  else if (vector == 0xff) return; /* spurious: no EOI */
  lapic_eoi();
}

/* `len` bytes of the disk from `off` in `seg` buffers; aligned buffers go word by word. */
static void fill(const struct virtq_buf *seg, u32 n, u64 off, u32 seed) {
  for (u32 k = 0; k < n; k++) {
    if (seg[k].addr % 4 == 0 && seg[k].len % 4 == 0) {
      for (u32 i = 0; i < seg[k].len; i += 4) *(volatile u32 *)(seg[k].addr + i) = pattern(off + i, seed);
    } else {
      for (u32 i = 0; i < seg[k].len; i++) *(volatile u8 *)(seg[k].addr + i) = pattern_byte(off + i, seed);
    }
    off += seg[k].len;
  }
}

static u32 requests;
/*
 * Submits one request (through an indirect table at `table` if non-zero),
 * halts until it is used and its interrupt has arrived, and records its
 * status and used length. Returns the status.
 */
static u32 request(u32 disk, u32 type, u64 sector, const struct virtq_buf *data, u32 n, u64 table) {
  struct virtq *q = &vq[disk];
  volatile struct virtio_blk_req *hdr = (volatile struct virtio_blk_req *)(BUFFERS + 0xf0000);
  volatile u8 *status = (volatile u8 *)(BUFFERS + 0xf0100);
  struct virtq_buf b[8];
  u32 count = virtio_blk_request(b, hdr, type, sector, data, n, status);
  u32 head = table ? virtq_add_indirect(q, (volatile struct virtq_desc *)table, b, count) : virtq_add_chain(q, b, count);
  CHECK(head != VIRTQ_NONE);
  CHECK(!virtq_arm(q)); /* nothing outstanding before this one */
  u32 before = irqs, t0 = ticks;
  cli();
  virtq_publish(q, head);
  virtq_kick(q);
  while (!virtq_used_pending(q) || irqs == before) {
    CHECK(ticks - t0 < STALL_TICKS);
    safe_halt();
    cli();
  }
  sti();
  u32 len;
  CHECK(virtq_get_used(q, &len) == head);
  virtq_free_chain(q, (u16)head);
  R[R_STATUS + requests] = *status;
  R[R_LEN + requests] = len;
  R[R_REQUESTS] = ++requests;
  return *status;
}

static void setup_disk(u32 disk, u64 features) {
  struct virtio_dev *d = &dev[disk];
  CHECK(virtio_pci_probe(d, 1 + disk, VIRTIO_ID_BLOCK) == 0);
  CHECK(d->msix_cap && d->msix_vectors >= 2);
  CHECK(virtio_negotiate(d, features) == 0);
  virtio_msix_enable(d);
  virtio_msix_route(d, 1, 0, BLK_VECTOR + disk);
  CHECK(virtio_queue_setup(d, &vq[disk], 0, QUEUES + disk * 0x10000ul, 128, 1) == 0);
  virtio_driver_ok(d);
  CHECK(virtio_status(d) == (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK));
}

#define BUF(i) (BUFFERS + (u64)(i) * 0x2000)
#define SECTOR VIRTIO_BLK_SECTOR

#if SCENARIO == WRITE
static void scenario(u64 cap) {
  /* Single sectors. */
  static const u32 singles[] = { 1, 7, 100 };
  for (u32 i = 0; i < 3; i++) {
    struct virtq_buf s = { BUF(0), SECTOR, 0 };
    fill(&s, 1, singles[i] * SECTOR, SEED_W);
    CHECK(request(0, VIRTIO_BLK_T_OUT, singles[i], &s, 1, 0) == VIRTIO_BLK_S_OK);
  }
  /* 8 sectors from 16 in three buffers at unrelated addresses. */
  struct virtq_buf multi[3] = { { BUF(1), SECTOR, 0 }, { BUF(3), 3 * SECTOR, 0 }, { BUF(5), 4 * SECTOR, 0 } };
  fill(multi, 3, 16 * SECTOR, SEED_W);
  CHECK(request(0, VIRTIO_BLK_T_OUT, 16, multi, 3, 0) == VIRTIO_BLK_S_OK);
  /* 4 sectors from 40 through an indirect table. */
  struct virtq_buf ind[2] = { { BUF(7), 2 * SECTOR, 0 }, { BUF(9), 2 * SECTOR, 0 } };
  fill(ind, 2, 40 * SECTOR, SEED_W);
  CHECK(request(0, VIRTIO_BLK_T_OUT, 40, ind, 2, BUF(11)) == VIRTIO_BLK_S_OK);
  /* Zeroes over sectors 60-67. */
  CHECK(dev[0].features & VIRTIO_BLK_F_WRITE_ZEROES);
  volatile struct virtio_blk_range *range = (volatile struct virtio_blk_range *)BUF(12);
  range->sector = 60;
  range->num_sectors = 8;
  range->flags = 0;
  struct virtq_buf z = { (u64)range, sizeof(*range), 0 };
  CHECK(request(0, VIRTIO_BLK_T_WRITE_ZEROES, 0, &z, 1, 0) == VIRTIO_BLK_S_OK);
  /* The last sector, then one past the end (which must not reach the file). */
  struct virtq_buf last = { BUF(13), SECTOR, 0 };
  fill(&last, 1, (cap - 1) * SECTOR, SEED_W);
  CHECK(request(0, VIRTIO_BLK_T_OUT, cap - 1, &last, 1, 0) == VIRTIO_BLK_S_OK);
  fill(&last, 1, cap * SECTOR, SEED_W);
  CHECK(request(0, VIRTIO_BLK_T_OUT, cap, &last, 1, 0) == VIRTIO_BLK_S_IOERR);
  CHECK(request(0, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == VIRTIO_BLK_S_OK);
}
#elif SCENARIO == READ
static u32 checksum = 0x811c9dc5u;
/* Checks what a read put in `seg` against the disk's pattern, and folds it into the FNV-1a checksum. */
static void verify(const struct virtq_buf *seg, u32 n, u64 off, u32 seed) {
  for (u32 k = 0; k < n; k++) {
    for (u32 i = 0; i < seg[k].len; i++) {
      u8 b = *(volatile u8 *)(seg[k].addr + i);
      CHECK(b == pattern_byte(off + i, seed));
      checksum = (checksum ^ b) * 16777619u;
    }
    off += seg[k].len;
  }
}

static void scenario(u64 cap) {
  /* Sectors 0-3 into one buffer. */
  struct virtq_buf one = { BUF(0), 4 * SECTOR, 1 };
  CHECK(request(0, VIRTIO_BLK_T_IN, 0, &one, 1, 0) == VIRTIO_BLK_S_OK);
  verify(&one, 1, 0, SEED_A);
  /* Sectors 9-12 into three buffers whose sizes and addresses are not sector-aligned. */
  struct virtq_buf odd[3] = { { BUF(1) + 3, 700, 1 }, { BUF(2) + 1, 300, 1 }, { BUF(3) + 5, 1048, 1 } };
  CHECK(request(0, VIRTIO_BLK_T_IN, 9, odd, 3, 0) == VIRTIO_BLK_S_OK);
  verify(odd, 3, 9 * SECTOR, SEED_A);
  /* Sectors 20-22 through an indirect table. */
  struct virtq_buf ind[2] = { { BUF(4), SECTOR, 1 }, { BUF(5), 2 * SECTOR, 1 } };
  CHECK(request(0, VIRTIO_BLK_T_IN, 20, ind, 2, BUF(6)) == VIRTIO_BLK_S_OK);
  verify(ind, 2, 20 * SECTOR, SEED_A);
  /* The last sector. */
  struct virtq_buf last = { BUF(7), SECTOR, 1 };
  CHECK(request(0, VIRTIO_BLK_T_IN, cap - 1, &last, 1, 0) == VIRTIO_BLK_S_OK);
  verify(&last, 1, (cap - 1) * SECTOR, SEED_A);
  R[R_CHECKSUM] = checksum;
  /* Past the end, and across it. */
  CHECK(request(0, VIRTIO_BLK_T_IN, cap, &last, 1, 0) == VIRTIO_BLK_S_IOERR);
  struct virtq_buf across = { BUF(8), 2 * SECTOR, 1 };
  CHECK(request(0, VIRTIO_BLK_T_IN, cap - 1, &across, 1, 0) == VIRTIO_BLK_S_IOERR);
  /* A request type the device does not know. */
  CHECK(request(0, 0x55, 0, &last, 1, 0) == VIRTIO_BLK_S_UNSUPP);
  /* The serial: the image's file name. */
  struct virtq_buf id = { BUF(9), VIRTIO_BLK_ID_BYTES, 1 };
  CHECK(request(0, VIRTIO_BLK_T_GET_ID, 0, &id, 1, 0) == VIRTIO_BLK_S_OK);
  for (u32 i = 0; i < VIRTIO_BLK_ID_BYTES / 4; i++) R[R_ID + i] = *(volatile u32 *)(BUF(9) + 4 * i);

  /* Disk 1 is read-only: reads work, writes fail, flush is harmless. */
  setup_disk(1, VIRTIO_F_INDIRECT_DESC | VIRTIO_BLK_F_RO | VIRTIO_BLK_F_FLUSH);
  u64 offered = virtio_device_features(&dev[1]);
  R[R_RO_OFFERED_LO] = (u32)offered;
  R[R_RO_OFFERED_HI] = (u32)(offered >> 32);
  CHECK(offered & VIRTIO_BLK_F_RO);
  struct virtq_buf ro = { BUF(10), SECTOR, 1 };
  CHECK(request(1, VIRTIO_BLK_T_IN, 3, &ro, 1, 0) == VIRTIO_BLK_S_OK);
  verify(&ro, 1, 3 * SECTOR, SEED_B);
  struct virtq_buf w = { BUF(11), SECTOR, 0 };
  fill(&w, 1, 3 * SECTOR, SEED_A);
  CHECK(request(1, VIRTIO_BLK_T_OUT, 3, &w, 1, 0) == VIRTIO_BLK_S_IOERR);
  CHECK(request(1, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0) == VIRTIO_BLK_S_OK);
}
#else
#error "unknown SCENARIO"
#endif

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) for (;;) { cli(); hlt(); }
  lapic_enable();
  watchdog_start();
  sti();
  R[R_STAGE] = 1;
  CHECK(virtio_pci_probe(&dev[0], 0, VIRTIO_ID_BLOCK) == VIRTIO_E_NOT_VIRTIO); /* the host bridge */
  CHECK(virtio_pci_probe(&dev[0], 9, VIRTIO_ID_BLOCK) == VIRTIO_E_NOT_VIRTIO); /* an empty slot */
  u64 features = VIRTIO_F_INDIRECT_DESC | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_WRITE_ZEROES;
  setup_disk(0, SCENARIO == WRITE ? features | VIRTIO_F_EVENT_IDX : features);
  R[R_FEAT_LO] = (u32)dev[0].features;
  R[R_FEAT_HI] = (u32)(dev[0].features >> 32);
  u64 cap = virtio_blk_capacity(&dev[0]);
  R[R_CAP_LO] = (u32)cap;
  R[R_CAP_HI] = (u32)(cap >> 32);
  R[R_STAGE] = 2;
  scenario(cap);
  R[R_STAGE] = 3;
  R[R_IRQS] = irqs;
  R[R_TICKS] = ticks;
  debug_exit(EXIT_PASS);
}

void ap_main(u32 apic_id) { (void)apic_id; }
