import { readFileSync } from 'node:fs';
import { calibratedTscHz, type TscCalibration } from './scaling-guest.js';

/**
 * The guest TSC frequency, to turn the guest's RDTSC windows into seconds.
 *
 * Preferred: the host kernel's own figure in sysfs (present on some kernels
 * and hosts only). nodevisor never sets KVM_SET_TSC_KHZ, so the guest TSC
 * ticks at the host's rate. Otherwise (and as a check on sysfs): every guest
 * run reads the ACPI PM timer, which nodevisor derives from the host's
 * CLOCK_MONOTONIC, between two RDTSCs at both ends of its ~250 ms window; the
 * median over all runs of the suite is used. On the development VM the two
 * brackets are ~60k TSC ticks (23 us) wide against ~650M ticks of window,
 * and runs agree to about 1e-5.
 */

export const SYSFS_TSC_KHZ = '/sys/devices/system/cpu/cpu0/tsc_freq_khz';

export interface TscFrequency {
  hz: number;
  source: 'sysfs' | 'pm-timer';
  /** What a disagreement between the two sources, if any, made us do. */
  note?: string;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function sysfsHz(path: string): number | undefined {
  try {
    const khz = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(khz) && khz > 0 ? khz * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/** Chooses the frequency for a suite run from sysfs and the runs' calibrations (at least one of the two must exist). */
export function tscFrequency(calibrations: readonly TscCalibration[], sysfsPath = SYSFS_TSC_KHZ): TscFrequency {
  const fromSysfs = sysfsHz(sysfsPath);
  const calibrated = calibrations.length ? median(calibrations.map(calibratedTscHz)) : undefined;
  if (fromSysfs === undefined) {
    if (calibrated === undefined) throw new Error(`no TSC frequency: ${sysfsPath} is absent and no guest run was calibrated`);
    return { hz: calibrated, source: 'pm-timer' };
  }
  // A guest TSC that does not tick at the host's rate (TSC scaling) makes sysfs wrong for the guest.
  if (calibrated !== undefined && Math.abs(calibrated / fromSysfs - 1) > 0.01) {
    return {
      hz: calibrated,
      source: 'pm-timer',
      note: `host TSC ${(fromSysfs / 1e6).toFixed(3)} MHz (sysfs) but the guest's measured ${(calibrated / 1e6).toFixed(3)} MHz: using the measurement`,
    };
  }
  return { hz: fromSysfs, source: 'sysfs' };
}
