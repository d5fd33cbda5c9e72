/*
 * A tiny freestanding runtime for nodevisor's C test guests (64-bit, ring 0).
 * start64.S enters guest_main(cpu, ncpus) on each vCPU the VMM starts and
 * ap_main(cpu) on APs woken by INIT-SIPI-SIPI; interrupts land in isr(vector).
 */
#ifndef NODEVISOR_KIT_H
#define NODEVISOR_KIT_H
#include "guest.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;

#define LAPIC_BASE      0xfee00000ul
#define LAPIC_ID        0x020
#define LAPIC_TPR       0x080
#define LAPIC_EOI       0x0b0
#define LAPIC_LDR       0x0d0
#define LAPIC_DFR       0x0e0
#define LAPIC_SVR       0x0f0
#define LAPIC_ICR_LO    0x300
#define LAPIC_ICR_HI    0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_ICR 0x380
#define LAPIC_TIMER_CCR 0x390
#define LAPIC_TIMER_DCR 0x3e0
#define IOAPIC_BASE     0xfec00000ul

/* Results area shared with the host test, clear of image, stacks and IDT. */
#define RESULTS 0x1000000ul

void guest_main(u32 cpu, u32 ncpus);
void ap_main(u32 cpu);
void isr(u32 vector);
extern u8 ap_trampoline[], ap_trampoline_end[];

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)addr = v; }
static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)addr; }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
/* sti; hlt: interrupts are taken only once the CPU is halted (STI shadow). */
static inline void safe_halt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/*
 * Copies the AP trampoline to TRAMPOLINE (a SIPI vector names a page below
 * 1 MiB; the image lives higher) and returns the StartUp vector for it.
 */
#define TRAMPOLINE 0x8000ul
static inline u32 install_trampoline(void) {
  volatile u8 *dst = (volatile u8 *)TRAMPOLINE;
  for (u8 *p = ap_trampoline; p < ap_trampoline_end; p++) *dst++ = *p;
  return (u32)(TRAMPOLINE >> 12);
}

static inline u32 lapic_read(u32 reg) { return mmio_read32(LAPIC_BASE + reg); }
static inline void lapic_write(u32 reg, u32 v) { mmio_write32(LAPIC_BASE + reg, v); }
static inline u32 lapic_id(void) { return lapic_read(LAPIC_ID) >> 24; }
static inline void lapic_eoi(void) { lapic_write(LAPIC_EOI, 0); }
static inline void cpuid4(u32 leaf, u32 r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}
static inline void msr_write(u32 msr, u64 v) { __asm__ volatile("wrmsr" ::"c"(msr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory"); }

/*
 * Paravirtual EOI (KVM_FEATURE_PV_EOI), used as Linux uses it: where the
 * hypervisor's CPUID leaf 0x40000001 offers it, each CPU hands the
 * hypervisor a word of its own (its guest-physical address: the kit maps
 * memory 1:1); the EOI routine clears bit 0 of it if the hypervisor set it
 * and writes the EOI register only otherwise. Returns 1 if enabled.
 */
#define MSR_KVM_PV_EOI_EN 0x4b564d04
#define KVM_FEATURE_PV_EOI (1u << 6)
static inline int pv_eoi_enable(volatile u32 *word) {
  u32 r[4];
  cpuid4(0x40000000, r);
  /* "KVMKVMKVM\0\0\0" */
  if (r[1] != 0x4b4d564b || r[2] != 0x564b4d56 || r[3] != 0x4d || r[0] < 0x40000001) return 0;
  cpuid4(0x40000001, r);
  if (!(r[0] & KVM_FEATURE_PV_EOI)) return 0;
  *word = 0;
  msr_write(MSR_KVM_PV_EOI_EN, (u64)word | 1);
  return 1;
}
static inline void pv_eoi(volatile u32 *word) {
  /* One instruction, so no interrupt on this CPU splits the test from the clear. */
  u8 was;
  __asm__ volatile("btrl $0, %0; setc %1" : "+m"(*word), "=q"(was)::"memory", "cc");
  if (!was) lapic_eoi();
}

/* Software-enables the APIC with spurious vector 0xff. */
static inline void lapic_enable(void) { lapic_write(LAPIC_SVR, 0x1ff); }
static inline void send_ipi(u32 dest_apic, u32 icr_lo) {
  lapic_write(LAPIC_ICR_HI, dest_apic << 24);
  lapic_write(LAPIC_ICR_LO, icr_lo);
}

static inline void ioapic_write(u32 reg, u32 v) { mmio_write32(IOAPIC_BASE, reg); mmio_write32(IOAPIC_BASE + 0x10, v); }
static inline u32 ioapic_read(u32 reg) { mmio_write32(IOAPIC_BASE, reg); return mmio_read32(IOAPIC_BASE + 0x10); }
static inline void ioapic_route(u32 pin, u32 vector, u32 dest_apic, u32 flags) {
  ioapic_write(0x11 + pin * 2, dest_apic << 24);
  ioapic_write(0x10 + pin * 2, vector | flags);
}

static inline u32 atomic_inc(volatile u32 *p) { return __atomic_add_fetch(p, 1, __ATOMIC_SEQ_CST); }
static inline u32 atomic_load(volatile u32 *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }

static inline void putc(char c) {
  while (!(inb(COM1_LSR) & LSR_THRE)) pause();
  outb(COM1, (u8)c);
}
static inline void puts(const char *s) { while (*s) putc(*s++); }
static inline void putu(u64 v) {
  char buf[24];
  int n = 0;
  do { buf[n++] = (char)('0' + v % 10); v /= 10; } while (v);
  while (n) putc(buf[--n]);
}
static inline void debug_exit(u8 code) {
  outb(DEBUG_EXIT_PORT, code);
  for (;;) { cli(); hlt(); }
}
static inline void poweroff(void) {
  outw(ACPI_PM1A_CNT, ACPI_SLP_S5);
  for (;;) { cli(); hlt(); }
}
#endif
