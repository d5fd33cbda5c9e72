import { native } from '../kvm/addon.js';
import { NodevisorError, errnoCode } from '../kvm/errors.js';
import { ramRanges, MIN_MEMORY, MAX_MEMORY, formatSize } from './layout.js';
import type { MemoryRegion } from './guest-memory.js';

export interface AllocatedMemory {
  /** The memfd all regions map (kept open for the VM's lifetime). */
  fd: number;
  regions: Array<MemoryRegion & { size: number; hostAddress: bigint }>;
}

/**
 * Creates guest RAM: one memfd for all of it, mapped once per region as a
 * SharedArrayBuffer whose host address KVM's memory slot will point at.
 */
export function allocateGuestRam(size: number): AllocatedMemory {
  if (!Number.isSafeInteger(size) || size < MIN_MEMORY || size > MAX_MEMORY) {
    throw new NodevisorError('EMEMORY', `guest memory must be between ${formatSize(MIN_MEMORY)} and ${formatSize(MAX_MEMORY)} (got ${formatSize(size)})`);
  }
  if (size % 4096 !== 0) throw new NodevisorError('EMEMORY', `guest memory must be a whole number of 4 KiB pages (got ${size} bytes)`);
  let fd = -1;
  try {
    fd = native.memfdCreate('nodevisor-ram', size);
    let offset = 0;
    const regions = ramRanges(size).map((r) => {
      const { buffer, address } = native.mapShared(fd, offset, r.size);
      offset += r.size;
      return { gpa: r.gpa, size: r.size, buffer, hostAddress: address };
    });
    return { fd, regions };
  } catch (e) {
    if (fd >= 0) native.close(fd);
    // EFBIG: a file size limit (ulimit -f) below the RAM size applies to the memfd too.
    const hint = errnoCode(e) === 'EFBIG' ? ': the file size limit (ulimit -f) is smaller than that' : errnoCode(e) === 'ENOMEM' ? ': the host is out of memory' : '';
    throw new NodevisorError('EMEMORY', `cannot create ${formatSize(size)} of guest RAM (${(e as Error).message})${hint}`, { cause: e });
  }
}
