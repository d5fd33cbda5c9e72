import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildGuest, PACKAGE_ROOT, GUEST_LIB } from '../../src/guests/build.js';
import { createVm, type Vm, type VmResult } from '../../src/index.js';
import type { VmOptions, FlatImage } from '../../src/vm/options.js';
import type { EntryMode } from '../../src/vcpu/boot-state.js';

export const TEST_GUESTS = join(PACKAGE_ROOT, 'test', 'guests');

/** Builds test/guests/<name>.S (cached) and returns a FlatImage for it. */
export function testImage(name: string, mode: EntryMode = 'long'): FlatImage {
  const loadAddress = mode === 'real' ? 0x8000 : 0x100000;
  const source = buildGuest({ sources: [join(TEST_GUESTS, `${name}.S`)], loadAddress });
  return { source, mode, loadAddress };
}

export interface GuestRun {
  vm: Vm;
  result: VmResult;
  console: string;
  logs: string[];
}

/**
 * Boots `options`, collects console output and logs, and waits for the stop.
 * A guest that has not stopped after `deadlineMs` is stopped (its result is
 * then 'stopped', which the caller's expectations reject), so a broken guest
 * fails its test instead of keeping the test process alive.
 */
export async function runVm(options: VmOptions, during?: (vm: Vm) => Promise<void>, deadlineMs = 60000): Promise<GuestRun> {
  const vm = createVm({ memory: '64M', ...options });
  let console = '';
  const logs: string[] = [];
  vm.on('console', (c: Buffer) => (console += c.toString('latin1')));
  vm.on('log', (_level: string, m: string) => logs.push(m));
  await vm.start();
  const deadline = setTimeout(() => void vm.stop(), deadlineMs);
  try {
    if (during) await during(vm);
  } catch (e) {
    await vm.stop();
    throw e;
  }
  const result = await vm.wait();
  clearTimeout(deadline);
  return { vm, result, console, logs };
}

/** Builds a C test guest (test/guests/<name>.c + the guest kit) as a long-mode FlatImage. */
export function kitImage(name: string, options: { defines?: Record<string, string | number>; startup?: 'all' | 'sipi' } = {}): FlatImage {
  const loadAddress = 0x100000;
  const source = buildGuest({
    sources: [join(GUEST_LIB, 'start64.S'), join(TEST_GUESTS, `${name}.c`)],
    loadAddress,
    defines: options.defines,
  });
  return { source, mode: 'long', loadAddress, startup: options.startup ?? 'all' };
}

/** A virtio-blk test guest; the shared header's hash goes in as a define, as buildGuest's cache key covers only the sources and guests/lib. */
export function blkTestGuest(name: 'virtio-blk' | 'virtio-blk-mq', defines: Record<string, string | number>): FlatImage {
  const common = createHash('sha256').update(readFileSync(join(TEST_GUESTS, 'virtio-blk-common.h'))).digest('hex').slice(0, 12);
  return kitImage(name, { defines: { ...defines, COMMON_H_SHA: `0x${common}` } });
}
