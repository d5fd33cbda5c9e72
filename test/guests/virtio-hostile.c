/*
 * A misbehaving virtio driver (guests/lib/virtio.h), one vCPU, polling
 * only. Each scenario does something a guest must not be able to hurt the
 * VMM with, then proves the device still works for a driver that resets
 * it. Built with -DSCENARIO=<one below> and -DRAM_END=<guest RAM bytes>.
 *
 * FEATURE_SELECT (virtio-rng at 00:01.0): device_feature_select and
 *   driver_feature_select set to values past the two feature words (2,
 *   2^31 - 1, 2^31, 0xFFFFFFFD, 0xFFFFFFFF); each feature word must read 0
 *   and a write to it must go nowhere; the ISR is read after each (it takes
 *   the device's interrupt lock). Then a normal bring-up and one request.
 * USED_LAPIC, USED_END, USED_EVENT (virtio-blk at 00:01.0): queue 0 is
 *   enabled with its used ring on the LAPIC page, its used ring straddling
 *   the end of RAM, or (with VIRTIO_F_EVENT_IDX) its avail ring ending
 *   where used_event would lie past the end of RAM; two reads are submitted
 *   on it. The device must answer DEVICE_NEEDS_RESET with the queue left
 *   off, and after a reset serve a read on sound rings.
 * FILE_ERRORS (virtio-blk at 00:01.0): prints "ready" on COM1, waits for
 *   a byte of input (the host limits the image file meanwhile), then makes
 *   one-sector writes at sectors 0, 256, 512 and 768, for a host whose
 *   image file refuses writes past some offset (a full disk): their
 *   statuses go to R_WRITE_STATUS.
 *
 * Exit EXIT_PASS, or EXIT_FAIL with the failed check's line in R[R_FAILED].
 */
#include "virtio.h"

#define FEATURE_SELECT 1
#define USED_LAPIC     2
#define USED_END       3
#define USED_EVENT     4
#define FILE_ERRORS    5
#if !defined(SCENARIO) || !defined(RAM_END)
#error "build with -DSCENARIO=FEATURE_SELECT|USED_LAPIC|USED_END|USED_EVENT|FILE_ERRORS and -DRAM_END=<bytes of RAM>"
#endif

#define R ((volatile u32 *)RESULTS)
enum { R_STAGE, R_FAILED, R_STATUS_AFTER, R_ENABLE_AFTER, R_USED_LEN, R_BLK_STATUS, R_WRITE_STATUS };
#define EXIT_PASS 0x10
#define EXIT_FAIL 0x11

#define QSIZE    8
#define BAD_MEM  0x1100000ul /* the hostile queue's descriptor table (and rings, where they are sound) */
#define GOOD_MEM 0x1110000ul
#define BUFFERS  0x1200000ul
/* Polls of a result that never comes: bounded, so a lost answer fails instead of hanging. */
#define SPINS    2000000u

#define CHECK(cond) do { if (!(cond)) fail(__LINE__); } while (0)
static void __attribute__((noreturn)) fail(u32 line) {
  if (!R[R_FAILED]) R[R_FAILED] = line;
  debug_exit(EXIT_FAIL);
  __builtin_unreachable();
}

void isr(u32 vector) { (void)vector; lapic_eoi(); }
void ap_main(u32 apic_id) { (void)apic_id; }

static struct virtio_dev dev;

/* Waits until the device has used a buffer the driver has not taken yet; false if it never does. */
static int wait_used(struct virtq *q) {
  for (u32 i = 0; i < SPINS; i++) {
    if (virtq_used_pending(q)) return 1;
    pause();
  }
  return 0;
}

#if SCENARIO == FEATURE_SELECT
static void scenario(void) {
  static const u32 selects[] = { 2, 0x7fffffffu, 0x80000000u, 0xfffffffdu, 0xffffffffu };
  CHECK(virtio_pci_probe(&dev, 1, 4) == 0);
  virtio_reset(&dev);
  virtio_set_status(&dev, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
  for (u32 i = 0; i < sizeof selects / sizeof selects[0]; i++) {
    mmio_write32(dev.common + VIRTIO_COMMON_DFSELECT, selects[i]);
    CHECK(mmio_read32(dev.common + VIRTIO_COMMON_DFSELECT) == selects[i]);
    CHECK(mmio_read32(dev.common + VIRTIO_COMMON_DF) == 0);
    mmio_write32(dev.common + VIRTIO_COMMON_GFSELECT, selects[i]);
    mmio_write32(dev.common + VIRTIO_COMMON_GF, 0xffffffffu);
    CHECK(mmio_read32(dev.common + VIRTIO_COMMON_GF) == 0);
    (void)virtio_isr_read(&dev);
    CHECK(virtio_status(&dev) == (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER));
  }
  /* Feature words 0 and 1 were never written: the driver accepted nothing yet. */
  for (u32 word = 0; word < 2; word++) {
    mmio_write32(dev.common + VIRTIO_COMMON_GFSELECT, word);
    CHECK(mmio_read32(dev.common + VIRTIO_COMMON_GF) == 0);
  }
  /* virtio-rng: one 64-byte request. */
  struct virtq q;
  CHECK(virtio_negotiate(&dev, 0) == 0);
  CHECK(virtio_queue_setup(&dev, &q, 0, GOOD_MEM, QSIZE, VIRTIO_MSI_NO_VECTOR) == 0);
  virtio_driver_ok(&dev);
  struct virtq_buf b = { BUFFERS, 64, 1 };
  u32 head = virtq_add_chain(&q, &b, 1);
  virtq_publish(&q, head);
  virtq_notify(&q);
  CHECK(wait_used(&q));
  u32 len = 0;
  CHECK(virtq_get_used(&q, &len) == head);
  R[R_USED_LEN] = len;
  CHECK(len == 64);
  CHECK(virtio_isr_read(&dev) == VIRTIO_ISR_QUEUE);
}
#elif SCENARIO == FILE_ERRORS
static void scenario(void) {
  struct virtq q;
  CHECK(virtio_pci_probe(&dev, 1, VIRTIO_ID_BLOCK) == 0);
  CHECK(virtio_negotiate(&dev, 0) == 0);
  CHECK(virtio_queue_setup(&dev, &q, 0, GOOD_MEM, QSIZE, VIRTIO_MSI_NO_VECTOR) == 0);
  virtio_driver_ok(&dev);
  volatile struct virtio_blk_req *hdr = (volatile struct virtio_blk_req *)(BUFFERS + 0x1000);
  volatile u8 *status = (volatile u8 *)(BUFFERS + 0x1100);
  puts("ready\n");
  while (!(inb(COM1_LSR) & 1)) pause();
  (void)inb(COM1);
  for (u32 i = 0; i < 4; i++) {
    struct virtq_buf data = { BUFFERS, VIRTIO_BLK_SECTOR, 0 }, b[3];
    u32 head = virtq_add_chain(&q, b, virtio_blk_request(b, hdr, VIRTIO_BLK_T_OUT, 256ul * i, &data, 1, status));
    CHECK(head != VIRTQ_NONE);
    virtq_publish(&q, head);
    virtq_notify(&q);
    CHECK(wait_used(&q));
    CHECK(virtq_get_used(&q, 0) == head);
    virtq_free_chain(&q, (u16)head);
    R[R_WRITE_STATUS + i] = *status;
    CHECK(*status == (i == 0 ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR));
  }
}
#else
/* One 512-byte read of sector 0 into BUFFERS, on queue `q`; returns the head. */
static u32 submit_read(struct virtq *q) {
  volatile struct virtio_blk_req *hdr = (volatile struct virtio_blk_req *)(BUFFERS + 0x1000);
  volatile u8 *status = (volatile u8 *)(BUFFERS + 0x1100);
  struct virtq_buf data = { BUFFERS, VIRTIO_BLK_SECTOR, 1 }, b[3];
  u32 n = virtio_blk_request(b, hdr, VIRTIO_BLK_T_IN, 0, &data, 1, status);
  u32 head = virtq_add_chain(q, b, n);
  CHECK(head != VIRTQ_NONE);
  virtq_publish(q, head);
  virtq_notify(q);
  return head;
}

/* Sound rings at GOOD_MEM after a reset: one read must complete with status OK. */
static void prove_device_works(void) {
  struct virtq q;
  CHECK(virtio_negotiate(&dev, 0) == 0);
  CHECK(virtio_queue_setup(&dev, &q, 0, GOOD_MEM, QSIZE, VIRTIO_MSI_NO_VECTOR) == 0);
  virtio_driver_ok(&dev);
  submit_read(&q);
  CHECK(wait_used(&q));
  u32 len = 0;
  CHECK(virtq_get_used(&q, &len) != VIRTQ_NONE);
  R[R_USED_LEN] = len;
  R[R_BLK_STATUS] = *(volatile u8 *)(BUFFERS + 0x1100);
  CHECK(len == VIRTIO_BLK_SECTOR + 1 && R[R_BLK_STATUS] == VIRTIO_BLK_S_OK);
  CHECK(!(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET));
}

static void scenario(void) {
  u64 desc = BAD_MEM, avail = BAD_MEM + 16 * QSIZE, used = BAD_MEM + 0x1000;
#if SCENARIO == USED_LAPIC
  used = LAPIC_BASE;
#elif SCENARIO == USED_END
  used = RAM_END - 16; /* the ring is 6 + 8 * QSIZE bytes */
#else
  avail = RAM_END - (4 + 2 * QSIZE); /* flags, idx and ring fit; used_event does not */
#endif
  CHECK(virtio_pci_probe(&dev, 1, VIRTIO_ID_BLOCK) == 0);
  CHECK(virtio_negotiate(&dev, SCENARIO == USED_EVENT ? VIRTIO_F_EVENT_IDX : 0) == 0);
  CHECK(SCENARIO != USED_EVENT || (dev.features & VIRTIO_F_EVENT_IDX));
  /* Only what is RAM gets initialised: a write to the LAPIC page would program the APIC. */
  for (u64 a = desc; a < desc + 16 * QSIZE; a += 8) *(volatile u64 *)a = 0;
  for (u64 a = avail; a < avail + 4 + 2 * QSIZE; a += 2) *(volatile u16 *)a = 0;
  if (used < RAM_END - 0x1000) for (u64 a = used; a < used + 8 + 8 * QSIZE; a += 4) *(volatile u32 *)a = 0;
  struct virtq q = {
    .desc = (volatile struct virtq_desc *)desc,
    .avail = (volatile struct virtq_avail *)avail,
    .used = (volatile struct virtq_used *)used,
    .size = QSIZE, .index = 0, .free_head = 0, .num_free = QSIZE,
    .event_idx = (dev.features & VIRTIO_F_EVENT_IDX) != 0,
  };
  for (u32 i = 0; i < QSIZE; i++) q.desc[i].next = (u16)(i + 1);
  u64 c = dev.common;
  vio_write16(c + VIRTIO_COMMON_Q_SELECT, 0);
  vio_write16(c + VIRTIO_COMMON_Q_SIZE, QSIZE);
  vio_write64(c + VIRTIO_COMMON_Q_DESC, desc);
  vio_write64(c + VIRTIO_COMMON_Q_DRIVER, avail);
  vio_write64(c + VIRTIO_COMMON_Q_DEVICE, used);
  q.notify = dev.notify + (u64)vio_read16(c + VIRTIO_COMMON_Q_NOFF) * dev.notify_multiplier;
  vio_write16(c + VIRTIO_COMMON_Q_ENABLE, 1);
  virtio_driver_ok(&dev);
  /* Two requests: with event idx the device reads used_event only from the second completion on. */
  for (u32 i = 0; i < 2; i++) {
    submit_read(&q);
    for (u32 n = 0; n < SPINS / 8 && !(virtio_status(&dev) & VIRTIO_STATUS_NEEDS_RESET); n++) pause();
  }
  R[R_STATUS_AFTER] = virtio_status(&dev);
  R[R_ENABLE_AFTER] = vio_read16(c + VIRTIO_COMMON_Q_ENABLE);
  CHECK(R[R_STATUS_AFTER] & VIRTIO_STATUS_NEEDS_RESET);
  CHECK(R[R_ENABLE_AFTER] == 0);
  prove_device_works();
}
#endif

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) return;
  R[R_STAGE] = 1;
  scenario();
  R[R_STAGE] = 2;
  debug_exit(EXIT_PASS);
}
