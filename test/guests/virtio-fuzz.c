/*
 * Fuzzes the virtio PCI functions at 00:01.0 .. 00:DEVICES.0 from inside
 * the guest, for ever (the host stops the VM): random reads and writes of
 * every width at every register of BAR 0 (common configuration, ISR,
 * device configuration, notifications, MSI-X table and PBA, and anywhere
 * else in the BAR), random configuration-space accesses through ports
 * 0xCF8/0xCFC on these and other slots, and random descriptors and ring
 * entries in a sandbox of RAM that queue addresses usually point into, so
 * the devices also walk garbage chains. Built with -DSEED=<n>
 * -DDEVICES=<n> -DRAM_END=<bytes>.
 *
 * The guest keeps itself alive so the fuzzing lasts: values are biased
 * (queue addresses into the sandbox, MSI-X entries to fixed interrupts on
 * vectors it handles), and a BAR moved out of the PCI window or memory
 * decoding switched off is put back now and then. RESULTS: [0] operations
 * done, [1] interrupts taken, [2] configuration accesses.
 */
#include "virtio.h"
#if !defined(SEED) || !defined(DEVICES) || !defined(RAM_END)
#error "build with -DSEED=<n> -DDEVICES=<n> -DRAM_END=<bytes>"
#endif

#define R ((volatile u32 *)RESULTS)
#define SANDBOX      0x2000000ul
#define SANDBOX_SIZE 0x100000ul
#define WINDOW_START 0xc0000000ul
#define WINDOW_END   0xfec00000ul

static u64 state = SEED | 1;
static u64 rnd(void) {
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545f4914f6cdd1dul;
}

static u64 bar[DEVICES + 1];

void isr(u32 vector) {
  (void)vector;
  R[1]++;
  lapic_eoi();
}
void ap_main(u32 apic_id) { (void)apic_id; }

static u32 cfg_read(u32 dev, u32 off, u32 size) {
  pci_select(dev, off);
  u16 port = (u16)(PCI_CONFIG_DATA + (off & 3));
  return size == 1 ? inb(port) : size == 2 ? inw(port) : pci_inl(PCI_CONFIG_DATA);
}

static void cfg_write(u32 dev, u32 off, u32 size, u32 v) {
  pci_select(dev, off);
  u16 port = (u16)(PCI_CONFIG_DATA + (off & 3));
  if (size == 1) outb(port, (u8)v);
  else if (size == 2) outw(port, (u16)v);
  else pci_outl(PCI_CONFIG_DATA, v);
}

/* Puts BAR 0 back in the window and memory decoding on, where fuzzing moved them. */
static void repair(u32 d) {
  u64 now = pci_bar_address(d, 0);
  if (now != bar[d]) cfg_write(d, PCI_BAR0, 4, (u32)bar[d]);
  u16 cmd = (u16)cfg_read(d, PCI_COMMAND, 2);
  if (!(cmd & PCI_COMMAND_MEMORY)) cfg_write(d, PCI_COMMAND, 2, cmd | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* A value for a write of `size` bytes at BAR offset `off`, biased towards what keeps the devices busy. */
static u32 value_for(u32 off, u32 size, u64 r) {
  u32 v = (u32)(r >> 32);
  u32 pick = (u32)(r & 7);
  if (off >= 0x20 && off < 0x38) {
    /* Queue addresses: low halves into the sandbox, high halves zero, mostly; never RAM outside the sandbox (the guest's own code). */
    if (pick < 6) return (off & 4) ? 0 : (u32)(SANDBOX + ((v % SANDBOX_SIZE) & ~0xffful));
    if (!(off & 4) && v < RAM_END && (v < SANDBOX || v >= SANDBOX + SANDBOX_SIZE)) v = (u32)(SANDBOX + v % SANDBOX_SIZE);
    return v;
  }
  if (off == 0x18 && pick < 6) return 1u << (v % 8);            /* queue size */
  if (off == 0x16 && pick < 6) return v % 4;                    /* queue select */
  if (off == 0x1c && pick < 6) return 1;                        /* queue enable */
  if (off == 0x14 && pick < 4) return (v & 1) ? 0 : 0x0f;      /* reset, or everything up to DRIVER_OK */
  if (off >= 0x3000 && off < 0x3010) return (off - 0x3000) / 4; /* notify */
  return size == 4 ? v : v & ((1u << (8 * size)) - 1);
}

static void mmio_op(void) {
  u64 r = rnd();
  u32 d = 1 + (u32)(r % DEVICES);
  u64 base = bar[d];
  static const u32 regions[][2] = { { 0, 0x38 }, { 0x1000, 4 }, { 0x2000, 0x40 }, { 0x3000, 0x10 }, { 0x4000, 0x40 }, { 0x6000, 0x10 }, { 0, 0x8000 } };
  const u32 *reg = regions[(r >> 8) % 7];
  u32 size = 1u << ((r >> 16) % 3);
  u32 off = reg[0] + (u32)((r >> 20) % reg[1]);
  if (off + size > 0x8000) off = 0x8000 - size;
  int write = (r >> 40) & 1;
  if (write && off >= 0x20 && off < 0x38) {
    /* Queue addresses whole (see value_for): a byte of one could point the device at the guest's own memory. */
    off &= ~3u;
    size = 4;
  }
  u64 a = base + off;
  if (off >= 0x4000 && off < 0x4040) {
    /* MSI-X entries: aligned dwords only, and only fixed interrupts to vectors with a handler (no NMI, INIT or exceptions). */
    a = base + (off & ~3u);
    u32 field = (off >> 2) & 3;
    u32 v = field == 0 ? 0xfee00000u : field == 1 ? 0 : field == 2 ? 0x40 + (u32)(rnd() % 0xa0) : (u32)(rnd() & 1);
    if (write) mmio_write32(a, v);
    else (void)mmio_read32(a);
    return;
  }
  if (!write) {
    if (size == 1) (void)vio_read8(a);
    else if (size == 2) (void)vio_read16(a);
    else (void)mmio_read32(a);
    return;
  }
  u32 v = value_for(off, size, rnd());
  if (size == 1) vio_write8(a, (u8)v);
  else if (size == 2) vio_write16(a, (u16)v);
  else mmio_write32(a, v);
}

static void config_op(void) {
  u64 r = rnd();
  /* Mostly the virtio functions; sometimes the host bridge or an empty slot. */
  u32 d = (r & 3) ? 1 + (u32)((r >> 2) % DEVICES) : (u32)((r >> 2) % 32);
  u32 size = 1u << ((r >> 8) % 3);
  u32 off = (u32)((r >> 12) % 256) & ~(size - 1);
  R[2]++;
  if ((r >> 24) & 1) cfg_write(d, off, size, (u32)(r >> 32));
  else (void)cfg_read(d, off, size);
  if (d >= 1 && d <= DEVICES && ((r >> 28) & 3) == 0) repair(d);
}

/* Random descriptors (pointing into the sandbox), ring entries and indices, or plain garbage. */
static void sandbox_op(void) {
  u64 r = rnd();
  u64 at = SANDBOX + (rnd() % SANDBOX_SIZE);
  switch (r & 3) {
    case 0: {
      volatile struct virtq_desc *desc = (volatile struct virtq_desc *)(at & ~15ul);
      if ((u64)desc + 16 > SANDBOX + SANDBOX_SIZE) return;
      desc->addr = SANDBOX + (rnd() % SANDBOX_SIZE);
      desc->len = (u32)(rnd() % 4096);
      desc->flags = (u16)(rnd() & 7);
      desc->next = (u16)(rnd() % 16);
      break;
    }
    case 1:
      *(volatile u16 *)(at & ~1ul) = (u16)(rnd() % 16); /* a ring entry or index */
      break;
    case 2:
      if ((at & ~3ul) + 4 <= SANDBOX + SANDBOX_SIZE) *(volatile u32 *)(at & ~3ul) = (u32)rnd();
      break;
    default:
      *(volatile u8 *)at = (u8)rnd();
  }
}

/* A driver's view of each function, brought up properly now and then so that fuzzing also reaches live queues. */
static struct virtio_dev dev[DEVICES + 1];
static struct virtq vq[DEVICES + 1];
static int live[DEVICES + 1];

/* Negotiates random ring features, sets up a random queue in the sandbox (MSI-X or not) and sets DRIVER_OK. */
static void bring_up(void) {
  u32 d = 1 + (u32)(rnd() % DEVICES);
  repair(d);
  struct virtio_dev *v = &dev[d];
  live[d] = 0;
  if (virtio_pci_probe(v, d, pci_read32(d, 0) >> 16 & 0x3f) != 0) return;
  if (virtio_negotiate(v, rnd() & (VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX)) != 0) return;
  u32 queues = vio_read16(v->common + VIRTIO_COMMON_NUMQ);
  u16 vector = VIRTIO_MSI_NO_VECTOR;
  if (v->msix_cap && (rnd() & 1)) {
    virtio_msix_enable(v);
    for (u32 e = 0; e < v->msix_vectors && e < 4; e++) virtio_msix_route(v, e, 0, 0x40 + e);
    vector = (u16)(rnd() % 3);
  }
  u64 mem = SANDBOX + ((rnd() % (SANDBOX_SIZE - 0x10000)) & ~0xffful);
  if (virtio_queue_setup(v, &vq[d], queues ? (u32)(rnd() % queues) : 0, mem, 1u << (rnd() % 8), vector) != 0) return;
  virtio_driver_ok(v);
  live[d] = 1;
}

/* A chain of 1-4 random sandbox buffers on a live queue (a random request for virtio-blk), published and notified. */
static void submit(void) {
  u32 d = 1 + (u32)(rnd() % DEVICES);
  if (!live[d]) return;
  struct virtq *q = &vq[d];
  u32 len = 0;
  while (virtq_get_used(q, &len) != VIRTQ_NONE) q->num_free = q->size; /* the device took them: start over */
  struct virtq_buf b[4];
  u32 n = 1 + (u32)(rnd() % 4);
  for (u32 k = 0; k < n; k++) {
    b[k].addr = SANDBOX + rnd() % (SANDBOX_SIZE - 0x1000);
    b[k].len = (u32)(rnd() % 0x1000);
    b[k].write = k > 0 && (rnd() & 1);
  }
  if (rnd() & 1) {
    /* A virtio-blk request header: a real type and a sector near the disk. */
    static const u32 types[] = { VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID, 11, VIRTIO_BLK_T_WRITE_ZEROES, 99 };
    volatile struct virtio_blk_req *h = (volatile struct virtio_blk_req *)b[0].addr;
    h->type = types[rnd() % 7];
    h->sector = rnd() % 4096;
    b[0].len = 16;
  }
  u32 head = (rnd() & 3) == 0 ? virtq_add_indirect(q, (volatile struct virtq_desc *)(SANDBOX + SANDBOX_SIZE - 0x100), b, n) : virtq_add_chain(q, b, n);
  if (head == VIRTQ_NONE) {
    q->num_free = q->size;
    q->free_head = 0;
    for (u32 i = 0; i < q->size; i++) q->desc[i].next = (u16)(i + 1);
    return;
  }
  virtq_publish(q, head);
  if (rnd() & 1) virtq_arm(q);
  virtq_kick(q);
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) for (;;) safe_halt();
  lapic_enable();
  for (u32 d = 1; d <= DEVICES; d++) {
    bar[d] = pci_bar_address(d, 0);
    if (bar[d] < WINDOW_START || bar[d] >= WINDOW_END) debug_exit(0x11);
  }
  sti();
  for (;;) {
    u32 pick = (u32)(rnd() % 64);
    if (pick < 24) mmio_op();
    else if (pick < 36) config_op();
    else if (pick < 46) sandbox_op();
    else if (pick < 62) submit();
    else bring_up();
    R[0]++;
  }
}
