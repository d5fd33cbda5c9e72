import { existsSync } from 'node:fs';
import { native, k, layoutOf } from './addon.js';
import { NodevisorError, kvmOpenError, errnoCode } from './errors.js';
import { cpuidBuffer, decodeCpuid, type CpuidEntry } from './structs.js';
import { KvmVm } from './vm-fd.js';

/** An open /dev/kvm: capabilities and VM creation. */
export class Kvm {
  private constructor(
    readonly fd: number,
    readonly path: string,
  ) {}

  static open(path = '/dev/kvm'): Kvm {
    let fd: number;
    try {
      fd = native.open(path, true);
    } catch (e) {
      throw kvmOpenError(path, e);
    }
    const kvm = new Kvm(fd, path);
    let version: number;
    try {
      version = native.ioctl(fd, k('KVM_GET_API_VERSION'));
    } catch (e) {
      kvm.close();
      throw new NodevisorError('EKVM', `${path} is not the KVM device (it does not answer KVM_GET_API_VERSION: ${(e as Error).message}): use /dev/kvm`, { cause: e });
    }
    if (version !== 12) {
      kvm.close();
      throw new NodevisorError('EKVM', `${path} speaks KVM API version ${version}; nodevisor needs version 12`);
    }
    return kvm;
  }

  close(): void {
    native.close(this.fd);
  }

  /** KVM_CHECK_EXTENSION: 0 if absent, else the capability's value. */
  check(cap: string): number {
    return native.ioctl(this.fd, k('KVM_CHECK_EXTENSION'), k(cap));
  }

  get maxVcpus(): number {
    return this.check('KVM_CAP_MAX_VCPUS') || this.check('KVM_CAP_NR_VCPUS') || 4;
  }

  /** vCPU IDs (KVM_CREATE_VCPU's argument) must be below this; without the capability, below the vCPU limit. */
  get maxVcpuId(): number {
    return this.check('KVM_CAP_MAX_VCPU_ID') || this.maxVcpus;
  }

  get vcpuMmapSize(): number {
    return native.ioctl(this.fd, k('KVM_GET_VCPU_MMAP_SIZE'));
  }

  /** KVM_GET_SUPPORTED_CPUID, growing the buffer until it fits. */
  supportedCpuid(): CpuidEntry[] {
    for (let cap = 64; cap <= 4096; cap *= 2) {
      const b = cpuidBuffer(cap);
      try {
        native.ioctl(this.fd, k('KVM_GET_SUPPORTED_CPUID'), b);
        return decodeCpuid(b);
      } catch (e) {
        if (errnoCode(e) !== 'E2BIG') throw e;
      }
    }
    throw new Error('KVM_GET_SUPPORTED_CPUID: more than 4096 entries');
  }

  /** KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and restore for a vCPU. */
  msrIndexList(): number[] {
    for (let cap = 256; cap <= 16384; cap *= 2) {
      const b = new Uint32Array(1 + cap);
      b[0] = cap;
      try {
        native.ioctl(this.fd, k('KVM_GET_MSR_INDEX_LIST'), b);
        return Array.from(b.subarray(1, 1 + b[0]!));
      } catch (e) {
        if (errnoCode(e) !== 'E2BIG') throw e;
      }
    }
    throw new Error('KVM_GET_MSR_INDEX_LIST: more than 16384 MSRs');
  }

  /** True when the host is a software-virtualising KVM (kvm_pvm; see host-kvm notes). */
  static isSoftwareVirtualised(): boolean {
    return existsSync('/sys/module/kvm_pvm');
  }

  createVm(): KvmVm {
    const fd = native.ioctl(this.fd, k('KVM_CREATE_VM'), 0);
    return new KvmVm(fd, this);
  }
}

export const kvmRunSize = (): number => layoutOf('kvm_run').size;
