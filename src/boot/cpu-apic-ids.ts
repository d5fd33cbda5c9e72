/**
 * The APIC ID of each processor that firmware tables (MADT, MP table)
 * list. The VM's topology decides them (vcpu/topology.ts); boot code only
 * checks and writes them, in vCPU order, the BSP first.
 */

/** `apicIds` checked against `cpus`, or vCPU i -> APIC ID i when left out. */
export function cpuApicIds(cpus: number, apicIds?: readonly number[]): readonly number[] {
  if (apicIds === undefined) return Array.from({ length: cpus }, (_, i) => i);
  if (apicIds.length !== cpus) throw new RangeError(`${apicIds.length} APIC IDs given for ${cpus} CPUs`);
  const seen = new Set<number>();
  for (const id of apicIds) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe || seen.has(id)) throw new RangeError(`invalid or duplicate APIC ID ${id}`);
    seen.add(id);
  }
  return apicIds;
}
