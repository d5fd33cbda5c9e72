/** Control-register and EFER bits (Intel SDM vol. 3, 2.5 and 2.2.1), as BigInts for kvm_sregs fields. */
export const Cr0 = {
  PE: 1n << 0n,
  MP: 1n << 1n,
  TS: 1n << 3n,
  ET: 1n << 4n,
  NE: 1n << 5n,
  WP: 1n << 16n,
  AM: 1n << 18n,
  PG: 1n << 31n,
} as const;

export const Cr4 = {
  PSE: 1n << 4n,
  PAE: 1n << 5n,
  LA57: 1n << 12n,
  SMEP: 1n << 20n,
  SMAP: 1n << 21n,
} as const;

export const Efer = {
  LME: 1n << 8n,
  LMA: 1n << 10n,
  NXE: 1n << 11n,
} as const;
