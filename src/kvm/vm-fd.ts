import { native, k, layoutOf } from './addon.js';
import type { Kvm } from './kvm.js';

const REGION = layoutOf('kvm_userspace_memory_region');
const CLOCK = layoutOf('kvm_clock_data');
const CAP = layoutOf('kvm_enable_cap');
const MSI = layoutOf('kvm_msi');
const IRQ_LEVEL = layoutOf('kvm_irq_level');
const DIRTY = layoutOf('kvm_dirty_log');
const IOEVENTFD = layoutOf('kvm_ioeventfd');

/**
 * KVM_IOEVENTFD on VM fd `vmFd`: a guest write of `len` bytes (0: any
 * length) to MMIO address `addr` signals eventfd `fd` inside KVM, without
 * an exit to userspace; `assign: false` removes that registration. A free
 * function, because vCPU threads re-place them when the guest moves a BAR.
 */
export function setIoeventfd(vmFd: number, addr: number, len: number, fd: number, assign: boolean): void {
  const b = new DataView(new ArrayBuffer(IOEVENTFD.size));
  b.setBigUint64(IOEVENTFD.addr!, BigInt(addr), true);
  b.setUint32(IOEVENTFD.len!, len, true);
  b.setInt32(IOEVENTFD.fd!, fd, true);
  b.setUint32(IOEVENTFD.flags!, assign ? 0 : k('KVM_IOEVENTFD_FLAG_DEASSIGN'), true);
  native.ioctl(vmFd, k('KVM_IOEVENTFD'), b);
}

/**
 * KVM_SET_USER_MEMORY_REGION on VM fd `vmFd` (size 0 deletes the slot). A
 * free function, because vCPU threads re-map firmware memory when the guest
 * reprograms the chipset's PAM registers.
 */
export function setMemoryRegion(vmFd: number, slot: number, gpa: number, size: number, hostAddress: bigint, flags = 0): void {
  const b = new DataView(new ArrayBuffer(REGION.size));
  b.setUint32(REGION.slot!, slot, true);
  b.setUint32(REGION.flags!, flags, true);
  b.setBigUint64(REGION.guest_phys_addr!, BigInt(gpa), true);
  b.setBigUint64(REGION.memory_size!, BigInt(size), true);
  b.setBigUint64(REGION.userspace_addr!, hostAddress, true);
  native.ioctl(vmFd, k('KVM_SET_USER_MEMORY_REGION'), b);
}

/** A KVM VM file descriptor: memory slots, irqchip set-up, VM-wide capabilities. */
export class KvmVm {
  constructor(
    readonly fd: number,
    readonly kvm: Kvm,
  ) {}

  close(): void {
    native.close(this.fd);
  }

  /** KVM_CHECK_EXTENSION on the VM fd (some capabilities are per VM). */
  check(cap: string): number {
    return native.ioctl(this.fd, k('KVM_CHECK_EXTENSION'), k(cap));
  }

  setUserMemoryRegion(slot: number, gpa: number, size: number, hostAddress: bigint, flags = 0): void {
    setMemoryRegion(this.fd, slot, gpa, size, hostAddress, flags);
  }

  /** KVM_GET_CLOCK: the guest's kvmclock, in ns. */
  getClock(): bigint {
    const b = new DataView(new ArrayBuffer(CLOCK.size));
    native.ioctl(this.fd, k('KVM_GET_CLOCK'), b);
    return b.getBigUint64(CLOCK.clock!, true);
  }

  /** KVM_SET_CLOCK: sets the guest's kvmclock to `ns` (e.g. where it stood when the VM was paused). */
  setClock(ns: bigint): void {
    const b = new DataView(new ArrayBuffer(CLOCK.size));
    b.setBigUint64(CLOCK.clock!, ns, true);
    native.ioctl(this.fd, k('KVM_SET_CLOCK'), b);
  }

  setTssAddr(gpa: number): void {
    native.ioctl(this.fd, k('KVM_SET_TSS_ADDR'), gpa);
  }

  setIdentityMapAddr(gpa: number): void {
    const b = new DataView(new ArrayBuffer(8));
    b.setBigUint64(0, BigInt(gpa), true);
    native.ioctl(this.fd, k('KVM_SET_IDENTITY_MAP_ADDR'), b);
  }

  enableCap(cap: string, ...args: Array<number | bigint>): void {
    const b = new DataView(new ArrayBuffer(CAP.size));
    b.setUint32(CAP.cap!, k(cap), true);
    args.forEach((a, i) => b.setBigUint64(CAP.args! + i * 8, BigInt(a), true));
    native.ioctl(this.fd, k('KVM_ENABLE_CAP'), b);
  }

  createIrqchip(): void {
    native.ioctl(this.fd, k('KVM_CREATE_IRQCHIP'), 0);
  }

  /** KVM_IRQ_LINE: drives an in-kernel irqchip input (kernel mode only). */
  irqLine(gsi: number, level: boolean): void {
    const b = new DataView(new ArrayBuffer(IRQ_LEVEL.size));
    b.setUint32(IRQ_LEVEL.irq!, gsi, true);
    b.setUint32(IRQ_LEVEL.level!, level ? 1 : 0, true);
    native.ioctl(this.fd, k('KVM_IRQ_LINE'), b);
  }

  /** KVM_SIGNAL_MSI: delivers a message to the in-kernel LAPICs (split/kernel modes). */
  signalMsi(addressLo: number, addressHi: number, data: number): number {
    const b = new DataView(new ArrayBuffer(MSI.size));
    b.setUint32(MSI.address_lo!, addressLo >>> 0, true);
    b.setUint32(MSI.address_hi!, addressHi >>> 0, true);
    b.setUint32(MSI.data!, data >>> 0, true);
    return native.ioctl(this.fd, k('KVM_SIGNAL_MSI'), b);
  }

  createVcpuFd(id: number): number {
    return native.ioctl(this.fd, k('KVM_CREATE_VCPU'), id);
  }

  /** KVM_GET_DIRTY_LOG for `slot` into `bitmap` (one bit per 4 KiB page). */
  getDirtyLog(slot: number, bitmap: BigUint64Array): void {
    const b = new DataView(new ArrayBuffer(DIRTY.size));
    b.setUint32(DIRTY.slot!, slot, true);
    b.setBigUint64(DIRTY.dirty_bitmap!, native.addressOf(bitmap), true);
    native.ioctl(this.fd, k('KVM_GET_DIRTY_LOG'), b);
  }
}
