/**
 * What a Linux guest needs on a software-virtualising KVM host (kvm_pvm:
 * ring 0 runs in KVM's instruction emulator), where CPUID cannot hide
 * everything the emulator fails on. Measured; see the shared host-kvm notes.
 */
export const SOFTWARE_VIRT_CMDLINE = [
  'noxsave', // xrstor in FPU init is an emulation failure
  // clac/stac, the popcnt hweight alternative, rdseed; ssse3 because in-kernel
  // SIMD users (crypto self-tests) run kernel_fpu_begin's ldmxcsr, which the
  // emulator cannot execute
  'clearcpuid=smap,popcnt,rdseed,ssse3',
  'nofsgsbase',
  'mitigations=off',
  'rodata=off', // ~1.3 s of emulated page-table work
  'percpu_alloc=page',
  'cryptomgr.notests',
] as const;

export const DEFAULT_CMDLINE = 'console=ttyS0';

/**
 * The default command line for a guest whose console is `kind`. For
 * virtio, Linux's hvc0 exists only once the PCI driver binds, late in boot;
 * earlier messages go out through the UART as a boot console, which the
 * kernel retires at that point, so each line is shown once.
 */
export function defaultCmdline(kind: 'serial' | 'virtio'): string {
  return kind === 'virtio' ? 'earlyprintk=serial console=hvc0' : DEFAULT_CMDLINE;
}

/** The command line the guest gets: the user's (or the default) plus what this host needs. */
export function guestCmdline(user: string | undefined, softwareVirt: boolean): string {
  const base = (user ?? DEFAULT_CMDLINE).trim();
  if (!softwareVirt) return base;
  const have = new Set(base.split(/\s+/).map((w) => w.split('=')[0]));
  const extra = SOFTWARE_VIRT_CMDLINE.filter((o) => !have.has(o.split('=')[0]!));
  return [base, ...extra].filter(Boolean).join(' ');
}
