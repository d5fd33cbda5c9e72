/*
 * A small virtio 1.x "modern" PCI driver for nodevisor's C guests (VIRTIO
 * 1.2: 4.1 PCI transport, 2.7 split virtqueues, 5.2 block device, 5.3
 * console device).
 *
 * Transport set-up (virtio_pci_probe, virtio_negotiate, virtio_queue_setup,
 * virtio_msix_*, virtio_intx_*) uses PCI configuration mechanism 1 (ports
 * 0xCF8/0xCFC), so it runs in ring 0, on one vCPU at a time: CONFIG_ADDRESS
 * is one register for the whole machine. Everything named virtq_* or
 * virtio_blk_* touches only guest memory and the device's BAR (MMIO), so a
 * ring-3 loop may submit and poll once ring 0 has set the queue up.
 *
 * A struct virtq is not locked: callers that share one between vCPUs, or
 * between a loop and an interrupt handler, serialise around it.
 */
#ifndef NODEVISOR_VIRTIO_H
#define NODEVISOR_VIRTIO_H
#include "kit.h"

/* ---- PCI configuration space, bus 0, function 0 ---- */

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA    0xcfc
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_BAR0           0x10
#define PCI_CAP_PTR        0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_STATUS_CAP_LIST      0x10
#define PCI_COMMAND_MEMORY       0x02
#define PCI_COMMAND_MASTER       0x04
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_CAP_ID_VENDOR  0x09
#define PCI_CAP_ID_MSIX    0x11
#define MSIX_ENABLE        0x8000
#define MSIX_FUNCTION_MASK 0x4000

static inline void pci_outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u32 pci_inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void pci_select(u32 dev, u32 off) { pci_outl(PCI_CONFIG_ADDRESS, 0x80000000u | (dev << 11) | (off & 0xfc)); }
static inline u32 pci_read32(u32 dev, u32 off) { pci_select(dev, off); return pci_inl(PCI_CONFIG_DATA); }
static inline u16 pci_read16(u32 dev, u32 off) { return (u16)(pci_read32(dev, off) >> (8 * (off & 2))); }
static inline u8 pci_read8(u32 dev, u32 off) { return (u8)(pci_read32(dev, off) >> (8 * (off & 3))); }
static inline void pci_write16(u32 dev, u32 off, u16 v) { pci_select(dev, off); outw((u16)(PCI_CONFIG_DATA + (off & 2)), v); }

/* Where BAR `bar` points (memory BARs; 0 for an I/O BAR). */
static inline u64 pci_bar_address(u32 dev, u32 bar) {
  u32 lo = pci_read32(dev, PCI_BAR0 + 4 * bar);
  if (lo & 1) return 0;
  u64 base = lo & ~0xfu;
  if ((lo & 6) == 4) base |= (u64)pci_read32(dev, PCI_BAR0 + 4 * bar + 4) << 32;
  return base;
}

/* ---- MMIO of other widths (kit.h has 32 bits) ---- */

static inline u8 vio_read8(u64 a) { return *(volatile u8 *)a; }
static inline u16 vio_read16(u64 a) { return *(volatile u16 *)a; }
static inline void vio_write8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline void vio_write16(u64 a, u16 v) { *(volatile u16 *)a = v; }
static inline void vio_write64(u64 a, u64 v) { mmio_write32(a, (u32)v); mmio_write32(a + 4, (u32)(v >> 32)); }

/*
 * A full barrier (Linux's x86-64 smp_mb): the store-load order event idx
 * needs. MFENCE would do, but software-virtualising KVM hosts cannot
 * emulate SSE instructions in ring 0; a locked add to the stack works in
 * both rings.
 */
static inline void virtio_mb(void) { __asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc"); }

/* ---- The transport (4.1) ---- */

#define VIRTIO_PCI_VENDOR      0x1af4
#define VIRTIO_PCI_DEVICE_BASE 0x1040

/* virtio_pci_cap.cfg_type */
#define VIRTIO_PCI_CAP_COMMON 1
#define VIRTIO_PCI_CAP_NOTIFY 2
#define VIRTIO_PCI_CAP_ISR    3
#define VIRTIO_PCI_CAP_DEVICE 4

/* Common configuration (virtio_pci_common_cfg) offsets. */
#define VIRTIO_COMMON_DFSELECT   0x00
#define VIRTIO_COMMON_DF         0x04
#define VIRTIO_COMMON_GFSELECT   0x08
#define VIRTIO_COMMON_GF         0x0c
#define VIRTIO_COMMON_MSIX       0x10
#define VIRTIO_COMMON_NUMQ       0x12
#define VIRTIO_COMMON_STATUS     0x14
#define VIRTIO_COMMON_CFGGEN     0x15
#define VIRTIO_COMMON_Q_SELECT   0x16
#define VIRTIO_COMMON_Q_SIZE     0x18
#define VIRTIO_COMMON_Q_MSIX     0x1a
#define VIRTIO_COMMON_Q_ENABLE   0x1c
#define VIRTIO_COMMON_Q_NOFF     0x1e
#define VIRTIO_COMMON_Q_DESC     0x20
#define VIRTIO_COMMON_Q_DRIVER   0x28
#define VIRTIO_COMMON_Q_DEVICE   0x30

/* Device status (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER      2
#define VIRTIO_STATUS_DRIVER_OK   4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

/* Transport feature bits (6), as masks. */
#define VIRTIO_F_INDIRECT_DESC (1ul << 28)
#define VIRTIO_F_EVENT_IDX     (1ul << 29)
#define VIRTIO_F_VERSION_1     (1ul << 32)

#define VIRTIO_MSI_NO_VECTOR 0xffff
#define VIRTIO_ISR_QUEUE  1
#define VIRTIO_ISR_CONFIG 2

/* virtio_pci_probe errors. */
#define VIRTIO_E_NOT_VIRTIO  (-1)
#define VIRTIO_E_NO_CAPS     (-2)
/* virtio_negotiate errors. */
#define VIRTIO_E_NO_VERSION_1  (-3)
#define VIRTIO_E_FEATURES_OK   (-4)
/* virtio_queue_setup errors. */
#define VIRTIO_E_NO_QUEUE      (-5)
#define VIRTIO_E_VECTOR        (-6)

struct virtio_dev {
  u32 pci_dev;           /* device number on bus 0 */
  u64 common, isr, device, notify; /* MMIO addresses of the regions */
  u32 notify_multiplier;
  u32 msix_cap;          /* offset in configuration space; 0: none */
  u64 msix_table;
  u32 msix_vectors;
  u64 features;          /* what the driver accepted */
};

/*
 * Finds virtio device type `type` (2: block, ...) at bus 0 device `dev`
 * and its regions through the vendor capabilities (the first of each kind,
 * in memory BARs, as 4.1.4 asks), and the MSI-X capability. Turns on
 * memory decoding and bus mastering. Returns 0 or a VIRTIO_E_* error.
 */
static inline int virtio_pci_probe(struct virtio_dev *d, u32 dev, u32 type) {
  u32 id = pci_read32(dev, 0);
  if ((id & 0xffff) != VIRTIO_PCI_VENDOR || (id >> 16) != VIRTIO_PCI_DEVICE_BASE + type) return VIRTIO_E_NOT_VIRTIO;
  if (!(pci_read16(dev, PCI_STATUS) & PCI_STATUS_CAP_LIST)) return VIRTIO_E_NO_CAPS;
  d->pci_dev = dev;
  d->common = d->isr = d->device = d->notify = 0;
  d->msix_cap = 0;
  d->features = 0;
  /* 48 capabilities at most fit in 192 bytes: a longer walk is a loop. */
  u32 at = pci_read8(dev, PCI_CAP_PTR) & 0xfc;
  for (u32 n = 0; at && n < 48; n++, at = pci_read8(dev, at + 1) & 0xfc) {
    u8 cap = pci_read8(dev, at);
    if (cap == PCI_CAP_ID_MSIX) {
      u32 table = pci_read32(dev, at + 4);
      d->msix_cap = at;
      d->msix_vectors = (pci_read16(dev, at + 2) & 0x7ff) + 1u;
      d->msix_table = pci_bar_address(dev, table & 7) + (table & ~7u);
      continue;
    }
    if (cap != PCI_CAP_ID_VENDOR) continue;
    u8 type = pci_read8(dev, at + 3), bar = pci_read8(dev, at + 4);
    /* Other kinds (PCI_CFG, shared memory...) may name BARs this driver never maps. */
    if (type < VIRTIO_PCI_CAP_COMMON || type > VIRTIO_PCI_CAP_DEVICE || bar > 5) continue;
    u64 base = pci_bar_address(dev, bar);
    if (!base) continue; /* an I/O BAR: not for this driver */
    u64 where = base + pci_read32(dev, at + 8);
    switch (type) {
      case VIRTIO_PCI_CAP_COMMON: if (!d->common) d->common = where; break;
      case VIRTIO_PCI_CAP_ISR: if (!d->isr) d->isr = where; break;
      case VIRTIO_PCI_CAP_DEVICE: if (!d->device) d->device = where; break;
      case VIRTIO_PCI_CAP_NOTIFY:
        if (!d->notify) {
          d->notify = where;
          d->notify_multiplier = pci_read32(dev, at + 16);
        }
        break;
    }
  }
  if (!d->common || !d->isr || !d->notify) return VIRTIO_E_NO_CAPS;
  pci_write16(dev, PCI_COMMAND, pci_read16(dev, PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
  return 0;
}

static inline u8 virtio_status(const struct virtio_dev *d) { return vio_read8(d->common + VIRTIO_COMMON_STATUS); }
static inline void virtio_set_status(const struct virtio_dev *d, u8 s) { vio_write8(d->common + VIRTIO_COMMON_STATUS, s); }

/* Writing 0 resets; the reset is done when the status reads back 0 (4.1.4.3.2). */
static inline void virtio_reset(const struct virtio_dev *d) {
  virtio_set_status(d, 0);
  while (virtio_status(d) != 0) pause();
}

static inline u64 virtio_device_features(const struct virtio_dev *d) {
  mmio_write32(d->common + VIRTIO_COMMON_DFSELECT, 0);
  u64 lo = mmio_read32(d->common + VIRTIO_COMMON_DF);
  mmio_write32(d->common + VIRTIO_COMMON_DFSELECT, 1);
  return lo | (u64)mmio_read32(d->common + VIRTIO_COMMON_DF) << 32;
}

/*
 * Resets the device, then ACKNOWLEDGE, DRIVER, accepts what it offers of
 * `wanted` plus VERSION_1 (required: there is no legacy interface here),
 * and sets FEATURES_OK, checking that the device kept it (3.1.1). On
 * failure the status gets FAILED. Returns 0 or a VIRTIO_E_* error.
 */
static inline int virtio_negotiate(struct virtio_dev *d, u64 wanted) {
  virtio_reset(d);
  virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
  virtio_set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
  u64 offered = virtio_device_features(d);
  if (!(offered & VIRTIO_F_VERSION_1)) {
    virtio_set_status(d, virtio_status(d) | VIRTIO_STATUS_FAILED);
    return VIRTIO_E_NO_VERSION_1;
  }
  u64 accept = offered & (wanted | VIRTIO_F_VERSION_1);
  mmio_write32(d->common + VIRTIO_COMMON_GFSELECT, 0);
  mmio_write32(d->common + VIRTIO_COMMON_GF, (u32)accept);
  mmio_write32(d->common + VIRTIO_COMMON_GFSELECT, 1);
  mmio_write32(d->common + VIRTIO_COMMON_GF, (u32)(accept >> 32));
  virtio_set_status(d, virtio_status(d) | VIRTIO_STATUS_FEATURES_OK);
  if (!(virtio_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
    virtio_set_status(d, virtio_status(d) | VIRTIO_STATUS_FAILED);
    return VIRTIO_E_FEATURES_OK;
  }
  d->features = accept;
  return 0;
}

static inline void virtio_driver_ok(const struct virtio_dev *d) {
  virtio_set_status(d, virtio_status(d) | VIRTIO_STATUS_DRIVER_OK);
}

/* ---- Interrupts: MSI-X (4.1.5.1.2) or INTx ---- */

/* Turns MSI-X on (function mask off); every table entry stays masked until routed. */
static inline void virtio_msix_enable(const struct virtio_dev *d) {
  u16 control = pci_read16(d->pci_dev, d->msix_cap + 2);
  pci_write16(d->pci_dev, d->msix_cap + 2, (u16)((control | MSIX_ENABLE) & ~MSIX_FUNCTION_MASK));
}

/* Table entry `entry`: a fixed, edge-triggered message with `vector` to local APIC `apic` (physical), unmasked. */
static inline void virtio_msix_route(const struct virtio_dev *d, u32 entry, u32 apic, u32 vector) {
  u64 e = d->msix_table + 16ul * entry;
  mmio_write32(e, 0xfee00000u | (apic << 12));
  mmio_write32(e + 4, 0);
  mmio_write32(e + 8, vector);
  mmio_write32(e + 12, 0);
}

/* The IOAPIC input INTA# reaches: the Interrupt Line register the VMM fills in, as firmware would. */
static inline u32 virtio_intx_line(const struct virtio_dev *d) { return pci_read8(d->pci_dev, PCI_INTERRUPT_LINE); }

/* Routes INTA# level-triggered, active high, to `vector` on APIC `apic`, and clears Interrupt Disable. */
static inline void virtio_intx_route(const struct virtio_dev *d, u32 apic, u32 vector) {
  ioapic_route(virtio_intx_line(d), vector, apic, 1u << 15);
  pci_write16(d->pci_dev, PCI_COMMAND, pci_read16(d->pci_dev, PCI_COMMAND) & ~PCI_COMMAND_INTX_DISABLE);
}

/* Reading the ISR returns and clears it, which lowers INTA# (4.1.4.5). */
static inline u8 virtio_isr_read(const struct virtio_dev *d) { return vio_read8(d->isr); }

/* ---- Split virtqueues (2.7) ---- */

#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY     1
/* virtq_get_used: nothing used. */
#define VIRTQ_NONE 0xffffffffu

struct virtq_desc { u64 addr; u32 len; u16 flags; u16 next; };
struct virtq_avail { u16 flags; u16 idx; u16 ring[]; };       /* then used_event */
struct virtq_used_elem { u32 id; u32 len; };
struct virtq_used { u16 flags; u16 idx; struct virtq_used_elem ring[]; }; /* then avail_event */

struct virtq {
  volatile struct virtq_desc *desc;
  volatile struct virtq_avail *avail;
  volatile struct virtq_used *used;
  u64 notify;           /* this queue's notification address */
  u16 size, index;
  u16 avail_idx;        /* the next avail index the driver publishes */
  u16 kicked_idx;       /* avail_idx at the last notification decision */
  u16 last_used;        /* the next used index the driver consumes */
  u16 free_head, num_free;
  u16 event_idx;        /* VIRTIO_F_EVENT_IDX accepted */
};

/* One buffer of a chain; `write`: the device writes it. */
struct virtq_buf { u64 addr; u32 len; u32 write; };

#define VIRTQ_ALIGN(x) (((x) + 4095ul) & ~4095ul)
/* Bytes of guest memory a queue of `size` needs: the descriptor table and the avail ring, then the used ring on its own page. */
static inline u64 virtq_bytes(u32 size) { return VIRTQ_ALIGN(16ul * size + 6 + 2ul * size) + VIRTQ_ALIGN(6 + 8ul * size); }

static inline volatile u16 *virtq_used_event(struct virtq *q) { return &q->avail->ring[q->size]; }
static inline volatile u16 *virtq_avail_event(struct virtq *q) { return (volatile u16 *)&q->used->ring[q->size]; }

/* Lays out a queue of `size` (a power of two) in `mem` (virtq_bytes(size), zeroed here) with every descriptor free. */
static inline void virtq_init(struct virtq *q, u64 mem, u32 size, u32 index, int event_idx) {
  for (u64 *p = (u64 *)mem; p < (u64 *)(mem + virtq_bytes(size)); p++) *(volatile u64 *)p = 0;
  q->desc = (volatile struct virtq_desc *)mem;
  q->avail = (volatile struct virtq_avail *)(mem + 16ul * size);
  q->used = (volatile struct virtq_used *)(mem + VIRTQ_ALIGN(16ul * size + 6 + 2ul * size));
  q->size = (u16)size;
  q->index = (u16)index;
  q->avail_idx = q->kicked_idx = q->last_used = 0;
  q->event_idx = event_idx != 0;
  for (u32 i = 0; i < size; i++) q->desc[i].next = (u16)(i + 1);
  q->free_head = 0;
  q->num_free = (u16)size;
}

/*
 * Sets up queue `index` in `mem` with at most `size` entries (fewer if the
 * device's maximum is lower: q->size says), MSI-X vector `vector` (or
 * VIRTIO_MSI_NO_VECTOR) and enables it. Call between FEATURES_OK and
 * DRIVER_OK. Returns 0 or a VIRTIO_E_* error.
 */
static inline int virtio_queue_setup(const struct virtio_dev *d, struct virtq *q, u32 index, u64 mem, u32 size, u16 vector) {
  u64 c = d->common;
  vio_write16(c + VIRTIO_COMMON_Q_SELECT, (u16)index);
  u32 max = vio_read16(c + VIRTIO_COMMON_Q_SIZE);
  if (max == 0) return VIRTIO_E_NO_QUEUE;
  while (size > max) size >>= 1;
  virtq_init(q, mem, size, index, (d->features & VIRTIO_F_EVENT_IDX) != 0);
  vio_write16(c + VIRTIO_COMMON_Q_SIZE, (u16)size);
  vio_write64(c + VIRTIO_COMMON_Q_DESC, (u64)q->desc);
  vio_write64(c + VIRTIO_COMMON_Q_DRIVER, (u64)q->avail);
  vio_write64(c + VIRTIO_COMMON_Q_DEVICE, (u64)q->used);
  vio_write16(c + VIRTIO_COMMON_Q_MSIX, vector);
  /* 4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR. */
  if (vio_read16(c + VIRTIO_COMMON_Q_MSIX) != vector) return VIRTIO_E_VECTOR;
  q->notify = d->notify + (u64)vio_read16(c + VIRTIO_COMMON_Q_NOFF) * d->notify_multiplier;
  vio_write16(c + VIRTIO_COMMON_Q_ENABLE, 1);
  return 0;
}

/*
 * Puts `n` buffers (device-readable ones first) on free descriptors, linked
 * in order. Returns the head, or VIRTQ_NONE when fewer than `n` are free.
 * Nothing is visible to the device until virtq_publish.
 */
static inline u32 virtq_add_chain(struct virtq *q, const struct virtq_buf *b, u32 n) {
  if (n == 0 || n > q->num_free) return VIRTQ_NONE;
  u16 head = q->free_head, i = head;
  for (u32 k = 0; k < n; k++) {
    volatile struct virtq_desc *d = &q->desc[i];
    d->addr = b[k].addr;
    d->len = b[k].len;
    d->flags = (u16)((b[k].write ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
    /* The free list links through `next`: the chain is already in order. */
    i = d->next;
  }
  q->free_head = i;
  q->num_free = (u16)(q->num_free - n);
  return head;
}

/* The same chain through one descriptor and an indirect table of `n` entries in `table` (2.7.5.3); needs VIRTIO_F_INDIRECT_DESC. */
static inline u32 virtq_add_indirect(struct virtq *q, volatile struct virtq_desc *table, const struct virtq_buf *b, u32 n) {
  if (n == 0 || q->num_free == 0) return VIRTQ_NONE;
  for (u32 k = 0; k < n; k++) {
    table[k].addr = b[k].addr;
    table[k].len = b[k].len;
    table[k].flags = (u16)((b[k].write ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
    table[k].next = (u16)(k + 1);
  }
  u16 head = q->free_head;
  volatile struct virtq_desc *d = &q->desc[head];
  d->addr = (u64)table;
  d->len = 16 * n;
  d->flags = VIRTQ_DESC_F_INDIRECT;
  q->free_head = d->next;
  q->num_free--;
  return head;
}

/*
 * The head the next virtq_add_chain or virtq_add_indirect will return (the
 * first free descriptor), or VIRTQ_NONE when none is free: for drivers that
 * keep a buffer per descriptor and must name it before adding the chain.
 */
static inline u32 virtq_next_head(const struct virtq *q) { return q->num_free ? q->free_head : VIRTQ_NONE; }

/* Returns the chain at `head` to the free list (after the device used it). */
static inline void virtq_free_chain(struct virtq *q, u16 head) {
  u16 i = head, n = 1;
  while ((q->desc[i].flags & VIRTQ_DESC_F_NEXT) && n < q->size) {
    i = q->desc[i].next;
    n++;
  }
  q->desc[i].next = q->free_head;
  q->free_head = head;
  q->num_free = (u16)(q->num_free + n);
}

/* Makes the chain at `head` available: ring entry first, then the index that publishes it. */
static inline void virtq_publish(struct virtq *q, u32 head) {
  q->avail->ring[q->avail_idx & (q->size - 1)] = (u16)head;
  q->avail_idx++;
  barrier(); /* x86 keeps stores in order; the compiler must too */
  q->avail->idx = q->avail_idx;
}

/* The notification itself: an MMIO write of the queue index (no VIRTIO_F_NOTIFICATION_DATA). */
static inline void virtq_notify(const struct virtq *q) { vio_write16(q->notify, q->index); }

/* vring_need_event (2.7.10): whether `event` lies in [old, new). */
static inline int vring_need_event(u16 event, u16 new_idx, u16 old_idx) { return (u16)(new_idx - event - 1) < (u16)(new_idx - old_idx); }

/*
 * Notifies the device of what was published since the last kick, unless it
 * said it does not need it: with event idx, avail_event not crossed;
 * otherwise VIRTQ_USED_F_NO_NOTIFY. Returns whether it notified.
 */
static inline int virtq_kick(struct virtq *q) {
  virtio_mb(); /* the new avail index must be visible before we read the device's wishes */
  u16 old = q->kicked_idx, now = q->avail_idx;
  q->kicked_idx = now;
  int need = q->event_idx ? vring_need_event(*virtq_avail_event(q), now, old) : !(q->used->flags & VIRTQ_USED_F_NO_NOTIFY);
  if (need) virtq_notify(q);
  return need;
}

static inline int virtq_used_pending(const struct virtq *q) { return q->used->idx != q->last_used; }

/* Takes the next used element: returns its id (chain head) and its written length in *len; VIRTQ_NONE if there is none. */
static inline u32 virtq_get_used(struct virtq *q, u32 *len) {
  if (!virtq_used_pending(q)) return VIRTQ_NONE;
  barrier(); /* the element after the index (x86 keeps loads in order) */
  volatile struct virtq_used_elem *e = &q->used->ring[q->last_used & (q->size - 1)];
  u32 id = e->id;
  if (len) *len = e->len;
  q->last_used++;
  return id;
}

/*
 * Asks for an interrupt at the next used buffer (event idx: used_event;
 * otherwise clears VIRTQ_AVAIL_F_NO_INTERRUPT), then returns whether
 * buffers were used meanwhile: if so the caller drains again instead of
 * waiting for an interrupt that the device may already have decided against.
 */
static inline int virtq_arm(struct virtq *q) {
  if (q->event_idx) *virtq_used_event(q) = q->last_used;
  else q->avail->flags = 0;
  virtio_mb();
  return virtq_used_pending(q);
}

/* No interrupts for this queue: the driver polls. Only honoured without event idx (2.7.7). */
static inline void virtq_no_interrupts(struct virtq *q) { q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT; }

/* ---- virtio-console (5.3) ---- */

#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_CONSOLE_RECEIVEQ  0 /* port 0's receiveq: the device writes what was typed */
#define VIRTIO_CONSOLE_TRANSMITQ 1
/* max_nr_ports in the device configuration (cols, rows, max_nr_ports, emerg_wr). */
#define VIRTIO_CONSOLE_CFG_MAX_NR_PORTS 8

/* ---- virtio-blk (5.2) ---- */

#define VIRTIO_ID_BLOCK 2
#define VIRTIO_BLK_F_SEG_MAX      (1ul << 2)
#define VIRTIO_BLK_F_RO           (1ul << 5)
#define VIRTIO_BLK_F_BLK_SIZE     (1ul << 6)
#define VIRTIO_BLK_F_FLUSH        (1ul << 9)
#define VIRTIO_BLK_F_MQ           (1ul << 12)
#define VIRTIO_BLK_F_WRITE_ZEROES (1ul << 14)
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_SECTOR   512

struct virtio_blk_req { u32 type; u32 reserved; u64 sector; };
/* The payload of WRITE_ZEROES and DISCARD. */
struct virtio_blk_range { u64 sector; u32 num_sectors; u32 flags; };

/* Capacity in 512-byte sectors; re-read until config_generation is stable (4.1.4.3.1), as it is 64 bits read in halves. */
static inline u64 virtio_blk_capacity(const struct virtio_dev *d) {
  u8 gen;
  u64 cap;
  do {
    gen = vio_read8(d->common + VIRTIO_COMMON_CFGGEN);
    cap = mmio_read32(d->device) | (u64)mmio_read32(d->device + 4) << 32;
  } while (gen != vio_read8(d->common + VIRTIO_COMMON_CFGGEN));
  return cap;
}

/* num_queues (valid with VIRTIO_BLK_F_MQ; one queue without). */
static inline u32 virtio_blk_num_queues(const struct virtio_dev *d) {
  return (d->features & VIRTIO_BLK_F_MQ) ? vio_read16(d->device + 0x22) : 1;
}

/*
 * Fills `hdr` and describes a request in `out`: the header, the `n` data
 * buffers of `data` (the device writes them for IN and GET_ID, reads them
 * otherwise) and the one-byte `status`. Returns the buffer count, n + 2.
 */
static inline u32 virtio_blk_request(struct virtq_buf *out, volatile struct virtio_blk_req *hdr, u32 type, u64 sector,
                                     const struct virtq_buf *data, u32 n, volatile u8 *status) {
  hdr->type = type;
  hdr->reserved = 0;
  hdr->sector = sector;
  u32 in = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
  out[0] = (struct virtq_buf){ (u64)hdr, sizeof(struct virtio_blk_req), 0 };
  for (u32 k = 0; k < n; k++) out[1 + k] = (struct virtq_buf){ data[k].addr, data[k].len, in };
  *status = 0xff; /* a value no device writes: an untouched status shows */
  out[1 + n] = (struct virtq_buf){ (u64)status, 1, 1 };
  return n + 2;
}

/* ---- virtio-net (5.1) ---- */

#define VIRTIO_ID_NET 1
#define VIRTIO_NET_F_CSUM       (1ul << 0)
#define VIRTIO_NET_F_GUEST_CSUM (1ul << 1)
#define VIRTIO_NET_F_MAC        (1ul << 5)
#define VIRTIO_NET_F_GUEST_TSO4 (1ul << 7)
#define VIRTIO_NET_F_HOST_TSO4  (1ul << 11)
#define VIRTIO_NET_F_MRG_RXBUF  (1ul << 15)
#define VIRTIO_NET_F_STATUS     (1ul << 16)
#define VIRTIO_NET_F_CTRL_VQ    (1ul << 17)
#define VIRTIO_NET_F_MQ         (1ul << 22)
/* Device configuration offsets: mac[6], status, max_virtqueue_pairs. */
#define VIRTIO_NET_CFG_MAC       0
#define VIRTIO_NET_CFG_STATUS    6
#define VIRTIO_NET_CFG_MAX_PAIRS 8
#define VIRTIO_NET_S_LINK_UP     1
#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1
#define VIRTIO_NET_HDR_F_DATA_VALID 2
#define VIRTIO_NET_HDR_GSO_NONE     0
#define VIRTIO_NET_CTRL_MQ              4
#define VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET 0
#define VIRTIO_NET_OK  0
#define VIRTIO_NET_ERR 1

/* The header before every packet (12 bytes with VERSION_1: num_buffers is always there). */
struct virtio_net_hdr { u8 flags, gso_type; u16 hdr_len, gso_size, csum_start, csum_offset, num_buffers; } __attribute__((packed));
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr with num_buffers");

/* Queue indices: receiveq and transmitq of each pair, then the control queue. */
static inline u32 virtio_net_rxq(u32 pair) { return 2 * pair; }
static inline u32 virtio_net_txq(u32 pair) { return 2 * pair + 1; }
#endif
