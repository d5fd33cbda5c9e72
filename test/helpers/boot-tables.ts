/**
 * Independent readers for the firmware tables the boot code writes: they
 * use the offsets of the MP 1.4 and ACPI 6.x specifications as literal
 * numbers (not src/boot's constants), verify checksums, and return every
 * field, so tests can compare field by field.
 */
import type { GuestMemory } from '../../src/memory/guest-memory.js';

export function sum8(bytes: Uint8Array): number {
  return bytes.reduce((s, b) => (s + b) & 0xff, 0);
}

function ascii(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

function dv(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---------------------------------------------------------------- MP 1.4

export interface MpFloating {
  signature: string;
  tableAddr: number;
  length: number;
  specRev: number;
  checksumOk: boolean;
  features: number[];
}

export type MpEntry =
  | { type: 'cpu'; apicId: number; apicVersion: number; flags: number; signature: number; features: number; reserved: number[] }
  | { type: 'bus'; id: number; name: string }
  | { type: 'ioapic'; id: number; version: number; flags: number; address: number }
  | { type: 'ioint'; intType: number; flags: number; bus: number; irq: number; dstApic: number; dstPin: number }
  | { type: 'lint'; intType: number; flags: number; bus: number; irq: number; dstApic: number; dstPin: number };

export interface MpTable {
  floating: MpFloating;
  signature: string;
  baseLength: number;
  specRev: number;
  checksumOk: boolean;
  oemId: string;
  productId: string;
  oemTablePtr: number;
  oemTableSize: number;
  entryCount: number;
  lapicAddress: number;
  extLength: number;
  extChecksumOk: boolean;
  entries: MpEntry[];
}

export function readMpTable(mem: GuestMemory, floatingAddr: number): MpTable {
  const f = mem.read(floatingAddr, 16);
  const fv = dv(f);
  const floating: MpFloating = {
    signature: ascii(f.subarray(0, 4)),
    tableAddr: fv.getUint32(4, true),
    length: f[8]!,
    specRev: f[9]!,
    checksumOk: sum8(f) === 0,
    features: Array.from(f.subarray(11, 16)),
  };
  const head = mem.read(floating.tableAddr, 44);
  const hv = dv(head);
  const baseLength = hv.getUint16(4, true);
  const extLength = hv.getUint16(40, true);
  const base = mem.read(floating.tableAddr, baseLength);
  const ext = mem.read(floating.tableAddr + baseLength, extLength);
  const entries: MpEntry[] = [];
  let at = 44;
  const bv = dv(base);
  while (at < baseLength) {
    const type = base[at]!;
    if (type === 0) {
      entries.push({
        type: 'cpu',
        apicId: base[at + 1]!,
        apicVersion: base[at + 2]!,
        flags: base[at + 3]!,
        signature: bv.getUint32(at + 4, true),
        features: bv.getUint32(at + 8, true),
        reserved: Array.from(base.subarray(at + 12, at + 20)),
      });
      at += 20;
      continue;
    }
    if (type === 1) entries.push({ type: 'bus', id: base[at + 1]!, name: ascii(base.subarray(at + 2, at + 8)) });
    else if (type === 2) entries.push({ type: 'ioapic', id: base[at + 1]!, version: base[at + 2]!, flags: base[at + 3]!, address: bv.getUint32(at + 4, true) });
    else if (type === 3 || type === 4) {
      entries.push({
        type: type === 3 ? 'ioint' : 'lint',
        intType: base[at + 1]!,
        flags: bv.getUint16(at + 2, true),
        bus: base[at + 4]!,
        irq: base[at + 5]!,
        dstApic: base[at + 6]!,
        dstPin: base[at + 7]!,
      });
    } else throw new Error(`unknown MP entry type ${type} at ${at}`);
    at += 8;
  }
  if (at !== baseLength) throw new Error('MP entries overrun the base table');
  return {
    floating,
    signature: ascii(head.subarray(0, 4)),
    baseLength,
    specRev: head[6]!,
    checksumOk: sum8(base) === 0,
    oemId: ascii(head.subarray(8, 16)),
    productId: ascii(head.subarray(16, 28)),
    oemTablePtr: hv.getUint32(28, true),
    oemTableSize: hv.getUint16(32, true),
    entryCount: hv.getUint16(34, true),
    lapicAddress: hv.getUint32(36, true),
    extLength,
    extChecksumOk: ((sum8(ext) + head[42]!) & 0xff) === 0,
    entries,
  };
}

// ---------------------------------------------------------------- ACPI

export interface Rsdp {
  signature: string;
  checksumOk: boolean;
  oemId: string;
  revision: number;
  rsdtAddress: number;
  length: number;
  xsdtAddress: number;
  extendedChecksumOk: boolean;
  reserved: number[];
}

export function readRsdp(mem: GuestMemory, addr: number): Rsdp {
  const b = mem.read(addr, 36);
  const v = dv(b);
  return {
    signature: ascii(b.subarray(0, 8)),
    checksumOk: sum8(b.subarray(0, 20)) === 0,
    oemId: ascii(b.subarray(9, 15)),
    revision: b[15]!,
    rsdtAddress: v.getUint32(16, true),
    length: v.getUint32(20, true),
    xsdtAddress: Number(v.getBigUint64(24, true)),
    extendedChecksumOk: sum8(b) === 0,
    reserved: Array.from(b.subarray(33, 36)),
  };
}

/** Linux's way to find the RSDP without a hint: "RSD PTR " on a 16-byte boundary in 0xE0000-0xFFFFF, checksum valid. */
export function scanForRsdp(mem: GuestMemory): number | null {
  for (let a = 0xe0000; a < 0x100000; a += 16) {
    const b = mem.read(a, 8);
    if (ascii(b) === 'RSD PTR ' && sum8(mem.read(a, 20)) === 0) return a;
  }
  return null;
}

export interface SdtHeader {
  signature: string;
  length: number;
  revision: number;
  checksumOk: boolean;
  oemId: string;
  oemTableId: string;
  oemRevision: number;
  creatorId: string;
  creatorRevision: number;
}

export interface Sdt {
  header: SdtHeader;
  bytes: Uint8Array;
  view: DataView;
}

export function readSdt(mem: GuestMemory, addr: number): Sdt {
  const length = mem.readU32(addr + 4);
  const b = mem.read(addr, length);
  const v = dv(b);
  return {
    header: {
      signature: ascii(b.subarray(0, 4)),
      length,
      revision: b[8]!,
      checksumOk: sum8(b) === 0,
      oemId: ascii(b.subarray(10, 16)),
      oemTableId: ascii(b.subarray(16, 24)),
      oemRevision: v.getUint32(24, true),
      creatorId: ascii(b.subarray(28, 32)),
      creatorRevision: v.getUint32(32, true),
    },
    bytes: b,
    view: v,
  };
}

export function readXsdtEntries(sdt: Sdt): number[] {
  const out: number[] = [];
  for (let at = 36; at < sdt.bytes.length; at += 8) out.push(Number(sdt.view.getBigUint64(at, true)));
  return out;
}

export interface Gas {
  space: number;
  bitWidth: number;
  bitOffset: number;
  accessSize: number;
  address: number;
}

function gas(v: DataView, at: number): Gas {
  return {
    space: v.getUint8(at),
    bitWidth: v.getUint8(at + 1),
    bitOffset: v.getUint8(at + 2),
    accessSize: v.getUint8(at + 3),
    address: Number(v.getBigUint64(at + 4, true)),
  };
}

/** Every field of an ACPI 6.0 FADT (table 5-34), by its spec offset. */
export function readFadt(sdt: Sdt): Record<string, number | Gas> {
  const v = sdt.view;
  const u8 = (o: number): number => v.getUint8(o);
  const u16 = (o: number): number => v.getUint16(o, true);
  const u32 = (o: number): number => v.getUint32(o, true);
  const u64 = (o: number): number => Number(v.getBigUint64(o, true));
  return {
    firmwareCtrl: u32(36),
    dsdt: u32(40),
    reserved44: u8(44),
    preferredPmProfile: u8(45),
    sciInt: u16(46),
    smiCmd: u32(48),
    acpiEnable: u8(52),
    acpiDisable: u8(53),
    s4biosReq: u8(54),
    pstateCnt: u8(55),
    pm1aEvtBlk: u32(56),
    pm1bEvtBlk: u32(60),
    pm1aCntBlk: u32(64),
    pm1bCntBlk: u32(68),
    pm2CntBlk: u32(72),
    pmTmrBlk: u32(76),
    gpe0Blk: u32(80),
    gpe1Blk: u32(84),
    pm1EvtLen: u8(88),
    pm1CntLen: u8(89),
    pm2CntLen: u8(90),
    pmTmrLen: u8(91),
    gpe0BlkLen: u8(92),
    gpe1BlkLen: u8(93),
    gpe1Base: u8(94),
    cstCnt: u8(95),
    pLvl2Lat: u16(96),
    pLvl3Lat: u16(98),
    flushSize: u16(100),
    flushStride: u16(102),
    dutyOffset: u8(104),
    dutyWidth: u8(105),
    dayAlrm: u8(106),
    monAlrm: u8(107),
    century: u8(108),
    iapcBootArch: u16(109),
    reserved111: u8(111),
    flags: u32(112),
    resetReg: gas(v, 116),
    resetValue: u8(128),
    armBootArch: u16(129),
    minorVersion: u8(131),
    xFirmwareCtrl: u64(132),
    xDsdt: u64(140),
    xPm1aEvtBlk: gas(v, 148),
    xPm1bEvtBlk: gas(v, 160),
    xPm1aCntBlk: gas(v, 172),
    xPm1bCntBlk: gas(v, 184),
    xPm2CntBlk: gas(v, 196),
    xPmTmrBlk: gas(v, 208),
    xGpe0Blk: gas(v, 220),
    xGpe1Blk: gas(v, 232),
    sleepControlReg: gas(v, 244),
    sleepStatusReg: gas(v, 256),
    hypervisorVendorId: u64(268),
  };
}

export type MadtEntry =
  | { type: 0; uid: number; apicId: number; flags: number }
  | { type: 1; id: number; reserved: number; address: number; gsiBase: number }
  | { type: 2; bus: number; source: number; gsi: number; flags: number }
  | { type: 4; uid: number; flags: number; lint: number }
  | { type: 9; reserved: number; x2apicId: number; flags: number; uid: number }
  | { type: 10; flags: number; uid: number; lint: number; reserved: number[] };

export interface Madt {
  lapicAddress: number;
  flags: number;
  entries: MadtEntry[];
}

export function readMadt(sdt: Sdt): Madt {
  const b = sdt.bytes;
  const v = sdt.view;
  const entries: MadtEntry[] = [];
  let at = 44;
  while (at < b.length) {
    const type = b[at]!;
    const len = b[at + 1]!;
    const expect = { 0: 8, 1: 12, 2: 10, 4: 6, 9: 16, 10: 12 }[type as 0 | 1 | 2 | 4 | 9 | 10];
    if (expect === undefined) throw new Error(`unexpected MADT entry type ${type}`);
    if (len !== expect) throw new Error(`MADT entry type ${type} has length ${len}, expected ${expect}`);
    switch (type) {
      case 0:
        entries.push({ type, uid: b[at + 2]!, apicId: b[at + 3]!, flags: v.getUint32(at + 4, true) });
        break;
      case 1:
        entries.push({ type, id: b[at + 2]!, reserved: b[at + 3]!, address: v.getUint32(at + 4, true), gsiBase: v.getUint32(at + 8, true) });
        break;
      case 2:
        entries.push({ type, bus: b[at + 2]!, source: b[at + 3]!, gsi: v.getUint32(at + 4, true), flags: v.getUint16(at + 8, true) });
        break;
      case 4:
        entries.push({ type, uid: b[at + 2]!, flags: v.getUint16(at + 3, true), lint: b[at + 5]! });
        break;
      case 9:
        entries.push({ type, reserved: v.getUint16(at + 2, true), x2apicId: v.getUint32(at + 4, true), flags: v.getUint32(at + 8, true), uid: v.getUint32(at + 12, true) });
        break;
      case 10:
        entries.push({ type, flags: v.getUint16(at + 2, true), uid: v.getUint32(at + 4, true), lint: b[at + 8]!, reserved: Array.from(b.subarray(at + 9, at + 12)) });
        break;
    }
    at += len;
  }
  if (at !== b.length) throw new Error('MADT entries overrun the table');
  return { lapicAddress: v.getUint32(36, true), flags: v.getUint32(40, true), entries };
}

export interface Facs {
  signature: string;
  length: number;
  hardwareSignature: number;
  firmwareWakingVector: number;
  globalLock: number;
  flags: number;
  xFirmwareWakingVector: number;
  version: number;
  ospmFlags: number;
  rest: number[];
}

export function readFacs(mem: GuestMemory, addr: number): Facs {
  const b = mem.read(addr, 64);
  const v = dv(b);
  return {
    signature: ascii(b.subarray(0, 4)),
    length: v.getUint32(4, true),
    hardwareSignature: v.getUint32(8, true),
    firmwareWakingVector: v.getUint32(12, true),
    globalLock: v.getUint32(16, true),
    flags: v.getUint32(20, true),
    xFirmwareWakingVector: Number(v.getBigUint64(24, true)),
    version: b[32]!,
    ospmFlags: v.getUint32(36, true),
    rest: [...b.subarray(33, 36), ...b.subarray(40, 64)],
  };
}

// ---------------------------------------------------------------- AML (just the subset the DSDT uses)

export type AmlValue = bigint | string | Uint8Array | AmlValue[];
export type AmlTerm =
  | { op: 'Name'; name: string; value: AmlValue }
  | { op: 'Scope'; name: string; terms: AmlTerm[] }
  | { op: 'Device'; name: string; terms: AmlTerm[] };

/** Decodes PkgLength at `at`; returns the total (including itself) and the bytes it took. */
export function decodePkgLength(b: Uint8Array, at: number): { length: number; size: number } {
  const lead = b[at]!;
  const follow = lead >> 6;
  if (follow === 0) return { length: lead & 0x3f, size: 1 };
  let length = lead & 0x0f;
  for (let i = 0; i < follow; i++) length |= b[at + 1 + i]! << (4 + 8 * i);
  return { length, size: 1 + follow };
}

function decodeName(b: Uint8Array, at: number): { name: string; next: number } {
  let name = '';
  let i = at;
  if (b[i] === 0x5c) {
    name = '\\';
    i++;
  }
  while (b[i] === 0x5e) {
    name += '^';
    i++;
  }
  let count = 1;
  if (b[i] === 0x00) return { name, next: i + 1 };
  if (b[i] === 0x2e) {
    count = 2;
    i++;
  } else if (b[i] === 0x2f) {
    count = b[i + 1]!;
    i += 2;
  }
  const segs: string[] = [];
  for (let s = 0; s < count; s++, i += 4) segs.push(ascii(b.subarray(i, i + 4)));
  return { name: name + segs.join('.'), next: i };
}

function decodeData(b: Uint8Array, at: number): { value: AmlValue; next: number } {
  const op = b[at]!;
  const int = (n: number): bigint => {
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[at + 1 + i]!);
    return v;
  };
  switch (op) {
    case 0x00:
      return { value: 0n, next: at + 1 };
    case 0x01:
      return { value: 1n, next: at + 1 };
    case 0xff:
      return { value: 0xffffffffffffffffn, next: at + 1 };
    case 0x0a:
      return { value: int(1), next: at + 2 };
    case 0x0b:
      return { value: int(2), next: at + 3 };
    case 0x0c:
      return { value: int(4), next: at + 5 };
    case 0x0e:
      return { value: int(8), next: at + 9 };
    case 0x0d: {
      let end = at + 1;
      while (b[end] !== 0) end++;
      return { value: ascii(b.subarray(at + 1, end)), next: end + 1 };
    }
    case 0x12: {
      const pkg = decodePkgLength(b, at + 1);
      const end = at + 1 + pkg.length;
      const count = b[at + 1 + pkg.size]!;
      let i = at + 2 + pkg.size;
      const items: AmlValue[] = [];
      for (let n = 0; n < count; n++) {
        const d = decodeData(b, i);
        items.push(d.value);
        i = d.next;
      }
      if (i !== end) throw new Error(`package at ${at}: elements end at ${i}, PkgLength says ${end}`);
      return { value: items, next: end };
    }
    case 0x11: {
      // Buffer: PkgLength, BufferSize (an integer), then the bytes.
      const pkg = decodePkgLength(b, at + 1);
      const end = at + 1 + pkg.length;
      const size = decodeData(b, at + 1 + pkg.size);
      const bytes = b.slice(size.next, end);
      if (BigInt(bytes.length) !== size.value) throw new Error(`buffer at ${at}: ${bytes.length} bytes, BufferSize says ${String(size.value)}`);
      return { value: bytes, next: end };
    }
    default:
      throw new Error(`unsupported AML data opcode 0x${op.toString(16)} at ${at}`);
  }
}

export function decodeAml(b: Uint8Array, start = 0, end = b.length): AmlTerm[] {
  const terms: AmlTerm[] = [];
  let at = start;
  while (at < end) {
    const op = b[at]!;
    if (op === 0x08) {
      const n = decodeName(b, at + 1);
      const d = decodeData(b, n.next);
      terms.push({ op: 'Name', name: n.name, value: d.value });
      at = d.next;
    } else if (op === 0x10 || (op === 0x5b && b[at + 1] === 0x82)) {
      const pkgAt = op === 0x10 ? at + 1 : at + 2;
      const pkg = decodePkgLength(b, pkgAt);
      const bodyEnd = pkgAt + pkg.length;
      const n = decodeName(b, pkgAt + pkg.size);
      terms.push({ op: op === 0x10 ? 'Scope' : 'Device', name: n.name, terms: decodeAml(b, n.next, bodyEnd) });
      at = bodyEnd;
    } else {
      throw new Error(`unsupported AML opcode 0x${op.toString(16)} at ${at}`);
    }
  }
  if (at !== end) throw new Error(`AML terms overran their package (${at} > ${end})`);
  return terms;
}
