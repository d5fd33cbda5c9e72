/**
 * The Fixed ACPI Description Table, ACPI 6.0 layout: revision 6, minor
 * version 0, 276 bytes (ACPI 6.x §5.2.9, table 5-34). It describes the
 * fixed hardware of src/devices/acpi-pm.ts and points at the DSDT and FACS.
 *
 * - Always in ACPI mode: SMI_CMD, ACPI_ENABLE and ACPI_DISABLE are 0
 *   (§5.2.9: "SMI_CMD ... zero if the system does not support a legacy
 *   mode"), and the PM device resets with SCI_EN set.
 * - PM1a event block (4 bytes: PM1_STS, PM1_EN), PM1a control block (2
 *   bytes), PM timer (4 bytes, 24 bits: TMR_VAL_EXT clear); no PM1b, PM2 or
 *   GPE blocks.
 * - Reset through RESET_REG: an I/O byte write of 0x06 to port 0xCF9 (the
 *   PIIX/ICH reset control register: full reset | system reset).
 * - Not HW_REDUCED_ACPI: we have fixed hardware, hence the FACS.
 * - The 32-bit and 64-bit (X_) fields carry the same addresses, which is
 *   what ACPICA expects when both are set.
 */
import { ByteWriter } from '../bytes.js';
import { AccessSize, buildSdt, DEFAULT_SDT_IDS, ioRegister, NO_REGISTER, writeGas, type GenericAddress, type SdtIds } from './sdt.js';

export const FADT_REVISION = 6;
export const FADT_MINOR_VERSION = 0;
export const FADT_SIZE = 276;


/** Fixed feature flags (table 5-35). */
export const FadtFlags = {
  WBINVD: 1 << 0,
  WBINVD_FLUSH: 1 << 1,
  PROC_C1: 1 << 2,
  P_LVL2_UP: 1 << 3,
  PWR_BUTTON: 1 << 4, // set = no fixed-feature power button
  SLP_BUTTON: 1 << 5, // set = no fixed-feature sleep button
  FIX_RTC: 1 << 6, // set = no RTC wake status in the fixed registers
  RTC_S4: 1 << 7,
  TMR_VAL_EXT: 1 << 8,
  DCK_CAP: 1 << 9,
  RESET_REG_SUP: 1 << 10,
  SEALED_CASE: 1 << 11,
  HEADLESS: 1 << 12,
  CPU_SW_SLP: 1 << 13,
  PCI_EXP_WAK: 1 << 14,
  USE_PLATFORM_CLOCK: 1 << 15,
  S4_RTC_STS_VALID: 1 << 16,
  REMOTE_POWER_ON_CAPABLE: 1 << 17,
  FORCE_APIC_CLUSTER_MODEL: 1 << 18,
  FORCE_APIC_PHYSICAL_DESTINATION_MODE: 1 << 19,
  HW_REDUCED_ACPI: 1 << 20,
  LOW_POWER_S0_IDLE_CAPABLE: 1 << 21,
} as const;

/** IA-PC boot architecture flags (table 5-36). */
export const IapcBootArch = {
  LEGACY_DEVICES: 1 << 0,
  I8042: 1 << 1,
  VGA_NOT_PRESENT: 1 << 2,
  MSI_NOT_SUPPORTED: 1 << 3,
  PCIE_ASPM_CONTROLS: 1 << 4,
  CMOS_RTC_NOT_PRESENT: 1 << 5,
} as const;

/** P_LVL2_LAT above 100 and P_LVL3_LAT above 1000 mean "C2/C3 not supported" (table 5-34). */
export const NO_C2_LATENCY = 101;
export const NO_C3_LATENCY = 1001;

/** The PC's CMOS century byte (0x32, the IBM PC/AT convention; src/devices/cmos-rtc.ts keeps it there too). */
export const CMOS_CENTURY_INDEX = 0x32;

export const RESET_PORT = 0xcf9;
/** 0xCF9 value for a hard reset: SYS_RST (bit 1) | RST_CPU (bit 2). */
export const RESET_VALUE = 0x06;

export interface FadtConfig {
  readonly dsdtAddress: number;
  readonly facsAddress: number;
  /** The SCI's ISA IRQ (FADT SCI_INT). */
  readonly sciIrq: number;
  /** I/O ports of the PM1a event block, PM1a control block and PM timer, and their lengths in bytes. */
  readonly pm1aEvtBlk: number;
  readonly pm1aCntBlk: number;
  readonly pmTmrBlk: number;
  readonly pm1EvtLen: number;
  readonly pm1CntLen: number;
  readonly pmTmrLen: number;
  /** RESET_REG as an I/O port and the value to write; null for no reset register. */
  readonly reset: { readonly port: number; readonly value: number } | null;
  /** IAPC_BOOT_ARCH flags (IapcBootArch). */
  readonly iapcBootArch: number;
  /** CMOS index of the RTC's century byte (CMOS_CENTURY_INDEX), or 0 when there is none. */
  readonly century: number;
  readonly ids?: SdtIds;
}

/** The flags we report: see the file comment. */
export function fadtFlags(hasReset: boolean): number {
  return (
    FadtFlags.WBINVD | // x86 guests implement WBINVD; required for ACPI 2.0+ (table 5-35)
    FadtFlags.PROC_C1 | // HLT works on every vCPU
    FadtFlags.SLP_BUTTON | // no sleep button; the power button is the fixed-feature one (PWR_BUTTON clear)
    FadtFlags.FIX_RTC | // PM1 has no RTC_STS/RTC_EN
    (hasReset ? FadtFlags.RESET_REG_SUP : 0)
  );
}

export function buildFadt(config: FadtConfig): Uint8Array {
  const pm1aEvt = ioRegister(config.pm1aEvtBlk, config.pm1EvtLen, AccessSize.Word);
  const pm1aCnt = ioRegister(config.pm1aCntBlk, config.pm1CntLen, AccessSize.Word);
  const pmTmr = ioRegister(config.pmTmrBlk, config.pmTmrLen, AccessSize.Dword);
  const resetReg: GenericAddress = config.reset ? ioRegister(config.reset.port, 1, AccessSize.Byte) : NO_REGISTER;

  const w = new ByteWriter(FADT_SIZE);
  w.u32(config.facsAddress) // 36 FIRMWARE_CTRL
    .u32(config.dsdtAddress) // 40 DSDT
    .u8(0) // 44 reserved (ACPI 1.0 INT_MODEL)
    .u8(0) // 45 Preferred_PM_Profile: unspecified
    .u16(config.sciIrq) // 46 SCI_INT
    .u32(0) // 48 SMI_CMD: no legacy mode
    .u8(0) // 52 ACPI_ENABLE
    .u8(0) // 53 ACPI_DISABLE
    .u8(0) // 54 S4BIOS_REQ
    .u8(0) // 55 PSTATE_CNT
    .u32(config.pm1aEvtBlk) // 56 PM1a_EVT_BLK
    .u32(0) // 60 PM1b_EVT_BLK
    .u32(config.pm1aCntBlk) // 64 PM1a_CNT_BLK
    .u32(0) // 68 PM1b_CNT_BLK
    .u32(0) // 72 PM2_CNT_BLK
    .u32(config.pmTmrBlk) // 76 PM_TMR_BLK
    .u32(0) // 80 GPE0_BLK
    .u32(0) // 84 GPE1_BLK
    .u8(config.pm1EvtLen) // 88 PM1_EVT_LEN
    .u8(config.pm1CntLen) // 89 PM1_CNT_LEN
    .u8(0) // 90 PM2_CNT_LEN
    .u8(config.pmTmrLen) // 91 PM_TMR_LEN
    .u8(0) // 92 GPE0_BLK_LEN
    .u8(0) // 93 GPE1_BLK_LEN
    .u8(0) // 94 GPE1_BASE
    .u8(0) // 95 CST_CNT: no _CST
    .u16(NO_C2_LATENCY) // 96 P_LVL2_LAT
    .u16(NO_C3_LATENCY) // 98 P_LVL3_LAT
    .u16(0) // 100 FLUSH_SIZE
    .u16(0) // 102 FLUSH_STRIDE
    .u8(0) // 104 DUTY_OFFSET
    .u8(0) // 105 DUTY_WIDTH
    .u8(0) // 106 DAY_ALRM
    .u8(0) // 107 MON_ALRM
    .u8(config.century) // 108 CENTURY
    .u16(config.iapcBootArch) // 109 IAPC_BOOT_ARCH
    .u8(0) // 111 reserved
    .u32(fadtFlags(config.reset !== null)); // 112 Flags
  writeGas(w, resetReg); // 116 RESET_REG
  w.u8(config.reset?.value ?? 0) // 128 RESET_VALUE
    .u16(0) // 129 ARM_BOOT_ARCH
    .u8(FADT_MINOR_VERSION) // 131
    .u64(config.facsAddress) // 132 X_FIRMWARE_CTRL
    .u64(config.dsdtAddress); // 140 X_DSDT
  writeGas(w, pm1aEvt); // 148 X_PM1a_EVT_BLK
  writeGas(w, NO_REGISTER); // 160 X_PM1b_EVT_BLK
  writeGas(w, pm1aCnt); // 172 X_PM1a_CNT_BLK
  writeGas(w, NO_REGISTER); // 184 X_PM1b_CNT_BLK
  writeGas(w, NO_REGISTER); // 196 X_PM2_CNT_BLK
  writeGas(w, pmTmr); // 208 X_PM_TMR_BLK
  writeGas(w, NO_REGISTER); // 220 X_GPE0_BLK
  writeGas(w, NO_REGISTER); // 232 X_GPE1_BLK
  writeGas(w, NO_REGISTER); // 244 SLEEP_CONTROL_REG (HW-reduced only)
  writeGas(w, NO_REGISTER); // 256 SLEEP_STATUS_REG (HW-reduced only)
  w.u64(0); // 268 Hypervisor Vendor Identity
  const table = buildSdt('FACP', FADT_REVISION, w.toBytes(), config.ids ?? DEFAULT_SDT_IDS);
  if (table.length !== FADT_SIZE) throw new Error(`FADT came out ${table.length} bytes, not ${FADT_SIZE}`);
  return table;
}
