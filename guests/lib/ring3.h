/*
 * Ring 3 for nodevisor's C guests: on hosts whose KVM emulates ring 0
 * (kvm_pvm), code in ring 3 runs natively, so benchmark guests run their
 * measured loops there. The VMM's boot page tables are user-accessible, so
 * all that is needed is a GDT with user segments, a TSS whose RSP0 takes
 * interrupts and exceptions back to a kernel stack, and an IRETQ.
 */
#ifndef NODEVISOR_RING3_H
#define NODEVISOR_RING3_H
#include "kit.h"

#define USER_DS 0x23 /* GDT entry 4, RPL 3 */
#define USER_CS 0x2b /* GDT entry 5, RPL 3 */
#define TSS_SEL 0x30 /* GDT entries 6-7 */
#define RFLAGS_IF 0x200

struct tss {
  u32 reserved0;
  u64 rsp0, rsp1, rsp2, reserved1, ist[7], reserved2;
  u16 reserved3, iomap;
} __attribute__((packed));

/* One vCPU's descriptor tables; must outlive ring 3. */
struct ring3_cpu {
  u64 gdt[8] __attribute__((aligned(16)));
  struct tss tss;
};

/* A flat 4 GiB code/data descriptor: access byte and flags nibble (G, D/B, L). */
static inline u64 ring3_descriptor(u64 access, u64 flags) {
  return 0xfffful | (access << 40) | (0xful << 48) | (flags << 52);
}

/*
 * Loads a GDT of the boot entries plus ring-3 data and code and a TSS whose
 * RSP0 is `kernel_stack_top`, with no I/O bitmap: ring 3 gets no ports.
 */
static inline void ring3_setup(struct ring3_cpu *c, u64 kernel_stack_top) {
  struct { u16 limit; u64 base; } __attribute__((packed)) gdtr;
  __asm__ volatile("sgdt %0" : "=m"(gdtr));
  const volatile u64 *boot = (const volatile u64 *)gdtr.base; /* the VMM's: null, code64, data, code32 */
  for (int i = 0; i < 4; i++) c->gdt[i] = boot[i];
  c->gdt[4] = ring3_descriptor(0xf3, 0xc); /* data, DPL 3 */
  c->gdt[5] = ring3_descriptor(0xfb, 0xa); /* code, DPL 3, long mode */
  u64 base = (u64)&c->tss, limit = sizeof(struct tss) - 1;
  c->gdt[6] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ul << 40) /* present, available 64-bit TSS */
            | (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
  c->gdt[7] = base >> 32;
  c->tss.rsp0 = kernel_stack_top;
  c->tss.iomap = sizeof(struct tss);
  gdtr.limit = sizeof(c->gdt) - 1;
  gdtr.base = (u64)c->gdt;
  __asm__ volatile("lgdt %0" : : "m"(gdtr) : "memory");
  __asm__ volatile("ltr %w0" : : "r"((u16)TSS_SEL) : "memory");
}

/* IRETQ into fn(arg) in ring 3 on the stack ending at `stack_top`, with `rflags` (RFLAGS_IF for interrupts). */
static inline void __attribute__((noreturn)) ring3_enter(void (*fn)(u64), u64 arg, u64 stack_top, u64 rflags) {
  u64 sp = stack_top - 8; /* as if just called: rsp = 8 mod 16 */
  __asm__ volatile(
      "mov %w[ds], %%ds\n\t"
      "mov %w[ds], %%es\n\t"
      "pushq %[ss]\n\t"
      "pushq %[sp]\n\t"
      "pushq %[flags]\n\t"
      "pushq %[cs]\n\t"
      "pushq %[ip]\n\t"
      "iretq"
      :
      : [ds] "r"((u16)USER_DS), [ss] "i"(USER_DS), [sp] "r"(sp), [flags] "r"(rflags | 2), [cs] "i"(USER_CS), [ip] "r"((u64)fn), "D"(arg)
      : "memory");
  __builtin_unreachable();
}
#endif
