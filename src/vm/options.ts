import type { Writable, Readable } from 'node:stream';
import type { EntryMode } from '../vcpu/boot-state.js';
import type { IrqchipMode } from '../vcpu/cpuid.js';
import type { TestKnobs } from '../vcpu/test-knobs.js';
import type { DiskOptions } from './disk-images.js';
import type { ConsoleKind } from './guest-console.js';
import type { NetOptions } from './net-options.js';

/** A flat binary the VMM loads and enters directly (our test and demo guests). */
export interface FlatImage {
  /** Path of the binary, or its bytes. */
  source: string | Uint8Array;
  mode: EntryMode;
  /** Guest-physical load address; default 0x100000 (0x8000 in real mode). */
  loadAddress?: number;
  /** Entry point; default the load address. */
  entry?: number;
  /**
   * 'all' (default): every vCPU enters at `entry` with its index in rdi.
   * 'sipi': only vCPU 0 does; the others wait for INIT-SIPI-SIPI, as under
   * firmware that leaves APs to the OS.
   */
  startup?: 'all' | 'sipi';
}

export interface VmOptions {
  /** Number of vCPUs (default 1). */
  vcpus?: number;
  /** Guest RAM in bytes, or a size string like "512M" (default 256M). */
  memory?: number | string;
  /** Interrupt controller placement (default "user"). */
  irqchip?: IrqchipMode;
  /** A flat binary to boot; default the built-in demo guest (ignored when `kernel` is set). */
  image?: FlatImage;
  /** A Linux kernel to boot: a bzImage (or an x86-64 vmlinux ELF), path or bytes. */
  kernel?: string | Uint8Array;
  /** An initramfs for `kernel`, path or bytes. */
  initrd?: string | Uint8Array;
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
   * I/O threads per virtio-blk disk (1-16; default: one fewer than the
   * host's CPUs, at least 1 and at most 4). Queue notifications are spread
   * over them, and while requests are slow (over ~100 us) idle ones help
   * with a queue's backlog, so that many requests of a disk run at once.
   */
  ioThreads?: number;
  /** Test-only slow-downs that benchmark tests use to prove regressions are caught. */
  testKnobs?: TestKnobs;
}

export const DEFAULT_MEMORY = '256M';
export const IRQCHIP_MODES: readonly IrqchipMode[] = ['user', 'split', 'kernel'];
