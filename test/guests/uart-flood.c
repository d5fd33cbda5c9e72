/*
 * Writes numbered lines to COM1 for ever, polling THRE before each byte as
 * a serial console does, and counts the bytes it wrote at RESULTS[0]. A
 * host that stops taking output (a stalled reader) leaves THRE clear, and
 * the count stops.
 */
#include "kit.h"
#define R ((volatile u32 *)RESULTS)

void isr(u32 vector) { (void)vector; lapic_eoi(); }
void ap_main(u32 apic_id) { (void)apic_id; }

static void out(char c) {
  putc(c);
  R[0]++;
}

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) for (;;) hlt();
  for (u64 line = 0;; line++) {
    char digits[24];
    int n = 0;
    for (const char *s = "nodevisor uart flood, line "; *s; s++) out(*s);
    u64 v = line;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) out(digits[--n]);
    out('\n');
  }
}
