import type { StopReason } from '../devices/device.js';
import { debugExitStatus } from '../devices/debug-exit.js';

/**
 * Process exit statuses for each way a VM ends. Debug-exit statuses are
 * always odd ((value << 1) | 1, QEMU's convention), so ours are even.
 */
export const ExitStatus = {
  poweroff: 0,
  reset: 2,
  'triple-fault': 4,
  error: 6,
  stopped: 8,
  /** The guest kernel panicked (pvpanic). */
  panic: 10,
  /** The firmware found nothing to boot (e.g. a disk without a boot sector). */
  'no-boot-device': 12,
  /** The VM could not be created or started (bad option, missing file, no KVM). */
  setupFailed: 64,
} as const;

export function exitStatusOf(reason: StopReason): number {
  return reason.kind === 'debug-exit' ? debugExitStatus(reason.code) : ExitStatus[reason.kind];
}

export function describeStop(reason: StopReason): string {
  switch (reason.kind) {
    case 'poweroff':
      return 'the guest powered off';
    case 'reset':
      return 'the guest asked for a reset (nodevisor stops instead of rebooting)';
    case 'debug-exit':
      return `the guest wrote 0x${reason.code.toString(16)} to the debug-exit port`;
    case 'triple-fault':
    case 'error':
      return reason.detail;
    case 'stopped':
      return 'the VM was stopped by the host';
    case 'no-boot-device':
      return `the firmware found no bootable device${reason.detail ? ` (${reason.detail})` : ''}: give a disk with a boot loader (nodevisor image build-disk makes one)`;
    case 'panic':
      return reason.detail ? `the guest kernel panicked: ${reason.detail}` : 'the guest kernel panicked';
  }
}
