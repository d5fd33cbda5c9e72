import { NodevisorError } from '../kvm/errors.js';
import type { KvmVm } from '../kvm/vm-fd.js';
import type { AllocatedMemory } from '../memory/allocate.js';
import { FwCfg, type FwCfgState } from '../devices/fw-cfg.js';
import { PciCfg, PciConfigSpace } from '../devices/pci-config.js';
import type { FirmwareImage } from '../boot/firmware.js';
import { firmwareItems, virtioBlkBootPath } from '../boot/firmware-config.js';
import type { VirtioPlan } from './virtio-devices.js';
import { mapFirmwareMemory, type FirmwareMemory, type PamSpec } from './firmware-memory.js';
import type { PlatformDescription } from '../boot/acpi/tables.js';
import { PlatformPorts } from './platform.js';

export interface FirmwareBootOptions {
  readonly image: FirmwareImage;
  readonly vm: KvmVm;
  readonly ram: AllocatedMemory;
  readonly vcpus: number;
  /** Each vCPU's APIC ID (the topology's), for the MADT. */
  readonly apicIds: readonly number[];
  readonly virtio: VirtioPlan;
  /** What the firmware tables say of the platform's devices (platform.ts). */
  readonly platform: PlatformDescription;
  /** Disk positions (0-based, in `disks` order) the firmware tries first, in order; the rest follow in `disks` order. */
  readonly bootOrder?: readonly number[];
  readonly bootFailWaitMs?: number;
  /** Restoring a snapshot: guest RAM and the PCI functions are the snapshot's, not a machine's just powered on. */
  readonly restored?: boolean;
}

export interface FirmwareBoot {
  readonly memory: FirmwareMemory;
  /** What a snapshot records to give the firmware again: its image and boot settings. */
  readonly settings: { readonly image: Uint8Array; readonly bootOrder?: readonly number[]; readonly bootFailWaitMs?: number };
  readonly platform: { fwCfg: FwCfgState; pam: PamSpec };
}

/** After "No bootable device", SeaBIOS waits this long, then resets (and nodevisor stops). */
export const DEFAULT_BOOT_FAIL_WAIT_MS = 0;

/**
 * A VM that starts in its firmware: the image mapped (firmware-memory.ts),
 * PCI functions left unprogrammed for the firmware to enumerate and assign,
 * and fw_cfg filled with what the firmware asks for. The vCPUs start in
 * their reset state: the BSP at the reset vector, the APs waiting for
 * INIT-SIPI.
 */
export function planFirmwareBoot(o: FirmwareBootOptions): FirmwareBoot {
  const disks = o.virtio.specs.filter((s) => s.spec.model === 'blk');
  const order = o.bootOrder ?? [];
  for (const i of order) {
    if (!Number.isInteger(i) || i < 0 || i >= disks.length) {
      throw new NodevisorError('EBOOTORDER', `boot order names disk ${i + 1}, but there ${disks.length === 1 ? 'is 1 disk' : `are ${disks.length} disks`} (count from 1 in --disk order)`);
    }
  }
  const ordered = [...new Set([...order, ...disks.keys()])].map((i) => disks[i]!);
  // As on a machine just powered on: BARs unassigned, decoding off.
  for (const s of o.restored ? [] : o.virtio.specs) {
    const config = new PciConfigSpace(s.transport.config);
    config.configWrite(PciCfg.Command, 2, 0);
    config.configWrite(PciCfg.Bar0, 4, 0);
    config.configWrite(PciCfg.InterruptLine, 1, 0);
  }
  const memory = mapFirmwareMemory(o.vm, o.ram, o.image, { shadow: !o.restored });
  const items = firmwareItems({
    ramSize: o.ram.regions.reduce((n, r) => n + r.size, 0),
    cpus: o.vcpus,
    acpi: { ...o.platform, cpus: o.vcpus, apicIds: o.apicIds, pciIntx: o.virtio.pciIntx },
    bootOrder: ordered.map((s) => virtioBlkBootPath(s.device)),
    serialConsole: PlatformPorts.com1,
    bootFailWaitMs: o.bootFailWaitMs ?? DEFAULT_BOOT_FAIL_WAIT_MS,
  });
  const settings = { image: o.image.bytes, ...(o.bootOrder ? { bootOrder: o.bootOrder } : {}), ...(o.bootFailWaitMs !== undefined ? { bootFailWaitMs: o.bootFailWaitMs } : {}) };
  return { memory, settings, platform: { fwCfg: FwCfg.allocate(items), pam: memory.pam } };
}
