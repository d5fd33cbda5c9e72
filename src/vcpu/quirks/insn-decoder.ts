/**
 * An x86 instruction-length decoder for 16-, 32- and 64-bit code.
 *
 * KVM's emulation-failure exit reports 15 instruction bytes whatever the
 * instruction's real length (see shared/notes/host-kvm.md), so the host-quirk
 * fallbacks need their own decoder to find where the next instruction starts
 * and which operands the failing one names. This one decodes the encoding
 * structure (prefixes, REX, VEX/EVEX, opcode maps, ModRM/SIB, displacement,
 * immediates) of everything a kernel plausibly executes; it does not decide
 * whether the CPU supports an instruction. References: Intel SDM Vol. 2,
 * chapter 2 (instruction format) and appendix A (opcode maps).
 */

export type CpuMode = 16 | 32 | 64;
export type SegmentReg = 'es' | 'cs' | 'ss' | 'ds' | 'fs' | 'gs';
/** Where the opcode byte lives: the one-byte map, the 0F/0F38/0F3A maps, 3DNow! (0F 0F), or EVEX maps 5/6. */
export type OpcodeMap = 'primary' | '0f' | '0f38' | '0f3a' | '3dnow' | 'map5' | 'map6';

export interface Prefixes {
  lock: boolean;
  /** F3 present. */
  rep: boolean;
  /** F2 present. */
  repne: boolean;
  /** 66 present. */
  opsize: boolean;
  /** 67 present. */
  addrsize: boolean;
  /** The last segment override, if any (in 64-bit mode only FS and GS have an effect). */
  segment: SegmentReg | null;
  /** The last of F2/F3, which selects the mandatory-prefix form of SSE-era opcodes. */
  lastRep: 0xf2 | 0xf3 | null;
  /** Number of legacy prefix bytes. */
  count: number;
}

export interface Rex {
  w: boolean;
  r: boolean;
  x: boolean;
  b: boolean;
}

/** The fields of a VEX (C4/C5) or EVEX (62) prefix, un-inverted. */
export interface VexPrefix {
  kind: 'vex2' | 'vex3' | 'evex';
  /** 1 = 0F, 2 = 0F38, 3 = 0F3A, 5/6 = EVEX maps 5/6. */
  map: number;
  w: boolean;
  r: boolean;
  x: boolean;
  b: boolean;
  /** The extra source register (vvvv, plus V' for EVEX). */
  vvvv: number;
  /** Vector length: 0 = 128, 1 = 256, 2 = 512 bits. */
  l: number;
  /** Implied prefix: 0 none, 1 = 66, 2 = F3, 3 = F2. */
  pp: number;
}

export interface ModRm {
  mod: number;
  /** ModRM.reg, not extended by REX.R. */
  reg: number;
  /** ModRM.rm, not extended by REX.B. */
  rm: number;
}

export interface Sib {
  scale: 1 | 2 | 4 | 8;
  /** SIB.index and SIB.base, not extended by REX. */
  index: number;
  base: number;
}

/** A displacement or immediate field: `value` is sign-extended for displacements, raw (zero-extended) for immediates. */
export interface Field {
  value: bigint;
  size: number;
  /** Byte offset of the field in the instruction. */
  offset: number;
}

/** The ModRM (or moffs) operand: a register, or a memory reference. */
export type AddressMode =
  | {
      kind: 'reg';
      /** Register number including REX.B (0-15). */
      reg: number;
    }
  | {
      kind: 'mem';
      /** Base register number (0-15, REX.B included), 'rip' for RIP-relative, or null. */
      base: number | 'rip' | null;
      /** Index register number (REX.X included), or null. */
      index: number | null;
      scale: 1 | 2 | 4 | 8;
      /** Signed displacement (for moffs: the zero-extended offset). */
      disp: bigint;
      addressSize: 16 | 32 | 64;
      /** The segment the access uses: the override, else SS for (E/R)BP/(E/R)SP bases, else DS. */
      segment: SegmentReg;
    };

export interface DecodedInstruction {
  mode: CpuMode;
  length: number;
  prefixes: Prefixes;
  rex: Rex | null;
  vex: VexPrefix | null;
  map: OpcodeMap;
  opcode: number;
  /** The opcode bytes as they identify the instruction: e.g. [0x0f, 0x38, 0xf0] (VEX/EVEX maps shown as their escape bytes). */
  opcodeBytes: number[];
  modrm: ModRm | null;
  sib: Sib | null;
  displacement: Field | null;
  immediate: Field | null;
  /** The second immediate: ENTER's ib, a far pointer's selector, EXTRQ/INSERTQ's second ib. */
  immediate2: Field | null;
  /** Operand size from the default, 66 and REX.W (instructions that default to 64 bits are not special-cased). */
  operandSize: 16 | 32 | 64;
  addressSize: 16 | 32 | 64;
  addressMode: AddressMode | null;
}

export type DecodeErrorReason = 'truncated' | 'too-long' | 'invalid';

/** Bytes that are not a (complete) instruction. */
export class InstructionDecodeError extends Error {
  constructor(
    readonly reason: DecodeErrorReason,
    /** Offset of the byte that made decoding fail. */
    readonly offset: number,
    detail: string,
  ) {
    super(`cannot decode instruction: ${detail}`);
    this.name = 'InstructionDecodeError';
  }
}

/** SDM 2.3.11: an instruction longer than 15 bytes raises #GP. */
export const MAX_INSTRUCTION_LENGTH = 15;

/** Immediate kinds (SDM appendix A.2.2 operand codes). */
const enum Imm {
  None,
  /** ib */
  B,
  /** iw, whatever the operand size (RET imm16). */
  W,
  /** iz: 16 bits with 16-bit operand size, else 32. */
  Z,
  /** iv: B8+r, 64 bits with REX.W. */
  V,
  /** moffs: address-size offset (A0-A3). */
  Moffs,
  /** ENTER: iw then ib. */
  Enter,
  /** ptr16:16/ptr16:32 (far CALL/JMP). */
  FarPtr,
  /** rel8 */
  RelB,
  /**
   * rel16/32; always rel32 in 64-bit mode, where Intel CPUs fix near-branch
   * operand size at 64 bits and ignore 66 (SDM Vol. 2, JMP/Jcc/CALL). AMD
   * CPUs honour 66 there (rel16); no compiler emits that form.
   */
  RelZ,
  /** F6/F7 group 3: ib/iz for /0 and /1 (TEST) only. */
  Group3,
}

interface OpInfo {
  modrm: boolean;
  imm: Imm;
}

const NONE: OpInfo = { modrm: false, imm: Imm.None };
const M: OpInfo = { modrm: true, imm: Imm.None };
const MB: OpInfo = { modrm: true, imm: Imm.B };
const op = (imm: Imm): OpInfo => ({ modrm: false, imm });

/** One-byte map; null = undefined in `mode`. Prefix bytes never reach this. */
function primaryInfo(b: number, mode: CpuMode): OpInfo | null {
  const x64Invalid = mode === 64;
  if (b < 0x40) {
    const low = b & 7;
    if (low <= 3) return M;
    if (low === 4) return op(Imm.B);
    if (low === 5) return op(Imm.Z);
    // 06/07/0E/16/17/1E/1F push/pop seg, 27/2F/37/3F DAA/DAS/AAA/AAS: gone in 64-bit mode.
    return x64Invalid ? null : NONE;
  }
  if (b < 0x60) return NONE; // 40-4F inc/dec (REX in 64-bit, consumed earlier), 50-5F push/pop
  switch (b) {
    case 0x60:
    case 0x61:
      return x64Invalid ? null : NONE;
    case 0x62:
      return x64Invalid ? null : M; // BOUND (EVEX handled before this)
    case 0x63:
      return M; // ARPL / MOVSXD
    case 0x68:
      return op(Imm.Z);
    case 0x69:
      return { modrm: true, imm: Imm.Z };
    case 0x6a:
      return op(Imm.B);
    case 0x6b:
      return MB;
  }
  if (b >= 0x6c && b <= 0x6f) return NONE;
  if (b >= 0x70 && b <= 0x7f) return op(Imm.RelB);
  if (b === 0x80 || b === 0x83) return MB;
  if (b === 0x81) return { modrm: true, imm: Imm.Z };
  if (b === 0x82) return x64Invalid ? null : MB;
  if (b >= 0x84 && b <= 0x8f) return M;
  if (b === 0x9a) return x64Invalid ? null : op(Imm.FarPtr);
  if (b >= 0x90 && b <= 0x9f) return NONE;
  if (b >= 0xa0 && b <= 0xa3) return op(Imm.Moffs);
  if (b === 0xa8) return op(Imm.B);
  if (b === 0xa9) return op(Imm.Z);
  if (b >= 0xa4 && b <= 0xaf) return NONE;
  if (b >= 0xb0 && b <= 0xb7) return op(Imm.B);
  if (b >= 0xb8 && b <= 0xbf) return op(Imm.V);
  switch (b) {
    case 0xc0:
    case 0xc1:
    case 0xc6:
      return MB;
    case 0xc2:
    case 0xca:
      return op(Imm.W);
    case 0xc4:
    case 0xc5:
      return M; // LES/LDS (VEX handled before this)
    case 0xc7:
      return { modrm: true, imm: Imm.Z };
    case 0xc8:
      return op(Imm.Enter);
    case 0xcd:
      return op(Imm.B);
    case 0xce:
      return x64Invalid ? null : NONE; // INTO
    case 0xd4:
    case 0xd5:
      return x64Invalid ? null : op(Imm.B); // AAM/AAD
    case 0xd6:
      return x64Invalid ? null : NONE; // SALC
    case 0xe8:
    case 0xe9:
      return op(Imm.RelZ);
    case 0xea:
      return x64Invalid ? null : op(Imm.FarPtr);
    case 0xeb:
      return op(Imm.RelB);
    case 0xf6:
    case 0xf7:
      return { modrm: true, imm: Imm.Group3 };
    case 0xfe:
    case 0xff:
      return M;
  }
  if (b >= 0xc3 && b <= 0xcf) return NONE; // C3 ret, C9 leave, CB retf, CC int3, CF iret
  if ((b >= 0xd0 && b <= 0xd3) || (b >= 0xd8 && b <= 0xdf)) return M; // shifts, x87 escapes
  if (b >= 0xe0 && b <= 0xe3) return op(Imm.RelB);
  if (b >= 0xe4 && b <= 0xe7) return op(Imm.B);
  return NONE; // EC-EF in/out dx, F1 int1, F4 hlt, F5 cmc, F8-FD flag ops
}

/** Two-byte (0F xx) map; null = undefined opcode. */
function twoByteInfo(b: number): OpInfo | null {
  switch (b) {
    case 0x04:
    case 0x0a:
    case 0x0c:
    case 0x24:
    case 0x25:
    case 0x26:
    case 0x27:
    case 0x36:
    case 0x39:
    case 0x3b:
    case 0x3c:
    case 0x3d:
    case 0x3e:
    case 0x3f:
    case 0x7a:
    case 0x7b:
    case 0xa6:
    case 0xa7:
      return null;
    case 0x70: // pshufw/pshufd/pshufhw/pshuflw ib
    case 0x71: // psrlw/psraw/psllw ib
    case 0x72:
    case 0x73:
    case 0xa4: // shld ib
    case 0xac: // shrd ib
    case 0xba: // bt/bts/btr/btc ib
    case 0xc2: // cmpps ib
    case 0xc4: // pinsrw ib
    case 0xc5: // pextrw ib
    case 0xc6: // shufps ib
      return MB;
  }
  if (b <= 0x03) return M; // grp6, grp7, lar, lsl
  if (b <= 0x0f) return b === 0x0d ? M : NONE; // 0D prefetch; 05 syscall .. 0E femms (0F handled by caller)
  if (b <= 0x2f) return M; // 10-1F SSE moves + hint NOPs, 20-23 mov cr/dr, 28-2F
  if (b <= 0x3f) return NONE; // 30 wrmsr .. 37 getsec
  if (b <= 0x76) return M;
  if (b === 0x77) return NONE; // emms
  if (b <= 0x7f) return M;
  if (b <= 0x8f) return op(Imm.RelZ);
  if (b <= 0x9f) return M; // setcc
  if (b <= 0xa2 || b === 0xa8 || b === 0xa9 || b === 0xaa) return NONE; // push/pop fs/gs, cpuid, rsm
  if (b >= 0xc8 && b <= 0xcf) return NONE; // bswap
  return M;
}

/** Immediate size of VEX/EVEX instructions (SDM Vol. 2 2.3.5, appendix A): map 3 always ib, a few map 1 opcodes. */
function vexImm(map: number, opcode: number): Imm {
  if (map === 3) return Imm.B;
  if (map === 1 && ((opcode >= 0x70 && opcode <= 0x73) || opcode === 0xc2 || (opcode >= 0xc4 && opcode <= 0xc6))) return Imm.B;
  return Imm.None;
}

const SEGMENT_PREFIX: Readonly<Record<number, SegmentReg>> = { 0x26: 'es', 0x2e: 'cs', 0x36: 'ss', 0x3e: 'ds', 0x64: 'fs', 0x65: 'gs' };

/** Base and index registers of the eight 16-bit ModRM forms (SDM Vol. 2 table 2-1): BX=3, BP=5, SI=6, DI=7. */
const MODRM16: ReadonlyArray<readonly [number | null, number | null]> = [
  [3, 6], [3, 7], [5, 6], [5, 7], [6, null], [7, null], [5, null], [3, null],
];

/** Little-endian unsigned read of `size` bytes. */
function readLe(bytes: Uint8Array, at: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[at + i]!);
  return v;
}

class Cursor {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  /** Ensures `n` more bytes exist, within the 15-byte limit. */
  need(n: number): void {
    if (this.pos + n > MAX_INSTRUCTION_LENGTH) {
      throw new InstructionDecodeError('too-long', MAX_INSTRUCTION_LENGTH, 'longer than 15 bytes');
    }
    if (this.pos + n > this.bytes.length) {
      throw new InstructionDecodeError('truncated', this.bytes.length, `needs more than the ${this.bytes.length} bytes given`);
    }
  }

  next(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }

  /** The byte after the current one, or undefined (for the VEX-versus-LES test). */
  peek(): number | undefined {
    return this.pos < this.bytes.length ? this.bytes[this.pos] : undefined;
  }

  field(size: number, signed: boolean): Field {
    this.need(size);
    const offset = this.pos;
    let value = readLe(this.bytes, offset, size);
    if (signed) value = BigInt.asIntN(size * 8, value);
    this.pos += size;
    return { value, size, offset };
  }
}

const invalid = (at: number, what: string): InstructionDecodeError => new InstructionDecodeError('invalid', at, what);
const hex2 = (b: number): string => b.toString(16).padStart(2, '0');

/**
 * Decodes the instruction at the start of `bytes` (more bytes may follow; only
 * the instruction's own are used). Throws InstructionDecodeError for bytes that
 * are truncated, longer than 15 bytes, or not an instruction.
 */
export function decodeInstruction(bytes: Uint8Array, mode: CpuMode): DecodedInstruction {
  const c = new Cursor(bytes);
  const prefixes: Prefixes = { lock: false, rep: false, repne: false, opsize: false, addrsize: false, segment: null, lastRep: null, count: 0 };
  let rex: Rex | null = null;
  let b: number;
  // Legacy prefixes in any order, then REX. A REX followed by another prefix is
  // ignored (SDM Vol. 2 2.2.1: REX must immediately precede the opcode).
  for (;;) {
    b = c.next();
    const seg = SEGMENT_PREFIX[b];
    if (seg) prefixes.segment = seg;
    else if (b === 0xf0) prefixes.lock = true;
    else if (b === 0xf2 || b === 0xf3) {
      if (b === 0xf2) prefixes.repne = true;
      else prefixes.rep = true;
      prefixes.lastRep = b;
    } else if (b === 0x66) prefixes.opsize = true;
    else if (b === 0x67) prefixes.addrsize = true;
    else if (mode === 64 && (b & 0xf0) === 0x40) {
      rex = { w: (b & 8) !== 0, r: (b & 4) !== 0, x: (b & 2) !== 0, b: (b & 1) !== 0 };
      continue;
    } else break;
    prefixes.count++;
    rex = null;
  }

  const addressSize: 16 | 32 | 64 = mode === 64 ? (prefixes.addrsize ? 32 : 64) : mode === 32 ? (prefixes.addrsize ? 16 : 32) : prefixes.addrsize ? 32 : 16;

  let map: OpcodeMap = 'primary';
  let opcodeBytes: number[];
  let info: OpInfo | null;
  let vex: VexPrefix | null = null;
  let twoImm8 = false;
  const opcodeAt = c.pos - 1;

  // C4/C5/62 are VEX/EVEX in 64-bit mode, and elsewhere when the next byte
  // would be a register-form ModRM, which LES/LDS/BOUND cannot use (SDM Vol. 2 2.3.5).
  const next = c.peek();
  const isVexLike = (b === 0xc4 || b === 0xc5 || b === 0x62) && (mode === 64 || (next !== undefined && next >> 6 === 3));
  if (isVexLike) {
    if (prefixes.lock || prefixes.opsize || prefixes.rep || prefixes.repne || rex) {
      throw invalid(opcodeAt, 'VEX/EVEX after a LOCK, 66, F2, F3 or REX prefix (#UD)');
    }
    vex = decodeVex(c, b);
    map = vex.map === 1 ? '0f' : vex.map === 2 ? '0f38' : vex.map === 3 ? '0f3a' : vex.map === 5 ? 'map5' : 'map6';
    b = c.next();
    opcodeBytes = [...(vex.map === 2 ? [0x0f, 0x38] : vex.map === 3 ? [0x0f, 0x3a] : vex.map === 1 ? [0x0f] : []), b];
    // VZEROUPPER/VZEROALL (VEX 0F 77) are the only VEX instructions without ModRM.
    const noModrm = vex.kind !== 'evex' && vex.map === 1 && b === 0x77;
    info = { modrm: !noModrm, imm: vexImm(vex.map, b) };
  } else if (b === 0x0f) {
    const b2 = c.next();
    if (b2 === 0x38 || b2 === 0x3a) {
      b = c.next();
      map = b2 === 0x38 ? '0f38' : '0f3a';
      opcodeBytes = [0x0f, b2, b];
      info = b2 === 0x38 ? M : MB;
    } else if (b2 === 0x0f) {
      // 3DNow!: 0F 0F /r ib, where the "immediate" is the real opcode (AMD APM Vol. 3 appendix A.3).
      map = '3dnow';
      b = 0x0f;
      opcodeBytes = [0x0f, 0x0f];
      info = MB;
    } else {
      b = b2;
      map = '0f';
      opcodeBytes = [0x0f, b2];
      info = twoByteInfo(b2);
      // AMD SSE4a EXTRQ (66 0F 78 /0 ib ib) and INSERTQ (F2 0F 78 /r ib ib) carry two immediates.
      if (b2 === 0x78 && (prefixes.opsize || prefixes.lastRep === 0xf2)) {
        info = MB;
        twoImm8 = true;
      }
    }
  } else {
    opcodeBytes = [b];
    info = primaryInfo(b, mode);
  }
  if (!info) throw invalid(opcodeAt, `undefined opcode ${opcodeBytes.map(hex2).join(' ')}${mode === 64 ? ' in 64-bit mode' : ''}`);

  const rexX = rex?.x ?? vex?.x ?? false;
  const rexB = rex?.b ?? vex?.b ?? false;
  // REX.W selects 64-bit operands (VEX.W means something per instruction); 66 toggles the default size.
  const operandSize: 16 | 32 | 64 = mode === 64 && rex?.w ? 64 : (mode === 16) !== prefixes.opsize ? 16 : 32;

  let modrm: ModRm | null = null;
  let sib: Sib | null = null;
  let displacement: Field | null = null;
  let addressMode: AddressMode | null = null;
  if (info.modrm) {
    const at = c.pos;
    const m = c.next();
    modrm = { mod: m >> 6, reg: (m >> 3) & 7, rm: m & 7 };
    // MOV to/from CR/DR (0F 20-23) ignore ModRM.mod and always name registers (SDM Vol. 2, MOV-Move to/from Control Registers).
    const forceReg = map === '0f' && b >= 0x20 && b <= 0x23;
    checkGroup(map, b, modrm, at, vex !== null);
    if (modrm.mod === 3 || forceReg) {
      addressMode = { kind: 'reg', reg: modrm.rm | (rexB ? 8 : 0) | (vex?.kind === 'evex' && vex.x ? 16 : 0) };
    } else if (addressSize === 16) {
      const [base, index] = modrm.mod === 0 && modrm.rm === 6 ? [null, null] : MODRM16[modrm.rm]!;
      const dispSize = modrm.mod === 1 ? 1 : modrm.mod === 2 || (modrm.mod === 0 && modrm.rm === 6) ? 2 : 0;
      if (dispSize) displacement = c.field(dispSize, true);
      const segment = prefixes.segment ?? (base === 5 ? 'ss' : 'ds');
      addressMode = { kind: 'mem', base, index, scale: 1, disp: displacement?.value ?? 0n, addressSize, segment };
    } else {
      let base: number | 'rip' | null;
      let index: number | null = null;
      let scale: 1 | 2 | 4 | 8 = 1;
      let dispSize = modrm.mod === 1 ? 1 : modrm.mod === 2 ? 4 : 0;
      if (modrm.rm === 4) {
        const s = c.next();
        sib = { scale: (1 << (s >> 6)) as 1 | 2 | 4 | 8, index: (s >> 3) & 7, base: s & 7 };
        scale = sib.scale;
        // Index 100 without REX.X means "no index"; with REX.X it is R12 (SDM Vol. 2 table 2-5).
        index = sib.index === 4 && !rexX ? null : sib.index | (rexX ? 8 : 0);
        if (sib.base === 5 && modrm.mod === 0) {
          base = null;
          dispSize = 4;
        } else base = sib.base | (rexB ? 8 : 0);
      } else if (modrm.rm === 5 && modrm.mod === 0) {
        // disp32: RIP-relative in 64-bit mode (SDM Vol. 2 2.2.1.6), absolute otherwise.
        base = mode === 64 ? 'rip' : null;
        dispSize = 4;
      } else base = modrm.rm | (rexB ? 8 : 0);
      if (dispSize) displacement = c.field(dispSize, true);
      const segment = prefixes.segment ?? (base === 4 || base === 5 ? 'ss' : 'ds');
      addressMode = { kind: 'mem', base, index, scale, disp: displacement?.value ?? 0n, addressSize, segment };
    }
  }

  let immediate: Field | null = null;
  let immediate2: Field | null = null;
  // REX.W overrides 66 (SDM Vol. 2 2.2.1.2), so iz follows the final operand size.
  const immz = operandSize === 16 ? 2 : 4;
  switch (info.imm) {
    case Imm.None:
      break;
    case Imm.B:
    case Imm.RelB:
      immediate = c.field(1, false);
      break;
    case Imm.W:
      immediate = c.field(2, false);
      break;
    case Imm.Z:
      immediate = c.field(immz, false);
      break;
    case Imm.RelZ:
      immediate = c.field(mode === 64 ? 4 : immz, false);
      break;
    case Imm.V:
      immediate = c.field(operandSize === 64 ? 8 : immz, false);
      break;
    case Imm.Group3:
      if (modrm!.reg <= 1) immediate = c.field(b === 0xf6 ? 1 : immz, false);
      break;
    case Imm.Moffs: {
      // The offset is an address-size displacement with no ModRM (SDM Vol. 2, MOV opcodes A0-A3).
      displacement = c.field(addressSize / 8, false);
      addressMode = { kind: 'mem', base: null, index: null, scale: 1, disp: displacement.value, addressSize, segment: prefixes.segment ?? 'ds' };
      break;
    }
    case Imm.Enter:
      immediate = c.field(2, false);
      immediate2 = c.field(1, false);
      break;
    case Imm.FarPtr:
      immediate = c.field(immz, false);
      immediate2 = c.field(2, false);
      break;
  }
  if (map === '3dnow') opcodeBytes.push(Number(immediate!.value));
  else if (twoImm8) immediate2 = c.field(1, false);

  return {
    mode,
    length: c.pos,
    prefixes,
    rex,
    vex,
    map,
    opcode: map === '3dnow' ? Number(immediate!.value) : b,
    opcodeBytes,
    modrm,
    sib,
    displacement,
    immediate,
    immediate2,
    operandSize,
    addressSize,
    addressMode,
  };
}

function decodeVex(c: Cursor, escape: number): VexPrefix {
  const at = c.pos - 1;
  const p0 = c.next();
  if (escape === 0xc5) {
    return { kind: 'vex2', map: 1, w: false, r: !(p0 & 0x80), x: false, b: false, vvvv: (~p0 >> 3) & 15, l: (p0 >> 2) & 1, pp: p0 & 3 };
  }
  const p1 = c.next();
  if (escape === 0xc4) {
    const map = p0 & 0x1f;
    if (map < 1 || map > 3) throw invalid(at, `VEX map ${map} is reserved`);
    return { kind: 'vex3', map, w: (p1 & 0x80) !== 0, r: !(p0 & 0x80), x: !(p0 & 0x40), b: !(p0 & 0x20), vvvv: (~p1 >> 3) & 15, l: (p1 >> 2) & 1, pp: p1 & 3 };
  }
  const p2 = c.next();
  const map = p0 & 7;
  if (map === 0 || map === 4 || map === 7) throw invalid(at, `EVEX map ${map} is reserved`);
  return {
    kind: 'evex',
    map,
    w: (p1 & 0x80) !== 0,
    r: !(p0 & 0x80),
    x: !(p0 & 0x40),
    b: !(p0 & 0x20),
    vvvv: ((~p1 >> 3) & 15) | (p2 & 8 ? 0 : 16),
    l: (p2 >> 5) & 3,
    pp: p1 & 3,
  };
}

/** Rejects group members that are undefined whatever the CPU (they raise #UD on every processor). */
function checkGroup(map: OpcodeMap, opcode: number, m: ModRm, at: number, isVex: boolean): void {
  if (isVex) return;
  let bad = false;
  if (map === 'primary') {
    if (opcode === 0x8f) bad = m.reg !== 0; // AMD XOP lives here; not supported
    else if (opcode === 0xfe) bad = m.reg > 1;
    else if (opcode === 0xff) bad = m.reg === 7;
    else if (opcode === 0xc6 || opcode === 0xc7) bad = m.reg !== 0 && !(m.reg === 7 && m.mod === 3 && m.rm === 0); // XABORT/XBEGIN: C6/C7 F8
  } else if (map === '0f' && opcode === 0xba) bad = m.reg < 4; // BT group: /4-/7 only
  if (bad) throw invalid(at, `undefined opcode extension /${m.reg}`);
}
