/*
 * virtio-console through guests/lib/virtio.h, on one vCPU: the receiveq and
 * the transmitq each signal used buffers with their own MSI-X vector, and
 * the guest waits for them with HLT only (no timer), so a lost interrupt
 * hangs it and fails the host's test. It transmits a greeting line first.
 * Built with -DSCENARIO=ECHO or FLOOD and -DEVENT_IDX=0|1.
 *
 * ECHO: waits for the host to open the gate (R_GATE) before touching the
 *   device, so input typed before that has nowhere to go and must be held
 *   by the host. Then it posts RX_BUFS receive buffers of RX_BUF_BYTES and
 *   echoes every used one as a frame "{seq,len}" followed by its bytes (two
 *   descriptors of one chain), reposting it at once; it stops after the
 *   chunk that ends with TERMINATOR.
 * FLOOD: transmits FLOOD_BYTES of flood_byte(i) in buffers of 16 to 256
 *   bytes straight from one prepared region, more than the transmitq holds,
 *   so a host output that does not keep up leaves the guest waiting for
 *   free descriptors (R_TX_FULL counts the waits).
 *
 * Both wait until the device has used every transmit buffer, then exit
 * with EXIT_PASS; a failed check exits with EXIT_FAIL and its source line
 * in R_FAILED. RESULTS holds u32 counters by the R_* indices.
 */
#include "virtio.h"

#define ECHO  1
#define FLOOD 2
#if !defined(SCENARIO) || !defined(EVENT_IDX) || (SCENARIO == FLOOD && !defined(FLOOD_BYTES))
#error "build with -DSCENARIO=ECHO|FLOOD, -DEVENT_IDX=0|1 and, for FLOOD, -DFLOOD_BYTES=n"
#endif
#ifndef FLOOD_BYTES
#define FLOOD_BYTES 0
#endif

#define R ((volatile u32 *)RESULTS)
enum {
  R_STAGE, R_FAILED,
  R_GATE,      /* the host writes 1 to let an ECHO guest start */
  R_RX_BUFS,   /* receive buffers the device returned */
  R_RX_BYTES,
  R_MAX_CHUNK, /* the most bytes in one receive buffer */
  R_TX_CHAINS, /* transmit chains made available */
  R_TX_BYTES,
  R_TX_USED,   /* transmit chains the device returned */
  R_TX_FULL,   /* times a transmit had to wait for free descriptors */
  R_RX_IRQS, R_TX_IRQS,
  R_RX_KICKS, R_TX_KICKS, /* notifications sent (the rest event idx suppressed) */
  R_FEAT_LO, R_FEAT_HI,
  R_PORTS,     /* max_nr_ports from the device configuration */
};
enum { STAGE_GATE = 1, STAGE_READY, STAGE_GREETED, STAGE_DONE };
#define EXIT_PASS 0x10
#define EXIT_FAIL 0x11

#define RX_VECTOR    0x41
#define TX_VECTOR    0x42
#define RX_BUFS      8
#define RX_BUF_BYTES 64
#define TX_QUEUE     128
/* Each transmit chain head owns a slot: the frame header, then a copy of the data at TX_DATA. */
#define TX_SLOT      128
#define TX_DATA      32
#define TERMINATOR   0x04

#define RXQ_MEM     0x1100000ul
#define TXQ_MEM     0x1110000ul
#define RX_BUF_BASE 0x1200000ul
#define TX_SLOTS    0x1210000ul
#define FLOOD_BASE  0x1300000ul

static const char greeting[] = "virtio-console guest: hello\n";
static struct virtio_dev dev;
static struct virtq rxq, txq;

#define CHECK(cond) do { if (!(cond)) fail(__LINE__); } while (0)
static void __attribute__((noreturn)) fail(u32 line) {
  if (!R[R_FAILED]) R[R_FAILED] = line;
  debug_exit(EXIT_FAIL);
  __builtin_unreachable();
}

void isr(u32 vector) {
  if (vector == 0xff) return; /* spurious: no EOI */
  if (vector == RX_VECTOR) R[R_RX_IRQS]++;
  else if (vector == TX_VECTOR) R[R_TX_IRQS]++;
  else fail(__LINE__); /* nothing else is routed here */
  lapic_eoi();
}

/* Halts until `q` has used buffers; only an interrupt ends the HLT. */
static void wait_used(struct virtq *q) {
  cli();
  while (!virtq_arm(q)) {
    safe_halt();
    cli();
  }
  sti();
}

static void tx_reclaim(void) {
  u32 id, len;
  while ((id = virtq_get_used(&txq, &len)) != VIRTQ_NONE) {
    CHECK(id < txq.size);
    CHECK(len == 0); /* the device writes nothing into a transmit buffer */
    virtq_free_chain(&txq, (u16)id);
    R[R_TX_USED]++;
  }
}

/* Waits until `n` transmit descriptors are free. */
static void tx_reserve(u32 n) {
  tx_reclaim();
  if (txq.num_free >= n) return;
  R[R_TX_FULL]++;
  while (txq.num_free < n) {
    wait_used(&txq);
    tx_reclaim();
  }
}

/* Makes one chain of the readable buffers `b` available (after tx_reserve(n)). */
static void tx_send(const struct virtq_buf *b, u32 n) {
  u32 head = virtq_add_chain(&txq, b, n);
  CHECK(head != VIRTQ_NONE);
  virtq_publish(&txq, head);
  R[R_TX_CHAINS]++;
  for (u32 k = 0; k < n; k++) R[R_TX_BYTES] += b[k].len;
  if (virtq_kick(&txq)) R[R_TX_KICKS]++;
}

/* Until the device has used every transmit chain: nothing is left for the host to take after the exit. */
static void tx_drain(void) {
  for (tx_reclaim(); txq.num_free < txq.size; tx_reclaim()) wait_used(&txq);
}

static u32 put_dec(volatile u8 *p, u32 v) {
  u8 digits[10];
  u32 n = 0;
  do { digits[n++] = (u8)('0' + v % 10); v /= 10; } while (v);
  for (u32 i = 0; i < n; i++) p[i] = digits[n - 1 - i];
  return n;
}

/* "{seq,len}" then the `len` bytes at `data`: the host checks the order and that nothing is lost or doubled. */
static void echo(u32 seq, const volatile u8 *data, u32 len) {
  tx_reserve(2);
  u64 slot = TX_SLOTS + (u64)virtq_next_head(&txq) * TX_SLOT;
  volatile u8 *h = (volatile u8 *)slot, *copy = (volatile u8 *)(slot + TX_DATA);
  u32 n = 0;
  h[n++] = '{';
  n += put_dec(h + n, seq);
  h[n++] = ',';
  n += put_dec(h + n, len);
  h[n++] = '}';
  for (u32 i = 0; i < len; i++) copy[i] = data[i];
  struct virtq_buf b[2] = { { slot, n, 0 }, { slot + TX_DATA, len, 0 } };
  tx_send(b, 2);
}

static void rx_post(void) {
  u32 head = virtq_next_head(&rxq);
  CHECK(head < RX_BUFS);
  struct virtq_buf b = { RX_BUF_BASE + head * RX_BUF_BYTES, RX_BUF_BYTES, 1 };
  CHECK(virtq_add_chain(&rxq, &b, 1) == head);
  virtq_publish(&rxq, head);
}

static void rx_kick(void) {
  if (virtq_kick(&rxq)) R[R_RX_KICKS]++;
}

static void echo_until_terminator(void) {
  for (u32 seq = 0;;) {
    wait_used(&rxq);
    u32 id, len, done = 0;
    while ((id = virtq_get_used(&rxq, &len)) != VIRTQ_NONE) {
      CHECK(id < RX_BUFS);
      CHECK(len >= 1 && len <= RX_BUF_BYTES);
      CHECK(!done); /* the terminator is the last byte the host types */
      const volatile u8 *data = (const volatile u8 *)(RX_BUF_BASE + id * RX_BUF_BYTES);
      for (u32 i = 0; i < len; i++) {
        if (data[i] != TERMINATOR) continue;
        CHECK(i == len - 1);
        done = 1;
      }
      R[R_RX_BUFS]++;
      R[R_RX_BYTES] += len;
      if (len > R[R_MAX_CHUNK]) R[R_MAX_CHUNK] = len;
      echo(seq++, data, len);
      virtq_free_chain(&rxq, (u16)id);
      rx_post();
    }
    rx_kick();
    if (done) return;
  }
}

/* kvm-virtio-console.test.ts computes the same bytes. */
static inline u8 flood_byte(u32 i) { return (u8)((i * 0x9e3779b1u) >> 24); }

static void flood(void) {
  for (u32 i = 0; i < FLOOD_BYTES; i++) *(volatile u8 *)(FLOOD_BASE + i) = flood_byte(i);
  u32 off = 0;
  for (u32 k = 0; off < FLOOD_BYTES; k++) {
    u32 len = 16 + (k * 53) % 241;
    if (len > FLOOD_BYTES - off) len = FLOOD_BYTES - off;
    tx_reserve(1);
    struct virtq_buf b = { FLOOD_BASE + off, len, 0 };
    tx_send(&b, 1);
    off += len;
  }
}

static void setup(void) {
  CHECK(virtio_pci_probe(&dev, 1, VIRTIO_ID_CONSOLE) == 0);
  CHECK(dev.device && dev.msix_cap && dev.msix_vectors >= 2);
  CHECK(virtio_negotiate(&dev, EVENT_IDX ? VIRTIO_F_EVENT_IDX : 0) == 0);
  R[R_FEAT_LO] = (u32)dev.features;
  R[R_FEAT_HI] = (u32)(dev.features >> 32);
  R[R_PORTS] = mmio_read32(dev.device + VIRTIO_CONSOLE_CFG_MAX_NR_PORTS);
  virtio_msix_enable(&dev);
  virtio_msix_route(&dev, 0, 0, RX_VECTOR);
  virtio_msix_route(&dev, 1, 0, TX_VECTOR);
  CHECK(virtio_queue_setup(&dev, &rxq, VIRTIO_CONSOLE_RECEIVEQ, RXQ_MEM, RX_BUFS, 0) == 0);
  CHECK(rxq.size == RX_BUFS);
  CHECK(virtio_queue_setup(&dev, &txq, VIRTIO_CONSOLE_TRANSMITQ, TXQ_MEM, TX_QUEUE, 1) == 0);
  virtio_driver_ok(&dev);
  CHECK(virtio_status(&dev) == (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK));
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) for (;;) { cli(); hlt(); }
  lapic_enable();
  sti();
  R[R_STAGE] = STAGE_GATE;
  if (SCENARIO == ECHO) while (!R[R_GATE]) pause();
  setup();
  R[R_STAGE] = STAGE_READY;
  tx_reserve(1);
  struct virtq_buf g = { (u64)greeting, sizeof greeting - 1, 0 };
  tx_send(&g, 1);
  R[R_STAGE] = STAGE_GREETED;
  if (SCENARIO == ECHO) {
    for (u32 i = 0; i < RX_BUFS; i++) rx_post();
    rx_kick();
    echo_until_terminator();
  } else {
    flood();
  }
  tx_drain();
  R[R_STAGE] = STAGE_DONE;
  debug_exit(EXIT_PASS);
}

void ap_main(u32 apic_id) { (void)apic_id; }
