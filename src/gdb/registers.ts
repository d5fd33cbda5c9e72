/**
 * The x86-64 registers the stub offers gdb, in gdb's amd64 numbering: the
 * features org.gnu.gdb.i386.core (general, segment selectors, x87),
 * org.gnu.gdb.i386.sse (xmm0-15, mxcsr) and org.gnu.gdb.i386.segments
 * (fs_base, gs_base), as the GDB manual's "i386 Features" names them. The
 * order here is the order of `g` packets and of register numbers in `p`/`P`.
 */

export interface RegisterSpec {
  name: string;
  bits: number;
  /** A gdb target-description type. */
  type: string;
  feature: 'core' | 'sse' | 'segments';
  group?: string;
}

const gpr = (name: string, type = 'int64'): RegisterSpec => ({ name, bits: 64, type, feature: 'core', group: 'general' });
const seg = (name: string): RegisterSpec => ({ name, bits: 32, type: 'int32', feature: 'core', group: 'general' });
const x87 = (name: string): RegisterSpec => ({ name, bits: 32, type: 'int', feature: 'core', group: 'float' });

export const REGISTERS: readonly RegisterSpec[] = [
  ...['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi'].map((n) => gpr(n)),
  gpr('rbp', 'data_ptr'),
  gpr('rsp', 'data_ptr'),
  ...['r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'].map((n) => gpr(n)),
  gpr('rip', 'code_ptr'),
  { name: 'eflags', bits: 32, type: 'i386_eflags', feature: 'core', group: 'general' },
  ...['cs', 'ss', 'ds', 'es', 'fs', 'gs'].map(seg),
  ...Array.from({ length: 8 }, (_, i): RegisterSpec => ({ name: `st${i}`, bits: 80, type: 'i387_ext', feature: 'core', group: 'float' })),
  ...['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'].map(x87),
  ...Array.from({ length: 16 }, (_, i): RegisterSpec => ({ name: `xmm${i}`, bits: 128, type: 'vec128', feature: 'sse' })),
  { name: 'mxcsr', bits: 32, type: 'i386_mxcsr', feature: 'sse', group: 'vector' },
  { name: 'fs_base', bits: 64, type: 'int', feature: 'segments' },
  { name: 'gs_base', bits: 64, type: 'int', feature: 'segments' },
];

export const REGISTER_INDEX: ReadonlyMap<string, number> = new Map(REGISTERS.map((r, i) => [r.name, i]));

/** Register values by name, each exactly `bits / 8` bytes, little-endian. */
export type RegisterValues = Record<string, Uint8Array>;

const EFLAGS = ['CF', '', 'PF', undefined, 'AF', undefined, 'ZF', 'SF', 'TF', 'IF', 'DF', 'OF', undefined, undefined, 'NT', undefined, 'RF', 'VM', 'AC', 'VIF', 'VIP', 'ID'];
const MXCSR = ['IE', 'DE', 'ZE', 'OE', 'UE', 'PE', 'DAZ', 'IM', 'DM', 'ZM', 'OM', 'UM', 'PM', 'FZ'];

const flags = (id: string, names: ReadonlyArray<string | undefined>): string =>
  `<flags id="${id}" size="4">${names.map((n, i) => (n === undefined ? '' : `<field name="${n}" start="${i}" end="${i}"/>`)).join('')}</flags>`;

const VEC128 =
  '<vector id="v8bf16" type="bfloat16" count="8"/><vector id="v8h" type="ieee_half" count="8"/>' +
  '<vector id="v4f" type="ieee_single" count="4"/><vector id="v2d" type="ieee_double" count="2"/>' +
  '<vector id="v16i8" type="int8" count="16"/><vector id="v8i16" type="int16" count="8"/>' +
  '<vector id="v4i32" type="int32" count="4"/><vector id="v2i64" type="int64" count="2"/>' +
  '<union id="vec128"><field name="v8_bfloat16" type="v8bf16"/><field name="v8_half" type="v8h"/><field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>' +
  '<field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/><field name="v4_int32" type="v4i32"/>' +
  '<field name="v2_int64" type="v2i64"/><field name="uint128" type="uint128"/></union>';

function regXml(r: RegisterSpec): string {
  return `<reg name="${r.name}" bitsize="${r.bits}" type="${r.type}" regnum="${REGISTER_INDEX.get(r.name)}"${r.group ? ` group="${r.group}"` : ''}/>`;
}

/** target.xml: the whole description in one document (features inline). */
export function targetXml(): string {
  const regs = (f: RegisterSpec['feature']): string => REGISTERS.filter((r) => r.feature === f).map(regXml).join('');
  return (
    '<?xml version="1.0"?><!DOCTYPE target SYSTEM "gdb-target.dtd"><target version="1.0">' +
    '<architecture>i386:x86-64</architecture>' +
    `<feature name="org.gnu.gdb.i386.core">${flags('i386_eflags', EFLAGS)}${regs('core')}</feature>` +
    `<feature name="org.gnu.gdb.i386.sse">${VEC128}${flags('i386_mxcsr', MXCSR)}${regs('sse')}</feature>` +
    `<feature name="org.gnu.gdb.i386.segments">${regs('segments')}</feature>` +
    '</target>'
  );
}

/** `value` as `bytes` little-endian bytes. */
export function leBytes(value: bigint, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  let v = BigInt.asUintN(bytes * 8, value);
  for (let i = 0; i < bytes; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

export function fromLeBytes(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}
