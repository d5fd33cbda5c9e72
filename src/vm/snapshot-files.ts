/**
 * Writing and reading a snapshot directory (layout in snapshot-manifest.ts).
 * Every file is written to a temporary name and renamed into place, and
 * the manifest last, so a snapshot interrupted half way is never taken
 * for a whole one; and a VM restored from an earlier snapshot in the same
 * directory keeps its copy-on-write mapping of the old RAM file.
 * Reading checks everything before the caller changes anything.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SavedState } from '../sync/state-layout.js';
import type { VcpuArchState } from '../vcpu/arch-state.js';
import { checkManifest, SnapshotError, type SnapshotManifest } from './snapshot-manifest.js';

export const RAM_FILE = 'ram.img';
/** The firmware image of a VM booted through firmware (its ROM: the guest cannot change it). */
export const FIRMWARE_FILE = 'firmware.bin';

/** Each device's saved state, in the VM's device order. */
export interface SavedDevice {
  kind: string;
  state: Record<string, SavedState>;
}

/** The irqchip mode's state: our models' layouts, or KVM's chips (kernel mode) as raw structs. */
export interface SavedIrqchip {
  mode: 'user' | 'split' | 'kernel';
  state: Record<string, SavedState>;
  /** kernel mode: kvm_irqchip for chip 0 (PIC master), 1 (PIC slave), 2 (IOAPIC), base64. */
  kvmChips?: string[];
}

export interface SnapshotContents {
  manifest: SnapshotManifest;
  devices: SavedDevice[];
  irqchip: SavedIrqchip;
  vcpus: VcpuArchState[];
  ramPath: string;
  /** A firmware-booted VM's image (manifest.vm.firmware). */
  firmware?: Uint8Array;
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, data, { mode: 0o600 });
  renameSync(tmp, path);
}

const writeJsonAtomic = (path: string, value: unknown): void => writeAtomic(path, `${JSON.stringify(value)}\n`);

/** Creates (or reuses) the snapshot directory; refuses a path that is a file. */
export function prepareSnapshotDir(dir: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new SnapshotError(`cannot write a snapshot to ${dir}: it exists and is not a directory`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/** Writes everything but the RAM file (written before, see ram-file.ts), the manifest last. */
export function writeSnapshotFiles(dir: string, c: Omit<SnapshotContents, 'ramPath'>): void {
  if (c.firmware) writeAtomic(join(dir, FIRMWARE_FILE), c.firmware);
  writeJsonAtomic(join(dir, 'devices.json'), c.devices);
  writeJsonAtomic(join(dir, 'irqchip.json'), c.irqchip);
  c.vcpus.forEach((v, i) => writeJsonAtomic(join(dir, `vcpu-${i}.json`), v));
  writeJsonAtomic(join(dir, 'manifest.json'), c.manifest);
}

function readJson(dir: string, name: string): unknown {
  const path = join(dir, name);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new SnapshotError(`${dir} is not a usable snapshot: ${name} is missing${name === 'manifest.json' ? ' (not a snapshot, or one that was interrupted)' : ''}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SnapshotError(`${dir} is not a usable snapshot: ${name} is not valid JSON (truncated?): ${(e as Error).message}`);
  }
}

/** Reads and checks a snapshot directory; throws SnapshotError for anything missing, truncated or foreign. */
export function readSnapshot(dir: string): SnapshotContents {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new SnapshotError(`snapshot ${dir} does not exist or is not a directory`);
  const manifest = checkManifest(readJson(dir, 'manifest.json'), dir);
  const ramPath = join(dir, manifest.ram.file);
  let ramSize: number;
  try {
    ramSize = statSync(ramPath).size;
  } catch {
    throw new SnapshotError(`${dir} is not a usable snapshot: its RAM file ${manifest.ram.file} is missing`);
  }
  if (ramSize !== manifest.ram.size) throw new SnapshotError(`${dir} is not a usable snapshot: its RAM file is ${ramSize} bytes, the manifest says ${manifest.ram.size} (truncated?)`);
  const devices = readJson(dir, 'devices.json');
  if (!Array.isArray(devices) || devices.some((d) => typeof d !== 'object' || d === null || typeof d.kind !== 'string' || typeof d.state !== 'object')) {
    throw new SnapshotError(`${dir} is not a usable snapshot: devices.json is not a device list`);
  }
  const irqchip = readJson(dir, 'irqchip.json') as SavedIrqchip;
  if (typeof irqchip !== 'object' || irqchip === null || irqchip.mode !== manifest.vm.irqchip) throw new SnapshotError(`${dir} is not a usable snapshot: irqchip.json does not match the manifest`);
  const vcpus = Array.from({ length: manifest.vm.vcpus }, (_, i) => readJson(dir, `vcpu-${i}.json`) as VcpuArchState);
  for (const [i, v] of vcpus.entries()) {
    if (typeof v !== 'object' || v === null || typeof v.regs !== 'object' || typeof v.sregs !== 'object' || !Array.isArray(v.msrs)) {
      throw new SnapshotError(`${dir} is not a usable snapshot: vcpu-${i}.json is not a vCPU state`);
    }
  }
  let firmware: Uint8Array | undefined;
  if (manifest.vm.firmware) {
    try {
      firmware = readFileSync(join(dir, FIRMWARE_FILE));
    } catch {
      throw new SnapshotError(`${dir} is not a usable snapshot: its firmware image ${FIRMWARE_FILE} is missing`);
    }
    if (firmware.length !== manifest.vm.firmware.size) throw new SnapshotError(`${dir} is not a usable snapshot: its firmware image is ${firmware.length} bytes, the manifest says ${manifest.vm.firmware.size}`);
  }
  return { manifest, devices: devices as SavedDevice[], irqchip, vcpus, ramPath, ...(firmware ? { firmware } : {}) };
}
