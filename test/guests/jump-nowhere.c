/*
 * Jumps to TARGET, a guest-physical address with no RAM behind it (the
 * VMM's boot page tables identity-map the first 4 GiB): the VMM must stop
 * the VM saying that the guest tried to execute there.
 */
#include "kit.h"
#ifndef TARGET
#error "build with -DTARGET=<address>"
#endif

void isr(u32 vector) { (void)vector; lapic_eoi(); }
void ap_main(u32 apic_id) { (void)apic_id; }

void guest_main(u32 cpu, u32 ncpus) {
  (void)ncpus;
  if (cpu != 0) return;
  ((void (*)(void))TARGET)();
  debug_exit(0x11);
}
