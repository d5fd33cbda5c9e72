/**
 * A small Intel-syntax disassembler for error reports: enough to say which
 * instruction stopped a guest ("popcnt rax, qword ptr [rip+0x1234]",
 * "xsaves [rdi]", "addps"). SSE/AVX instructions are named without operands;
 * anything else unknown prints as "(unknown opcode 0f xx)". Built on the
 * length decoder, so its operand boundaries are the decoder's.
 */
import { decodeInstruction, InstructionDecodeError, type CpuMode, type DecodedInstruction } from './insn-decoder.js';

const GPR64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi'];
const GPR32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const GPR16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'];
const GPR8 = ['al', 'cl', 'dl', 'bl', 'ah', 'ch', 'dh', 'bh'];
const GPR8_REX = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil'];
const SREGS = ['es', 'cs', 'ss', 'ds', 'fs', 'gs', '?', '?'];
const CC = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];
const ALU = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
const SHIFT = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
const GRP3 = ['test', 'test', 'not', 'neg', 'mul', 'imul', 'div', 'idiv'];
const GRP5 = ['inc', 'dec', 'call', 'call far', 'jmp', 'jmp far', 'push', '?'];
const GRP6 = ['sldt', 'str', 'lldt', 'ltr', 'verr', 'verw', '?', '?'];
const GRP7_MEM = ['sgdt', 'sidt', 'lgdt', 'lidt', 'smsw', '?', 'lmsw', 'invlpg'];
const GRP7_REG: Readonly<Record<number, string>> = {
  0xc1: 'vmcall', 0xc2: 'vmlaunch', 0xc3: 'vmresume', 0xc4: 'vmxoff', 0xc8: 'monitor', 0xc9: 'mwait', 0xca: 'clac', 0xcb: 'stac',
  0xd0: 'xgetbv', 0xd1: 'xsetbv', 0xd4: 'vmfunc', 0xd5: 'xend', 0xd6: 'xtest', 0xd8: 'vmrun', 0xd9: 'vmmcall', 0xda: 'vmload',
  0xdb: 'vmsave', 0xdc: 'stgi', 0xdd: 'clgi', 0xde: 'skinit', 0xdf: 'invlpga', 0xee: 'rdpkru', 0xef: 'wrpkru', 0xf8: 'swapgs',
  0xf9: 'rdtscp', 0xfa: 'monitorx', 0xfb: 'mwaitx',
};
const GRP15_MEM = ['fxsave', 'fxrstor', 'ldmxcsr', 'stmxcsr', 'xsave', 'xrstor', 'xsaveopt', 'clflush'];
const GRP15_F3_REG = ['rdfsbase', 'rdgsbase', 'wrfsbase', 'wrgsbase'];
const BT = ['bt', 'bts', 'btr', 'btc'];
const STRING: Readonly<Record<number, string>> = { 0xa4: 'movs', 0xa6: 'cmps', 0xaa: 'stos', 0xac: 'lods', 0xae: 'scas', 0x6c: 'ins', 0x6e: 'outs' };
const SIMPLE: Readonly<Record<number, string>> = {
  0x27: 'daa', 0x2f: 'das', 0x37: 'aaa', 0x3f: 'aas', 0x9b: 'fwait', 0x9c: 'pushf', 0x9d: 'popf', 0x9e: 'sahf', 0x9f: 'lahf',
  0xc9: 'leave', 0xcc: 'int3', 0xce: 'into', 0xd7: 'xlat', 0xf1: 'int1', 0xf4: 'hlt', 0xf5: 'cmc', 0xf8: 'clc', 0xf9: 'stc',
  0xfa: 'cli', 0xfb: 'sti', 0xfc: 'cld', 0xfd: 'std', 0x60: 'pusha', 0x61: 'popa', 0xd6: 'salc',
};
const SIMPLE_0F: Readonly<Record<number, string>> = {
  0x05: 'syscall', 0x06: 'clts', 0x07: 'sysret', 0x08: 'invd', 0x09: 'wbinvd', 0x0b: 'ud2', 0x0e: 'femms', 0x30: 'wrmsr',
  0x31: 'rdtsc', 0x32: 'rdmsr', 0x33: 'rdpmc', 0x34: 'sysenter', 0x35: 'sysexit', 0x37: 'getsec', 0x77: 'emms', 0xa2: 'cpuid',
  0xaa: 'rsm',
};
/** SSE/SSE2 ops with a ps/pd/ss/sd suffix chosen by the mandatory prefix (none/66/F3/F2); `packed` ones have only ps/pd. */
const SSE_FP: Readonly<Record<number, string>> = {
  0x51: 'sqrt', 0x52: 'rsqrt', 0x53: 'rcp', 0x58: 'add', 0x59: 'mul', 0x5c: 'sub', 0x5d: 'min', 0x5e: 'div', 0x5f: 'max', 0xc2: 'cmp',
};
const SSE_PACKED: Readonly<Record<number, string>> = {
  0x14: 'unpcklp', 0x15: 'unpckhp', 0x28: 'movap', 0x29: 'movap', 0x2b: 'movntp', 0x50: 'movmskp', 0x54: 'andp', 0x55: 'andnp',
  0x56: 'orp', 0x57: 'xorp', 0xc6: 'shufp', 0x12: 'movlp', 0x13: 'movlp', 0x16: 'movhp', 0x17: 'movhp',
};
/** Conversions, named by mandatory prefix none/66/F3/F2. */
const SSE_CVT: Readonly<Record<number, string>> = {
  0x2a: 'cvtpi2ps cvtpi2pd cvtsi2ss cvtsi2sd', 0x2c: 'cvttps2pi cvttpd2pi cvttss2si cvttsd2si', 0x2d: 'cvtps2pi cvtpd2pi cvtss2si cvtsd2si',
  0x5a: 'cvtps2pd cvtpd2ps cvtss2sd cvtsd2ss', 0x5b: 'cvtdq2ps cvtps2dq cvttps2dq ?', 0xe6: '? cvttpd2dq cvtdq2pd cvtpd2dq',
};
/** MMX/SSE2 integer ops 0F 60-6D and 0F D0-FE, named the same with or without 66 ('' = prefix-dependent, handled apart). */
const SSE_INT_60 = 'punpcklbw punpcklwd punpckldq packsswb pcmpgtb pcmpgtw pcmpgtd packuswb punpckhbw punpckhwd punpckhdq packssdw punpcklqdq punpckhqdq'.split(' ');
const SSE_INT_D0 = ('addsubpd psrlw psrld psrlq paddq pmullw movq pmovmskb psubusb psubusw pminub pand paddusb paddusw pmaxub pandn ' +
  'pavgb psraw psrad pavgw pmulhuw pmulhw cvtpd2dq movntdq psubsb psubsw pminsw por paddsb paddsw pmaxsw pxor ' +
  'lddqu psllw pslld psllq pmuludq pmaddwd psadbw maskmovdqu psubb psubw psubd psubq paddb paddw paddd').split(' ');
const SSE_SHIFT_GROUPS: ReadonlyArray<ReadonlyArray<string | undefined>> = [
  [undefined, undefined, 'psrlw', undefined, 'psraw', undefined, 'psllw'],
  [undefined, undefined, 'psrld', undefined, 'psrad', undefined, 'pslld'],
  [undefined, undefined, 'psrlq', 'psrldq', undefined, undefined, 'psllq', 'pslldq'],
];

const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
const hex2 = (b: number): string => b.toString(16).padStart(2, '0');

function gpr(n: number, size: number, rex: boolean): string {
  if (size === 8) return n < 8 ? (rex ? GPR8_REX : GPR8)[n]! : `r${n}b`;
  if (n >= 8) return size === 64 ? `r${n}` : size === 32 ? `r${n}d` : `r${n}w`;
  return (size === 64 ? GPR64 : size === 32 ? GPR32 : GPR16)[n]!;
}

const PTR: Readonly<Record<number, string>> = { 8: 'byte ptr ', 16: 'word ptr ', 32: 'dword ptr ', 64: 'qword ptr ', 128: 'xmmword ptr ' };

/** Formats instructions of one decoded instance. */
class Fmt {
  readonly rex: boolean;
  constructor(readonly d: DecodedInstruction, readonly rip: bigint | undefined) {
    this.rex = d.rex !== null;
  }

  /** The ModRM r/m operand at `size` bits (0 = no size qualifier). */
  e(size: number): string {
    const a = this.d.addressMode!;
    if (a.kind === 'reg') return gpr(a.reg, size || this.d.operandSize, this.rex);
    const parts: string[] = [];
    const regSize = a.addressSize;
    if (a.base === 'rip') parts.push(regSize === 64 ? 'rip' : 'eip');
    else if (a.base !== null) parts.push(gpr(a.base, regSize, false));
    if (a.index !== null) parts.push(`${gpr(a.index, regSize, false)}${a.scale > 1 ? `*${a.scale}` : ''}`);
    let text = parts.join('+');
    if (a.disp !== 0n || parts.length === 0) {
      const neg = a.disp < 0n && parts.length > 0;
      text += parts.length ? (neg ? `-${hex(-a.disp)}` : `+${hex(a.disp)}`) : hex(a.disp);
    }
    const seg = this.d.prefixes.segment ? `${this.d.prefixes.segment}:` : '';
    return `${PTR[size] ?? ''}${seg}[${text}]`;
  }

  g(size: number): string {
    return gpr(this.d.modrm!.reg | (this.d.rex?.r ? 8 : 0), size, this.rex);
  }

  /** The immediate, sign-extended to the operand size when `signed` or when an imm32 meets a 64-bit operand (SDM Vol. 2 2.2.1.5). */
  imm(signed = false, field = this.d.immediate): string {
    const f = field!;
    const extend = signed || (this.d.operandSize === 64 && f.size === 4);
    return hex(extend ? BigInt.asUintN(this.d.operandSize, BigInt.asIntN(f.size * 8, f.value)) : f.value);
  }

  /** A relative branch target: absolute if RIP is known, else relative to this instruction ($). */
  rel(): string {
    const f = this.d.immediate!;
    const delta = BigInt(this.d.length) + BigInt.asIntN(f.size * 8, f.value);
    if (this.rip !== undefined) return hex(BigInt.asUintN(this.d.mode, this.rip + delta));
    return delta < 0n ? `$-${hex(-delta)}` : `$+${hex(delta)}`;
  }
}

/** Disassembles the instruction at the start of `bytes`; `rip` (optional) makes branch targets absolute. */
export function disassemble(bytes: Uint8Array, mode: CpuMode, rip?: bigint): string {
  let d: DecodedInstruction;
  try {
    d = decodeInstruction(bytes, mode);
  } catch (e) {
    if (e instanceof InstructionDecodeError) return `(undecodable: ${e.message.replace('cannot decode instruction: ', '')})`;
    throw e;
  }
  return formatInstruction(d, rip);
}

/** Intel-syntax text of a decoded instruction. */
export function formatInstruction(d: DecodedInstruction, rip?: bigint): string {
  const text = d.vex ? vexName(d) : d.map === 'primary' ? primary(new Fmt(d, rip)) : d.map === '0f' ? twoByte(new Fmt(d, rip)) : otherMap(d);
  const lock = d.prefixes.lock ? 'lock ' : '';
  const rep = d.map === 'primary' && (STRING[d.opcode & 0xfe] !== undefined) ? (d.prefixes.repne ? 'repne ' : d.prefixes.rep ? 'rep ' : '') : '';
  return lock + rep + text;
}

function primary(f: Fmt): string {
  const d = f.d;
  const o = d.opcode;
  const v = d.operandSize;
  const size = (o & 1) === 0 ? 8 : v;
  const simple = SIMPLE[o];
  if (simple) return simple;
  if (o < 0x40 && (o & 7) <= 5) {
    const name = ALU[o >> 3]!;
    switch (o & 7) {
      case 0: case 1: return `${name} ${f.e(size)}, ${f.g(size)}`;
      case 2: case 3: return `${name} ${f.g(size)}, ${f.e(size)}`;
      case 4: return `${name} al, ${f.imm()}`;
      default: return `${name} ${gpr(0, v, false)}, ${f.imm()}`;
    }
  }
  const stackSize = d.mode === 64 ? (d.prefixes.opsize ? 16 : 64) : v;
  if (o >= 0x40 && o <= 0x4f) return `${o < 0x48 ? 'inc' : 'dec'} ${gpr(o & 7, v, false)}`;
  if (o >= 0x50 && o <= 0x5f) return `${o < 0x58 ? 'push' : 'pop'} ${gpr((o & 7) | (d.rex?.b ? 8 : 0), stackSize, false)}`;
  if (o >= 0x70 && o <= 0x7f) return `j${CC[o & 15]} ${f.rel()}`;
  if (o >= 0x80 && o <= 0x83) return `${ALU[d.modrm!.reg]} ${f.e(o === 0x80 || o === 0x82 ? 8 : v)}, ${f.imm(o === 0x83)}`;
  if (o >= 0x91 && o <= 0x97) return `xchg ${gpr((o & 7) | (d.rex?.b ? 8 : 0), v, false)}, ${gpr(0, v, false)}`;
  if (o >= 0xb0 && o <= 0xbf) return `mov ${gpr((o & 7) | (d.rex?.b ? 8 : 0), o < 0xb8 ? 8 : v, f.rex)}, ${f.imm()}`;
  if (o >= 0xd8 && o <= 0xdf) return `(x87 escape ${hex2(o)} /${d.modrm!.reg})`;
  if (STRING[o & 0xfe]) return `${STRING[o & 0xfe]}${(o & 1) === 0 ? 'b' : v === 16 ? 'w' : v === 32 ? 'd' : 'q'}`;
  const shiftSrc: Readonly<Record<number, string>> = { 0xc0: 'imm', 0xc1: 'imm', 0xd0: '1', 0xd1: '1', 0xd2: 'cl', 0xd3: 'cl' };
  if (shiftSrc[o]) return `${SHIFT[d.modrm!.reg]} ${f.e(size)}, ${shiftSrc[o] === 'imm' ? f.imm() : shiftSrc[o]}`;
  switch (o) {
    case 0x63: return d.mode === 64 ? `movsxd ${f.g(v)}, ${f.e(32)}` : `arpl ${f.e(16)}, ${f.g(16)}`;
    case 0x68: case 0x6a: return `push ${f.imm(o === 0x6a)}`;
    case 0x69: case 0x6b: return `imul ${f.g(v)}, ${f.e(v)}, ${f.imm(o === 0x6b)}`;
    case 0x84: case 0x85: return `test ${f.e(size)}, ${f.g(size)}`;
    case 0x86: case 0x87: return `xchg ${f.e(size)}, ${f.g(size)}`;
    case 0x88: case 0x89: return `mov ${f.e(size)}, ${f.g(size)}`;
    case 0x8a: case 0x8b: return `mov ${f.g(size)}, ${f.e(size)}`;
    case 0x8c: return `mov ${f.e(16)}, ${SREGS[d.modrm!.reg]}`;
    case 0x8d: return `lea ${f.g(v)}, ${f.e(0)}`;
    case 0x8e: return `mov ${SREGS[d.modrm!.reg]}, ${f.e(16)}`;
    case 0x8f: return `pop ${f.e(stackSize)}`;
    case 0x90: return d.prefixes.rep ? 'pause' : 'nop';
    case 0x98: return v === 16 ? 'cbw' : v === 32 ? 'cwde' : 'cdqe';
    case 0x99: return v === 16 ? 'cwd' : v === 32 ? 'cdq' : 'cqo';
    case 0xa0: case 0xa1: return `mov ${gpr(0, size, false)}, ${f.e(size)}`;
    case 0xa2: case 0xa3: return `mov ${f.e(size)}, ${gpr(0, size, false)}`;
    case 0xa8: case 0xa9: return `test ${gpr(0, size, false)}, ${f.imm()}`;
    case 0xc2: return `ret ${f.imm()}`;
    case 0xc3: return 'ret';
    case 0xc4: case 0xc5: return `${o === 0xc4 ? 'les' : 'lds'} ${f.g(v)}, ${f.e(0)}`;
    case 0xc6: case 0xc7: return d.modrm!.reg === 7 ? (o === 0xc6 ? `xabort ${f.imm()}` : `xbegin ${f.rel()}`) : `mov ${f.e(size)}, ${f.imm()}`;
    case 0xc8: return `enter ${f.imm()}, ${f.imm(false, d.immediate2)}`;
    case 0xca: return `retf ${f.imm()}`;
    case 0xcb: return 'retf';
    case 0xcd: return `int ${f.imm()}`;
    case 0xcf: return v === 16 ? 'iret' : v === 32 ? 'iretd' : 'iretq';
    case 0xd4: case 0xd5: return `${o === 0xd4 ? 'aam' : 'aad'} ${f.imm()}`;
    case 0xe0: case 0xe1: case 0xe2: return `${['loopne', 'loope', 'loop'][o - 0xe0]} ${f.rel()}`;
    case 0xe3: return `${d.addressSize === 16 ? 'jcxz' : d.addressSize === 32 ? 'jecxz' : 'jrcxz'} ${f.rel()}`;
    case 0xe4: case 0xe5: return `in ${gpr(0, size, false)}, ${f.imm()}`;
    case 0xe6: case 0xe7: return `out ${f.imm()}, ${gpr(0, size, false)}`;
    case 0xe8: return `call ${f.rel()}`;
    case 0xe9: case 0xeb: return `jmp ${f.rel()}`;
    case 0x9a: case 0xea: return `${o === 0x9a ? 'call' : 'jmp'} far ${f.imm(false, d.immediate2)}:${f.imm()}`;
    case 0xec: case 0xed: return `in ${gpr(0, size, false)}, dx`;
    case 0xee: case 0xef: return `out dx, ${gpr(0, size, false)}`;
    case 0xf6: case 0xf7: {
      const r = d.modrm!.reg;
      return r <= 1 ? `test ${f.e(size)}, ${f.imm()}` : `${GRP3[r]} ${f.e(size)}`;
    }
    case 0xfe: return `${d.modrm!.reg === 0 ? 'inc' : 'dec'} ${f.e(8)}`;
    case 0xff: {
      const r = d.modrm!.reg;
      const opSize = r >= 2 && r <= 6 && r !== 3 && r !== 5 && d.mode === 64 ? 64 : v;
      return `${GRP5[r]} ${f.e(r === 3 || r === 5 ? 0 : opSize)}`;
    }
  }
  return `(unknown opcode ${hex2(o)})`;
}

function twoByte(f: Fmt): string {
  const d = f.d;
  const o = d.opcode;
  const v = d.operandSize;
  const m = d.modrm;
  const simple = SIMPLE_0F[o];
  if (simple) return simple;
  if (o >= 0x40 && o <= 0x4f) return `cmov${CC[o & 15]} ${f.g(v)}, ${f.e(v)}`;
  if (o >= 0x80 && o <= 0x8f) return `j${CC[o & 15]} ${f.rel()}`;
  if (o >= 0x90 && o <= 0x9f) return `set${CC[o & 15]} ${f.e(8)}`;
  if (o >= 0xc8) {
    if (o <= 0xcf) return `bswap ${gpr((o & 7) | (d.rex?.b ? 8 : 0), v, false)}`;
    if (o === 0xff) return `ud0 ${f.g(32)}, ${f.e(32)}`;
  }
  const x64 = d.rex?.w ? '64' : '';
  switch (o) {
    case 0x00: return `${GRP6[m!.reg]} ${f.e(16)}`;
    case 0x01:
      if (m!.mod === 3) return GRP7_REG[0xc0 | (m!.reg << 3) | m!.rm] ?? `(unknown opcode 0f 01 ${hex2(0xc0 | (m!.reg << 3) | m!.rm)})`;
      return `${GRP7_MEM[m!.reg]} ${f.e(0)}`;
    case 0x02: case 0x03: return `${o === 2 ? 'lar' : 'lsl'} ${f.g(v)}, ${f.e(16)}`;
    case 0x0d: return `prefetchw ${f.e(0)}`;
    case 0x18: return `prefetch${['nta', 't0', 't1', 't2'][m!.reg] ?? ' (hint)'} ${f.e(0)}`;
    case 0x1e:
      if (d.prefixes.rep && m!.mod === 3 && (m!.rm === 2 || m!.rm === 3) && m!.reg === 7) return m!.rm === 2 ? 'endbr64' : 'endbr32';
      return `nop ${f.e(v)}`;
    case 0x1f: return `nop ${f.e(v)}`;
    case 0x20: case 0x22: {
      const cr = `cr${m!.reg | (d.rex?.r ? 8 : 0)}`;
      const reg = gpr(d.addressMode!.kind === 'reg' ? d.addressMode!.reg : 0, d.mode === 64 ? 64 : 32, false);
      return o === 0x20 ? `mov ${reg}, ${cr}` : `mov ${cr}, ${reg}`;
    }
    case 0x21: case 0x23: {
      const dr = `dr${m!.reg | (d.rex?.r ? 8 : 0)}`;
      const reg = gpr(d.addressMode!.kind === 'reg' ? d.addressMode!.reg : 0, d.mode === 64 ? 64 : 32, false);
      return o === 0x21 ? `mov ${reg}, ${dr}` : `mov ${dr}, ${reg}`;
    }
    case 0xa0: case 0xa8: return `push ${o === 0xa0 ? 'fs' : 'gs'}`;
    case 0xa1: case 0xa9: return `pop ${o === 0xa1 ? 'fs' : 'gs'}`;
    case 0xa3: case 0xab: case 0xb3: case 0xbb: return `${BT[(o >> 3) & 3]} ${f.e(v)}, ${f.g(v)}`;
    case 0xa4: case 0xac: return `${o === 0xa4 ? 'shld' : 'shrd'} ${f.e(v)}, ${f.g(v)}, ${f.imm()}`;
    case 0xa5: case 0xad: return `${o === 0xa5 ? 'shld' : 'shrd'} ${f.e(v)}, ${f.g(v)}, cl`;
    case 0xae:
      if (m!.mod !== 3) {
        const name = d.prefixes.opsize && m!.reg >= 6 ? (m!.reg === 6 ? 'clwb' : 'clflushopt') : GRP15_MEM[m!.reg]!;
        return `${name}${!d.prefixes.opsize && m!.reg !== 2 && m!.reg !== 3 && m!.reg !== 7 ? x64 : ''} ${f.e(0)}`;
      }
      if (d.prefixes.rep && m!.reg <= 3) return `${GRP15_F3_REG[m!.reg]} ${f.e(v)}`;
      return ({ 5: 'lfence', 6: 'mfence', 7: 'sfence' } as Record<number, string>)[m!.reg] ?? '(unknown opcode 0f ae)';
    case 0xaf: return `imul ${f.g(v)}, ${f.e(v)}`;
    case 0xb0: case 0xb1: return `cmpxchg ${f.e(o === 0xb0 ? 8 : v)}, ${f.g(o === 0xb0 ? 8 : v)}`;
    case 0xb2: case 0xb4: case 0xb5: return `${o === 0xb2 ? 'lss' : o === 0xb4 ? 'lfs' : 'lgs'} ${f.g(v)}, ${f.e(0)}`;
    case 0xb6: case 0xb7: case 0xbe: case 0xbf:
      return `${o < 0xb8 ? 'movzx' : 'movsx'} ${f.g(v)}, ${f.e((o & 1) === 0 ? 8 : 16)}`;
    case 0xb8: return d.prefixes.rep ? `popcnt ${f.g(v)}, ${f.e(v)}` : '(unknown opcode 0f b8)';
    case 0xb9: return `ud1 ${f.g(32)}, ${f.e(32)}`;
    case 0xba: return `${BT[m!.reg & 3]} ${f.e(v)}, ${f.imm()}`;
    case 0xbc: case 0xbd: {
      const name = d.prefixes.rep ? (o === 0xbc ? 'tzcnt' : 'lzcnt') : o === 0xbc ? 'bsf' : 'bsr';
      return `${name} ${f.g(v)}, ${f.e(v)}`;
    }
    case 0xc0: case 0xc1: return `xadd ${f.e(o === 0xc0 ? 8 : v)}, ${f.g(o === 0xc0 ? 8 : v)}`;
    case 0xc3: return `movnti ${f.e(v)}, ${f.g(v)}`;
    case 0xc7: {
      if (m!.mod === 3) {
        if (m!.reg === 6) return `rdrand ${f.e(v)}`;
        if (m!.reg === 7) return d.prefixes.rep ? `rdpid ${f.e(d.mode === 64 ? 64 : 32)}` : `rdseed ${f.e(v)}`;
        return '(unknown opcode 0f c7)';
      }
      if (m!.reg === 1) return d.rex?.w ? `cmpxchg16b ${f.e(128)}` : `cmpxchg8b ${f.e(64)}`;
      const name = ({ 3: 'xrstors', 4: 'xsavec', 5: 'xsaves', 6: 'vmptrld', 7: 'vmptrst' } as Record<number, string>)[m!.reg];
      return name ? `${name}${m!.reg <= 5 ? x64 : ''} ${f.e(0)}` : '(unknown opcode 0f c7)';
    }
  }
  const name = sseName(d);
  return name && name !== '?' ? name : `(unknown opcode 0f ${hex2(o)})`;
}

/** The name of an SSE-family instruction in the 0F map from its mandatory prefix `pp` (0 none, 1 66, 2 F3, 3 F2), or null. */
function sseName(d: DecodedInstruction, pp = d.prefixes.opsize ? 1 : d.prefixes.lastRep === 0xf3 ? 2 : d.prefixes.lastRep === 0xf2 ? 3 : 0): string | null {
  const o = d.opcode;
  const cvt = SSE_CVT[o];
  if (cvt) return cvt.split(' ')[pp]!;
  const fp = SSE_FP[o];
  if (fp) return fp + ['ps', 'pd', 'ss', 'sd'][pp];
  const packed = SSE_PACKED[o];
  if (packed) return packed + (pp === 1 ? 'd' : 's');
  if (o >= 0x60 && o <= 0x6d) return SSE_INT_60[o - 0x60]!;
  if (o >= 0xd0 && o <= 0xfe) return SSE_INT_D0[o - 0xd0]!;
  if (o >= 0x71 && o <= 0x73) return SSE_SHIFT_GROUPS[o - 0x71]![d.modrm!.reg] ?? null;
  switch (o) {
    case 0x10: case 0x11: return ['movups', 'movupd', 'movss', 'movsd'][pp]!;
    case 0x2e: case 0x2f: return `${o === 0x2e ? 'ucomis' : 'comis'}${pp === 1 ? 'd' : 's'}`;
    case 0x6e: return 'movd';
    case 0x7e: return pp === 2 ? 'movq' : 'movd';
    case 0x6f: case 0x7f: return ['movq', 'movdqa', 'movdqu', '?'][pp]!;
    case 0x70: return ['pshufw', 'pshufd', 'pshufhw', 'pshuflw'][pp]!;
    case 0x74: case 0x75: case 0x76: return ['pcmpeqb', 'pcmpeqw', 'pcmpeqd'][o - 0x74]!;
    case 0xc4: return 'pinsrw';
    case 0xc5: return 'pextrw';
  }
  return null;
}

function vexName(d: DecodedInstruction): string {
  const vx = d.vex!;
  if (d.map === '0f') {
    if (d.opcode === 0x77 && vx.kind !== 'evex') return vx.l ? 'vzeroall' : 'vzeroupper';
    // EVEX renames the integer moves and logic ops (vmovdqu8, vpxorq): only the FP names carry over.
    const name = vx.kind === 'evex' && !SSE_FP[d.opcode] && !SSE_PACKED[d.opcode] ? null : sseName(d, vx.pp);
    if (name && name !== '?') return `v${name}`;
  }
  return `(${vx.kind === 'evex' ? 'evex' : 'vex'} ${d.opcodeBytes.map(hex2).join(' ')})`;
}

function otherMap(d: DecodedInstruction): string {
  if (d.map === '0f38' && (d.opcode === 0xf0 || d.opcode === 0xf1)) return d.prefixes.lastRep === 0xf2 ? 'crc32' : 'movbe';
  if (d.map === '3dnow') return `(3dnow! ${hex2(d.opcode)})`;
  return `(sse ${d.opcodeBytes.map(hex2).join(' ')})`;
}
