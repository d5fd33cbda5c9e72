import { native, k, layoutOf } from './addon.js';
import {
  REGS_SIZE, SREGS_SIZE, decodeRegs, encodeRegs, decodeSregs, encodeSregs,
  encodeCpuid, encodeMsrs, decodeMsrs, type Regs, type Sregs, type CpuidEntry,
} from './structs.js';

const EVENTS = layoutOf('kvm_vcpu_events');
const FPU = layoutOf('kvm_fpu');
const DEBUG = layoutOf('kvm_guest_debug');
const ATTR = layoutOf('kvm_device_attr');

/** vCPU state structs saved whole, and their get/set ioctls. */
const RAW_IOCTLS = {
  kvm_xsave: ['KVM_GET_XSAVE', 'KVM_SET_XSAVE'],
  kvm_xcrs: ['KVM_GET_XCRS', 'KVM_SET_XCRS'],
  kvm_debugregs: ['KVM_GET_DEBUGREGS', 'KVM_SET_DEBUGREGS'],
  kvm_lapic_state: ['KVM_GET_LAPIC', 'KVM_SET_LAPIC'],
  kvm_fpu: ['KVM_GET_FPU', 'KVM_SET_FPU'],
  kvm_vcpu_events: ['KVM_GET_VCPU_EVENTS', 'KVM_SET_VCPU_EVENTS'],
} as const;
export type RawStruct = keyof typeof RAW_IOCTLS;

/**
 * A vCPU file descriptor's ioctls. Each costs ~10 us on the development
 * hosts, so none of these belong on the exit path; the run loop uses the
 * kvm_run page and KVM_CAP_SYNC_REGS instead.
 */
export class KvmVcpu {
  constructor(readonly fd: number) {}

  getRegs(): Regs {
    const b = new Uint8Array(REGS_SIZE);
    native.ioctl(this.fd, k('KVM_GET_REGS'), b);
    return decodeRegs(new DataView(b.buffer));
  }

  setRegs(regs: Regs): void {
    const b = new Uint8Array(REGS_SIZE);
    encodeRegs(new DataView(b.buffer), regs);
    native.ioctl(this.fd, k('KVM_SET_REGS'), b);
  }

  getSregs(): Sregs {
    const b = new Uint8Array(SREGS_SIZE);
    native.ioctl(this.fd, k('KVM_GET_SREGS'), b);
    return decodeSregs(new DataView(b.buffer));
  }

  setSregs(s: Sregs): void {
    const b = new Uint8Array(SREGS_SIZE);
    encodeSregs(new DataView(b.buffer), s);
    native.ioctl(this.fd, k('KVM_SET_SREGS'), b);
  }

  /** Raw struct kvm_fpu; callers patch fields by `layoutOf('kvm_fpu')`. */
  getFpu(): DataView {
    const b = new DataView(new ArrayBuffer(FPU.size));
    native.ioctl(this.fd, k('KVM_GET_FPU'), b);
    return b;
  }

  setFpu(fpu: DataView): void {
    native.ioctl(this.fd, k('KVM_SET_FPU'), fpu);
  }

  /** Resets x87/SSE state to the power-on values (FCW 0x37f, MXCSR 0x1f80). */
  resetFpu(): void {
    const b = new DataView(new ArrayBuffer(FPU.size));
    b.setUint16(FPU.fcw!, 0x37f, true);
    b.setUint32(FPU.mxcsr!, 0x1f80, true);
    this.setFpu(b);
  }

  getMsrs(indices: readonly number[]): Array<[number, bigint]> {
    const b = encodeMsrs(indices.map((i) => [i, 0n] as const));
    const n = native.ioctl(this.fd, k('KVM_GET_MSRS'), b);
    return decodeMsrs(b, n);
  }

  /** Returns how many MSRs KVM accepted (it stops at the first it rejects). */
  setMsrs(entries: ReadonlyArray<readonly [number, bigint]>): number {
    return native.ioctl(this.fd, k('KVM_SET_MSRS'), encodeMsrs(entries));
  }

  setCpuid(entries: readonly CpuidEntry[]): void {
    native.ioctl(this.fd, k('KVM_SET_CPUID2'), encodeCpuid(entries));
  }

  /** Raw struct kvm_vcpu_events; see `layoutOf('kvm_vcpu_events')`. */
  getEvents(): DataView {
    const b = new DataView(new ArrayBuffer(EVENTS.size));
    native.ioctl(this.fd, k('KVM_GET_VCPU_EVENTS'), b);
    return b;
  }

  setEvents(events: DataView): void {
    native.ioctl(this.fd, k('KVM_SET_VCPU_EVENTS'), events);
  }

  getMpState(): number {
    const b = new Uint32Array(1);
    native.ioctl(this.fd, k('KVM_GET_MP_STATE'), b);
    return b[0]!;
  }

  setMpState(state: number): void {
    native.ioctl(this.fd, k('KVM_SET_MP_STATE'), new Uint32Array([state]));
  }

  /** KVM_INTERRUPT: queues external interrupt `vector` (userspace irqchip only). */
  interrupt(vector: number): void {
    native.ioctl(this.fd, k('KVM_INTERRUPT'), new Uint32Array([vector]));
  }

  nmi(): void {
    native.ioctl(this.fd, k('KVM_NMI'), 0);
  }

  tscKhz(): number {
    return native.ioctl(this.fd, k('KVM_GET_TSC_KHZ'), 0);
  }

  /**
   * The guest TSC's offset from the host's (KVM_VCPU_TSC_OFFSET, Linux
   * 5.16+), or undefined where KVM does not expose it.
   */
  tscOffset(): bigint | undefined {
    const value = new BigUint64Array(1);
    if (!this.tscAttr(k('KVM_HAS_DEVICE_ATTR'))) return undefined;
    this.tscAttr(k('KVM_GET_DEVICE_ATTR'), value);
    return value[0]!;
  }

  setTscOffset(offset: bigint): void {
    this.tscAttr(k('KVM_SET_DEVICE_ATTR'), new BigUint64Array([BigInt.asUintN(64, offset)]));
  }

  private tscAttr(request: number, value?: BigUint64Array): boolean {
    const b = new DataView(new ArrayBuffer(ATTR.size));
    b.setUint32(ATTR.group!, k('KVM_VCPU_TSC_CTRL'), true);
    b.setBigUint64(ATTR.attr!, BigInt(k('KVM_VCPU_TSC_OFFSET')), true);
    if (value) b.setBigUint64(ATTR.addr!, native.addressOf(value), true);
    try {
      native.ioctl(this.fd, request, b);
      return true;
    } catch (e) {
      if (request === k('KVM_HAS_DEVICE_ATTR')) return false;
      throw e;
    }
  }

  /**
   * A raw struct the kernel defines (kvm_xsave, kvm_xcrs, kvm_debugregs,
   * kvm_lapic_state), read with `get` into a buffer of the struct's size.
   */
  getRaw(struct: RawStruct): Uint8Array {
    const b = new Uint8Array(layoutOf(struct).size);
    native.ioctl(this.fd, k(RAW_IOCTLS[struct][0]), b);
    return b;
  }

  setRaw(struct: RawStruct, bytes: Uint8Array): void {
    if (bytes.length !== layoutOf(struct).size) throw new RangeError(`${struct}: ${bytes.length} bytes, the kernel's struct has ${layoutOf(struct).size}`);
    native.ioctl(this.fd, k(RAW_IOCTLS[struct][1]), Uint8Array.from(bytes));
  }

  /** KVM_SET_GUEST_DEBUG with `control` flags and up to 8 debug registers. */
  setGuestDebug(control: number, debugRegs: readonly bigint[] = []): void {
    const b = new DataView(new ArrayBuffer(DEBUG.size));
    b.setUint32(DEBUG.control!, control, true);
    debugRegs.forEach((r, i) => b.setBigUint64(DEBUG.debugreg! + i * 8, r, true));
    native.ioctl(this.fd, k('KVM_SET_GUEST_DEBUG'), b);
  }
}

const TRANSLATION_SIZE = 24; // struct kvm_translation: u64 linear, u64 physical, u8 valid, writeable, usermode, pad[5]

/** KVM_TRANSLATE: guest-virtual to guest-physical under the vCPU's current paging, or null. */
export function translate(vcpu: KvmVcpu, linear: bigint): bigint | null {
  const b = new DataView(new ArrayBuffer(TRANSLATION_SIZE));
  b.setBigUint64(0, linear, true);
  native.ioctl(vcpu.fd, k('KVM_TRANSLATE'), b);
  return b.getUint8(16) ? b.getBigUint64(8, true) : null;
}
