import type { Writable, Readable } from 'node:stream';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { TestKnobs } from '../vcpu/test-knobs.js';
import type { TopologySpec } from '../vcpu/topology.js';
import type { DiskOptions } from './disk-images.js';
import type { ConsoleKind } from './guest-console.js';
import type { NetOptions } from './net-options.js';
import type { FlatImage } from '../boot/flat-image.js';

export type { FlatImage } from '../boot/flat-image.js';

export interface VmOptions {
  /** Number of vCPUs (default 1, or the product of `topology`). */
  vcpus?: number;
  /**
   * How the vCPUs are grouped: sockets, cores per socket, threads per core
   * (default one socket of `vcpus` cores). Left-out sockets and threads are
   * 1, left-out cores what `vcpus` leaves; the product must equal `vcpus`.
   */
  topology?: TopologySpec;
  /** Guest RAM in bytes, or a size string like "512M" (default 256M). */
  memory?: number | string;
  /** Interrupt controller placement (default "user"). */
  irqchip?: IrqchipMode;
  /** A flat binary to boot; default the built-in demo guest (ignored when `kernel` is set). */
  image?: FlatImage;
  /** A kernel to boot: a Linux bzImage (or an x86-64 vmlinux ELF), or a multiboot kernel (found by its header), path or bytes. */
  kernel?: string | Uint8Array;
  /** An initramfs for `kernel`, path or bytes (for a multiboot kernel: its first module). */
  initrd?: string | Uint8Array;
  /**
   * Multiboot modules for a multiboot `kernel`, after `initrd`; each one's
   * string is `args` when given, else its path.
   */
  modules?: ReadonlyArray<{ source: string | Uint8Array; args?: string }>;
  /**
   * Boot through PC firmware instead of loading a kernel: a BIOS image
   * (path or bytes), or true for Debian's SeaBIOS
   * (/usr/share/seabios/bios-256k.bin). The firmware boots the disks.
   */
  bios?: string | Uint8Array | true;
  /** With `bios`: disk positions (0-based, `disks` order) to boot from first; the others follow in order. */
  bootOrder?: readonly number[];
  /** With `bios`: after "No bootable device", how long the firmware waits before it resets (default 0: nodevisor stops at once). */
  bootFailWaitMs?: number;
  /** The kernel command line (default "console=ttyS0", or "earlyprintk=serial console=hvc0" with `console: 'virtio'`). */
  cmdline?: string;
  /** Where guest console output goes besides the 'console' event (default: nowhere). */
  consoleOutput?: Writable | null;
  /** Bytes from this stream are typed into the guest console. */
  consoleInput?: Readable | null;
  /** Path of the KVM device (default /dev/kvm). */
  kvmPath?: string;
  /** Raw disk images, each a virtio-blk PCI device (vda, vdb, ...). */
  disks?: DiskOptions[];
  /**
   * Network cards, each a virtio-net PCI device (eth0, eth1, ... in Linux):
   * `{ kind: 'tap', name, mac?, queues? }` on a host tap device, or
   * `{ kind: 'user', mac?, hostfwd? }` through passt (rootless).
   */
  nets?: NetOptions[];
  /** A virtio-rng PCI device fed from the host's CSPRNG. */
  rng?: boolean;
  /**
   * The guest's console (default 'serial': the 16550 UART, ttyS0).
   * 'virtio' adds a virtio-console PCI device (hvc0) that takes the console
   * input; output from both devices is shown.
   */
  console?: ConsoleKind;
  /**
   * Let KVM signal virtio-blk queue notifications through ioeventfds, so the
   * guest's notify write does not exit to userspace (default true where
   * KVM supports it; false forces the exit path, e.g. to compare).
   */
  ioeventfd?: boolean;
  /**
   * Offer the guest paravirtual EOI with the userspace LAPIC (irqchip
   * `user`): KVM's PV_EOI CPUID bit and MSR, which let a guest skip most
   * EOI register writes, an exit each. Default true where KVM passes the
   * guest's write of that MSR to the VMM; false hides it, e.g. to compare.
   * The split and kernel modes leave it to KVM's LAPIC.
   */
  pvEoi?: boolean;
  /**
   * How long a halted vCPU polls for a wake-up before its thread sleeps, at
   * most, in ns (irqchip `user`, whose HLT the VMM handles; KVM's LAPIC
   * polls by its own `halt_poll_ns`). The window adapts per vCPU as KVM's
   * does: it grows while wake-ups come soon after a halt and shrinks to 0
   * on a vCPU that idles, so an idle guest does not spin. Default 200,000
   * (KVM's) while there are fewer vCPUs than host CPUs, else 0: a vCPU that
   * polls takes a core another thread of the VM may need. 0 turns it off.
   */
  haltPollNs?: number;
  /**
   * How long an idle virtio-blk I/O thread polls its queues for a new
   * request before it sleeps in poll(2), at most, in ns: a request that
   * comes while it polls skips the thread's wake-up. Adapts per thread as
   * `haltPollNs` does, so a disk with nothing to do costs no CPU. Default
   * 32,768 (QEMU's iothread poll-max-ns) while there are fewer vCPUs than
   * host CPUs, else 0. 0 turns it off.
   */
  ioPollNs?: number;
  /**
   * Count exits by port, MMIO address and reason, and time the VMM's
   * handling of port and MMIO exits (`vm.exitProfile()`, the API's
   * `exit-profile`, `nodevisor run --exit-profile`). Default false: it costs
   * a little on every exit.
   */
  exitProfile?: boolean;
  /**
   * I/O threads per virtio-blk disk (1-16; default: one fewer than the
   * host's CPUs, at least 1 and at most 4). Queue notifications are spread
   * over them, and while requests are slow (over ~100 us) idle ones help
   * with a queue's backlog, so that many requests of a disk run at once.
   */
  ioThreads?: number;
  /**
   * Continue a snapshot taken with `vm.snapshot(dir)` (`nodevisor run
   * --restore DIR`): the machine (vCPUs, RAM, irqchip, devices, disks) is
   * the snapshot's; options that would change it are refused.
   */
  restore?: string;
  /**
   * Start with every vCPU held before its first instruction, as if paused
   * (`resume()` lets them run): for a debugger that attaches first.
   */
  startPaused?: boolean;
  /** Test-only slow-downs that benchmark tests use to prove regressions are caught. */
  testKnobs?: TestKnobs;
}

export const DEFAULT_MEMORY = '256M';
export const IRQCHIP_MODES: readonly IrqchipMode[] = ['user', 'split', 'kernel'];
