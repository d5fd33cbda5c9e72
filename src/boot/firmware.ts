/**
 * A PC firmware image (SeaBIOS, or any ROM laid out like one): checked and
 * read here; mapped by the VM at the top of 4 GiB (its reset vector is its
 * last 16 bytes, at 0xFFFFFFF0) and, its last 256 KiB, below 1 MiB.
 */
import { readFileSync } from 'node:fs';
import { NodevisorError, errnoCode } from '../kvm/errors.js';

/** Debian's `seabios` package: the 256 KiB build QEMU's `pc` machine uses. */
export const DEFAULT_BIOS = '/usr/share/seabios/bios-256k.bin';
export const FIRMWARE_GRANULE = 64 * 1024;
/** 16 MiB: the most a PC flash window below 4 GiB holds. */
export const FIRMWARE_MAX_SIZE = 16 * 1024 * 1024;
export const FOUR_GIB = 2 ** 32;

export interface FirmwareImage {
  readonly bytes: Uint8Array;
  /** Where it is mapped below 4 GiB. */
  readonly base: number;
  /** For messages: the path, or "the firmware image". */
  readonly source: string;
}

/** Reads and checks a firmware image; `true` means the default (Debian's SeaBIOS). */
export function readFirmware(source: string | Uint8Array | true): FirmwareImage {
  const path = source === true ? DEFAULT_BIOS : source;
  let bytes: Uint8Array;
  if (typeof path === 'string') {
    try {
      bytes = readFileSync(path);
    } catch (e) {
      const missing = errnoCode(e) === 'ENOENT';
      const hint = path === DEFAULT_BIOS && missing ? ': install Debian\'s seabios package (apt-get install seabios) or pass --bios FILE' : '';
      const why = missing ? 'does not exist' : errnoCode(e) === 'EACCES' ? 'is not readable (permission denied)' : errnoCode(e) === 'EISDIR' ? 'is a directory' : (e as Error).message;
      throw new NodevisorError('EBIOS', `firmware ${path} ${why}${hint}`, { cause: e });
    }
  } else {
    bytes = path;
  }
  const name = typeof path === 'string' ? path : 'the firmware image';
  if (bytes.length === 0 || bytes.length % FIRMWARE_GRANULE !== 0 || bytes.length > FIRMWARE_MAX_SIZE) {
    throw new NodevisorError('EBIOS', `firmware ${name} is ${bytes.length} bytes: a BIOS image must be a whole number of 64 KiB, at most 16 MiB (e.g. SeaBIOS's bios-256k.bin)`);
  }
  return { bytes, base: FOUR_GIB - bytes.length, source: name };
}
