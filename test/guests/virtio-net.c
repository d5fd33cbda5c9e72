/*
 * virtio-net through guests/lib/virtio.h, with PAIRS queue pairs (1 or 2)
 * on as many vCPUs: vCPU p owns pair p (its receive and transmit queues,
 * their MSI-X vectors routed to it). vCPU 0 sets the device up, checks
 * the MAC, link status and max_virtqueue_pairs it reads, and with two
 * pairs turns the second on through the control queue
 * (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET). It then waits for the host to open
 * the gate (R_GATE): the host moves the tap into its network namespace and
 * starts its UDP echo peer meanwhile.
 *
 * Each vCPU sends PACKETS IPv4/UDP datagrams from GUEST_IP:BASE_PORT+p to
 * HOST_IP:HOST_PORT: the first alone, and it halts (R cpu.waiting) until
 * its echo comes, which the host holds back until it sees every vCPU
 * waiting, so that echo surely arrives through an interrupt; then the
 * rest, up to WINDOW of them unanswered. Datagram seq carries
 * a 12-byte tag (cpu, seq, length) and pattern bytes, 18 to 1472 bytes of
 * payload (frames of 60 to 1514 bytes); odd ones leave the UDP checksum to
 * the device (VIRTIO_NET_HDR_F_NEEDS_CSUM), even ones carry it; header and
 * frame go in one descriptor or two. The host checks every datagram byte
 * for byte and echoes it. Receive buffers are RX_BUF bytes, so most echoes
 * span several of them (mergeable buffers, num_buffers); the guest
 * reassembles each, checks the headers and every payload byte (and the
 * UDP checksum, unless the device says it is partial or already checked:
 * GUEST_CSUM=0 leaves that offload out, so it checks them all), and marks
 * the datagram answered. Waits are HLT until an interrupt: a lost one
 * hangs the guest and fails the host's test.
 *
 * Exit EXIT_PASS once every datagram came back exactly once, EXIT_FAIL
 * with R_FAILED = the failing check's line otherwise. RESULTS holds
 * struct report.
 */
#include "virtio.h"

#if !defined(PAIRS) || !defined(PACKETS) || !defined(GUEST_CSUM)
#error "build with -DPAIRS=1|2, -DPACKETS=n and -DGUEST_CSUM=0|1"
#endif

#define R_WORDS ((volatile u32 *)RESULTS)
#define EXIT_PASS 0x10
#define EXIT_FAIL 0x11
#define CHECK(cond) do { if (!(cond)) fail(__LINE__); } while (0)

#define WINDOW    16
#define QUEUE     128
#define RX_BUFS   64
#define RX_BUF    256
#define BASE_PORT 5000
#define HOST_PORT 7777
#define MAX_PAYLOAD 1472
#define TAG_BYTES 12

static const u8 guest_mac[6] = { 0x52, 0x54, 0x00, 0x4e, 0x56, 0x02 };
static const u8 host_mac[6] = { 0x02, 0x4e, 0x56, 0x00, 0x00, 0x01 };
static const u8 guest_ip[4] = { 10, 77, 0, 2 };
static const u8 host_ip[4] = { 10, 77, 0, 1 };

#define RX_VECTOR   0x40 /* + pair */
#define TX_VECTOR   0x48 /* + pair */
#define CTRL_VECTOR 0x50
#define WAKE_VECTOR 0x51 /* IPI: an echo of your datagram came in on my queue */

#define QUEUE_MEM 0x1100000ul /* + queue * 0x10000 */
#define RX_MEM    0x1200000ul /* + pair * 0x10000 + buffer * RX_BUF */
#define TX_MEM    0x1300000ul /* + pair * 0x100000 + slot * 0x800 */
#define CTRL_MEM  0x1500000ul
#define PKT_MEM   0x1600000ul /* + pair * 0x1000: a reassembled packet */

/* The host reads this at RESULTS; kvm-virtio-net.test.ts mirrors it. */
struct cpu_report {
  u32 sent, answered, rx_packets, rx_other, rx_irqs, tx_irqs, rx_partial, rx_merged, max_buffers, tx_used, dups, foreign, waiting, pad[3];
};
struct report {
  u32 stage, failed, gate, features_lo, features_hi, status, max_pairs, ctrl_ack, mac_ok, offered_lo, offered_hi, pad[5];
  struct cpu_report cpu[2]; /* word 16 */
};
_Static_assert(__builtin_offsetof(struct report, cpu) == 64, "layout is part of the host contract");
#define REPORT ((volatile struct report *)RESULTS)
enum { STAGE_SETUP = 1, STAGE_GATE, STAGE_RUNNING, STAGE_DONE };

static struct virtio_dev dev;
static struct virtq rxq[2], txq[2], ctrlq;
static volatile u32 device_ready, finished;
/* answered[cpu][seq]: the echo came back. */
static volatile u8 answered[2][PACKETS];

static void __attribute__((noreturn)) fail(u32 line) {
  __atomic_compare_exchange_n(&REPORT->failed, &(u32){ 0 }, line, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  debug_exit(EXIT_FAIL);
  __builtin_unreachable();
}

void isr(u32 vector) {
  if (vector == 0xff) return; /* spurious: no EOI */
  u32 me = lapic_id();
  if (vector >= RX_VECTOR && vector < RX_VECTOR + PAIRS) {
    CHECK(vector - RX_VECTOR == me);
    REPORT->cpu[me].rx_irqs++;
  } else if (vector >= TX_VECTOR && vector < TX_VECTOR + PAIRS) {
    CHECK(vector - TX_VECTOR == me);
    REPORT->cpu[me].tx_irqs++;
  } else if (vector != CTRL_VECTOR && vector != WAKE_VECTOR) {
    fail(__LINE__);
  }
  lapic_eoi();
}

/* ---- bytes ---- */

/* kvm-virtio-net.test.ts computes the same. */
static inline u8 payload_byte(u32 cpu, u32 seq, u32 i) { return (u8)((i * 0x9e3779b1u + seq * 0x85ebca77u + cpu * 0x27d4eb2fu) >> 24); }
/* 18 to 1472 bytes, the extremes included. */
static inline u32 payload_len(u32 seq) { return seq == 0 ? 18 : seq == 1 ? MAX_PAYLOAD : 18 + (seq * 397u) % (MAX_PAYLOAD - 17); }

static inline void put16(volatile u8 *p, u16 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }
static inline u16 get16(const volatile u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static inline void put32le(volatile u8 *p, u32 v) { for (int i = 0; i < 4; i++) p[i] = (u8)(v >> (8 * i)); }
static inline u32 get32le(const volatile u8 *p) { return p[0] | p[1] << 8 | p[2] << 16 | (u32)p[3] << 24; }

/* Ones' complement sum of big-endian 16-bit words, unfolded. */
static u32 sum16(const volatile u8 *p, u32 len, u32 sum) {
  for (u32 i = 0; i + 1 < len; i += 2) sum += (u32)(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += (u32)p[len - 1] << 8;
  return sum;
}
static u16 fold(u32 sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (u16)sum;
}
static u32 pseudo_sum(const u8 *src, const u8 *dst, u32 udp_len) {
  return sum16(src, 4, 0) + sum16(dst, 4, 0) + 17 + udp_len;
}

/* ---- transmit ---- */

#define ETH 14
#define IP 20
#define UDP 8

/* Writes the frame of datagram `seq` of `cpu` at `f`; returns its length. */
static u32 build_frame(volatile u8 *f, u32 cpu, u32 seq, int partial) {
  u32 len = payload_len(seq);
  for (int i = 0; i < 6; i++) { f[i] = host_mac[i]; f[6 + i] = guest_mac[i]; }
  put16(f + 12, 0x0800);
  volatile u8 *ip = f + ETH;
  ip[0] = 0x45; ip[1] = 0;
  put16(ip + 2, (u16)(IP + UDP + len));
  put16(ip + 4, (u16)seq); put16(ip + 6, 0x4000); /* don't fragment */
  ip[8] = 64; ip[9] = 17;
  put16(ip + 10, 0);
  for (int i = 0; i < 4; i++) { ip[12 + i] = guest_ip[i]; ip[16 + i] = host_ip[i]; }
  put16(ip + 10, (u16)~fold(sum16(ip, IP, 0)));
  volatile u8 *udp = ip + IP;
  put16(udp, (u16)(BASE_PORT + cpu)); put16(udp + 2, HOST_PORT);
  put16(udp + 4, (u16)(UDP + len));
  volatile u8 *data = udp + UDP;
  put32le(data, cpu); put32le(data + 4, seq); put32le(data + 8, len);
  for (u32 i = TAG_BYTES; i < len; i++) data[i] = payload_byte(cpu, seq, i);
  u32 sum = pseudo_sum(guest_ip, host_ip, UDP + len);
  if (partial) {
    /* The device finishes it: the field holds the pseudo-header sum (5.1.6.2). */
    put16(udp + 6, fold(sum));
  } else {
    put16(udp + 6, 0);
    u16 c = (u16)~fold(sum16(udp, UDP + len, sum));
    put16(udp + 6, c ? c : 0xffff);
  }
  return ETH + IP + UDP + len;
}

static void tx_reclaim(u32 p) {
  u32 id, len;
  while ((id = virtq_get_used(&txq[p], &len)) != VIRTQ_NONE) {
    CHECK(id < txq[p].size);
    CHECK(len == 0); /* the device writes nothing into a transmit buffer */
    virtq_free_chain(&txq[p], (u16)id);
    REPORT->cpu[p].tx_used++;
  }
}

static void send(u32 p, u32 seq) {
  tx_reclaim(p);
  CHECK(txq[p].num_free >= 2); /* WINDOW chains of two at most */
  u64 slot = TX_MEM + p * 0x100000ul + (u64)virtq_next_head(&txq[p]) * 0x800;
  volatile struct virtio_net_hdr *h = (volatile struct virtio_net_hdr *)slot;
  int partial = seq & 1;
  /* Header and frame contiguous in one descriptor, or the frame in a second one. */
  int split = (seq >> 1) & 1;
  volatile u8 *frame = (volatile u8 *)(slot + (split ? 64 : sizeof(struct virtio_net_hdr)));
  u32 len = build_frame(frame, p, seq, partial);
  h->flags = partial ? VIRTIO_NET_HDR_F_NEEDS_CSUM : 0;
  h->gso_type = VIRTIO_NET_HDR_GSO_NONE;
  h->hdr_len = 0; h->gso_size = 0;
  h->csum_start = partial ? ETH + IP : 0;
  h->csum_offset = partial ? 6 : 0;
  h->num_buffers = 0;
  struct virtq_buf b[2] = { { slot, sizeof(struct virtio_net_hdr), 0 }, { (u64)frame, len, 0 } };
  if (!split) b[0].len += len;
  u32 head = virtq_add_chain(&txq[p], b, split ? 2 : 1);
  CHECK(head != VIRTQ_NONE);
  virtq_publish(&txq[p], head);
  virtq_kick(&txq[p]);
  REPORT->cpu[p].sent++;
}

/* ---- receive ---- */

static void rx_post(u32 p, u32 buf) {
  struct virtq_buf b = { RX_MEM + p * 0x10000ul + buf * RX_BUF, RX_BUF, 1 };
  CHECK(virtq_next_head(&rxq[p]) == buf);
  CHECK(virtq_add_chain(&rxq[p], &b, 1) == buf);
  virtq_publish(&rxq[p], buf);
}

/* Checks one reassembled packet (header, then frame); marks its datagram answered. */
static void check_packet(u32 p, const volatile u8 *pkt, u32 total) {
  volatile struct cpu_report *r = &REPORT->cpu[p];
  const volatile struct virtio_net_hdr *h = (const volatile struct virtio_net_hdr *)pkt;
  CHECK(h->gso_type == VIRTIO_NET_HDR_GSO_NONE);
  const volatile u8 *f = pkt + sizeof *h;
  u32 flen = total - sizeof *h;
  if (flen < ETH + IP + UDP || get16(f + 12) != 0x0800 || f[ETH + 9] != 17) {
    r->rx_other++; /* not ours: the host's own chatter */
    return;
  }
  for (int i = 0; i < 6; i++) CHECK(f[i] == guest_mac[i] && f[6 + i] == host_mac[i]);
  const volatile u8 *ip = f + ETH;
  CHECK(ip[0] == 0x45);
  CHECK(fold(sum16(ip, IP, 0)) == 0xffff);
  for (int i = 0; i < 4; i++) CHECK(ip[12 + i] == host_ip[i] && ip[16 + i] == guest_ip[i]);
  const volatile u8 *udp = ip + IP;
  u32 ulen = get16(udp + 4);
  CHECK(get16(ip + 2) == IP + ulen && ETH + IP + ulen <= flen);
  CHECK(get16(udp) == HOST_PORT);
  u32 cpu = get16(udp + 2) - BASE_PORT;
  CHECK(cpu < PAIRS);
  if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
    CHECK(GUEST_CSUM); /* the device must not send partial checksums to a driver that refused them */
    CHECK(h->csum_start == ETH + IP && h->csum_offset == 6);
    r->rx_partial++;
  } else if (!(h->flags & VIRTIO_NET_HDR_F_DATA_VALID)) {
    CHECK(fold(sum16(udp, ulen, pseudo_sum(host_ip, guest_ip, ulen))) == 0xffff);
  }
  const volatile u8 *data = udp + UDP;
  u32 len = ulen - UDP;
  CHECK(len >= TAG_BYTES);
  u32 seq = get32le(data + 4);
  CHECK(get32le(data) == cpu && seq < PACKETS && get32le(data + 8) == len && len == payload_len(seq));
  for (u32 i = TAG_BYTES; i < len; i++) CHECK(data[i] == payload_byte(cpu, seq, i));
  if (__atomic_exchange_n(&answered[cpu][seq], 1, __ATOMIC_SEQ_CST)) {
    r->dups++;
    fail(__LINE__);
  }
  r->rx_packets++;
  if (cpu == p) {
    atomic_inc(&r->answered);
    return;
  }
  /* The kernel steered it to the other queue pair: tell its sender, which may be halted. */
  r->foreign++;
  atomic_inc(&REPORT->cpu[cpu].answered);
  send_ipi(cpu, WAKE_VECTOR);
}

/* Takes every whole packet in the receive queue, reposting its buffers; returns how many. */
static u32 rx_drain(u32 p) {
  volatile u8 *pkt = (volatile u8 *)(PKT_MEM + p * 0x1000ul);
  u32 n = 0;
  for (;;) {
    /* A packet's buffers are used together: num_buffers of them, in order. */
    if (!virtq_used_pending(&rxq[p])) return n;
    u32 id, len;
    id = virtq_get_used(&rxq[p], &len);
    CHECK(id < RX_BUFS && len >= sizeof(struct virtio_net_hdr) && len <= RX_BUF);
    const volatile u8 *b = (const volatile u8 *)(RX_MEM + p * 0x10000ul + id * RX_BUF);
    u32 total = 0;
    for (u32 i = 0; i < len; i++) pkt[total++] = b[i];
    u32 bufs = ((const volatile struct virtio_net_hdr *)b)->num_buffers;
    CHECK(bufs >= 1 && bufs <= 7);
    virtq_free_chain(&rxq[p], (u16)id);
    rx_post(p, id);
    for (u32 k = 1; k < bufs; k++) {
      CHECK(virtq_used_pending(&rxq[p]));
      id = virtq_get_used(&rxq[p], &len);
      CHECK(id < RX_BUFS && len >= 1 && len <= RX_BUF);
      b = (const volatile u8 *)(RX_MEM + p * 0x10000ul + id * RX_BUF);
      for (u32 i = 0; i < len; i++) pkt[total++] = b[i];
      virtq_free_chain(&rxq[p], (u16)id);
      rx_post(p, id);
    }
    if (bufs > 1) REPORT->cpu[p].rx_merged++;
    if (bufs > REPORT->cpu[p].max_buffers) REPORT->cpu[p].max_buffers = bufs;
    check_packet(p, pkt, total);
    n++;
  }
}

/* ---- set-up ---- */

static void control_mq(u32 pairs) {
  volatile u8 *cmd = (volatile u8 *)CTRL_MEM;
  cmd[0] = VIRTIO_NET_CTRL_MQ;
  cmd[1] = VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET;
  cmd[2] = (u8)pairs; cmd[3] = (u8)(pairs >> 8);
  cmd[16] = 0xff; /* an ack no device writes */
  struct virtq_buf b[3] = { { CTRL_MEM, 2, 0 }, { CTRL_MEM + 2, 2, 0 }, { CTRL_MEM + 16, 1, 1 } };
  u32 head = virtq_add_chain(&ctrlq, b, 3);
  virtq_publish(&ctrlq, head);
  virtq_kick(&ctrlq);
  u32 id, len;
  /* A short command: poll rather than halt. */
  while ((id = virtq_get_used(&ctrlq, &len)) == VIRTQ_NONE) pause();
  CHECK(id == head && len == 1);
  REPORT->ctrl_ack = cmd[16];
}

static void setup(void) {
  REPORT->stage = STAGE_SETUP;
  CHECK(virtio_pci_probe(&dev, 1, VIRTIO_ID_NET) == 0);
  CHECK(dev.device && dev.msix_cap && dev.msix_vectors >= 2 * PAIRS + (PAIRS > 1));
  u64 offered = virtio_device_features(&dev);
  REPORT->offered_lo = (u32)offered;
  REPORT->offered_hi = (u32)(offered >> 32);
  u64 want = VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_CSUM | VIRTIO_F_EVENT_IDX;
  if (GUEST_CSUM) want |= VIRTIO_NET_F_GUEST_CSUM;
  if (PAIRS > 1) want |= VIRTIO_NET_F_CTRL_VQ | VIRTIO_NET_F_MQ;
  CHECK(virtio_negotiate(&dev, want) == 0);
  REPORT->features_lo = (u32)dev.features;
  REPORT->features_hi = (u32)(dev.features >> 32);
  u32 mac_ok = 1;
  for (int i = 0; i < 6; i++) mac_ok &= vio_read8(dev.device + VIRTIO_NET_CFG_MAC + i) == guest_mac[i];
  REPORT->mac_ok = mac_ok;
  REPORT->status = vio_read16(dev.device + VIRTIO_NET_CFG_STATUS);
  REPORT->max_pairs = vio_read16(dev.device + VIRTIO_NET_CFG_MAX_PAIRS);
  virtio_msix_enable(&dev);
  for (u32 p = 0; p < PAIRS; p++) {
    virtio_msix_route(&dev, virtio_net_rxq(p), p, RX_VECTOR + p);
    virtio_msix_route(&dev, virtio_net_txq(p), p, TX_VECTOR + p);
    CHECK(virtio_queue_setup(&dev, &rxq[p], virtio_net_rxq(p), QUEUE_MEM + virtio_net_rxq(p) * 0x10000ul, QUEUE, (u16)virtio_net_rxq(p)) == 0);
    CHECK(virtio_queue_setup(&dev, &txq[p], virtio_net_txq(p), QUEUE_MEM + virtio_net_txq(p) * 0x10000ul, QUEUE, (u16)virtio_net_txq(p)) == 0);
  }
  if (PAIRS > 1) {
    virtio_msix_route(&dev, 2 * PAIRS, 0, CTRL_VECTOR);
    CHECK(virtio_queue_setup(&dev, &ctrlq, 2 * PAIRS, QUEUE_MEM + 2 * PAIRS * 0x10000ul, 8, (u16)(2 * PAIRS)) == 0);
  }
  virtio_driver_ok(&dev);
  CHECK(virtio_status(&dev) == (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK));
  if (PAIRS > 1) {
    control_mq(PAIRS);
    CHECK(REPORT->ctrl_ack == VIRTIO_NET_OK);
  }
}

/* Sends this vCPU's datagrams, WINDOW unanswered at most, and waits for every echo. */
static void run(u32 p) {
  for (u32 i = 0; i < RX_BUFS; i++) rx_post(p, i);
  virtq_kick(&rxq[p]);
  volatile struct cpu_report *r = &REPORT->cpu[p];
  cli();
  send(p, 0);
  while (!atomic_load(&r->answered)) {
    if (rx_drain(p)) {
      virtq_kick(&rxq[p]);
      continue;
    }
    if (virtq_arm(&rxq[p])) continue;
    r->waiting = 1;
    safe_halt();
    cli();
  }
  u32 next = 1;
  while (atomic_load(&r->answered) < PACKETS) {
    while (next < PACKETS && next - atomic_load(&r->answered) < WINDOW) send(p, next++);
    if (rx_drain(p)) {
      virtq_kick(&rxq[p]);
      continue;
    }
    /* Halt until an interrupt says something was used (receive, or transmit buffers back). */
    if (virtq_arm(&rxq[p])) continue;
    virtq_arm(&txq[p]);
    if (atomic_load(&r->answered) >= PACKETS) break;
    safe_halt();
    cli();
    tx_reclaim(p);
  }
  sti();
  /* Every transmit buffer back before we report. */
  for (tx_reclaim(p); txq[p].num_free < txq[p].size; tx_reclaim(p)) pause();
}

void guest_main(u32 cpu, u32 ncpus) {
  if (cpu >= PAIRS) for (;;) { cli(); hlt(); }
  CHECK(ncpus >= PAIRS);
  lapic_enable();
  if (cpu == 0) {
    setup();
    REPORT->stage = STAGE_GATE;
    while (!REPORT->gate) pause();
    REPORT->stage = STAGE_RUNNING;
    __atomic_store_n(&device_ready, 1, __ATOMIC_RELEASE);
  } else {
    while (!__atomic_load_n(&device_ready, __ATOMIC_ACQUIRE)) pause();
  }
  run(cpu);
  if (atomic_inc(&finished) == PAIRS) {
    REPORT->stage = STAGE_DONE;
    debug_exit(EXIT_PASS);
  }
  for (;;) { cli(); hlt(); }
}

void ap_main(u32 apic_id) { (void)apic_id; }
