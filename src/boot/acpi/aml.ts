/**
 * A small AML encoder: just what a static DSDT needs (ACPI 6.x §20, "ACPI
 * Machine Language (AML) Specification"). Every function returns the bytes
 * of one complete term; nest them by passing bytes in.
 *
 *   name strings  §20.2.2 (NameSeg, RootChar '\', ParentPrefixChar '^', DualNamePrefix, MultiNamePrefix)
 *   integers      §20.2.3 (ZeroOp, OneOp, OnesOp, Byte/Word/DWord/QWordPrefix)
 *   PkgLength     §20.2.4
 *   Name, Scope   §20.2.5.1 (DefName, DefScope)
 *   Device        §20.2.5.2 (DefDevice: ExtOpPrefix DeviceOp)
 *   Package       §20.2.5.4 (DefPackage)
 *   Buffer        §20.2.5.4 (DefBuffer)
 *   Method        §20.2.5.2 (DefMethod, here with an empty body)
 */
import { concatBytes } from '../bytes.js';

export const AmlOp = {
  Zero: 0x00,
  One: 0x01,
  Name: 0x08,
  BytePrefix: 0x0a,
  WordPrefix: 0x0b,
  DWordPrefix: 0x0c,
  StringPrefix: 0x0d,
  QWordPrefix: 0x0e,
  Scope: 0x10,
  Package: 0x12,
  Buffer: 0x11,
  Method: 0x14,
  DualNamePrefix: 0x2e,
  MultiNamePrefix: 0x2f,
  ExtOpPrefix: 0x5b,
  RootChar: 0x5c,
  ParentPrefixChar: 0x5e,
  Device: 0x82, // after ExtOpPrefix
  Ones: 0xff,
} as const;

/** The largest length a PkgLength can encode (4 bytes: 4 + 8 + 8 + 8 bits). */
export const AML_MAX_PKG_LENGTH = 0x0fffffff;

/**
 * The PkgLength for `contentLength` bytes that follow it. The encoded value
 * counts the PkgLength bytes themselves (§20.2.4): one byte up to 63 in
 * total, else bits 7:6 of the lead byte give the number of following bytes,
 * its bits 3:0 the low nibble, and each following byte the next 8 bits.
 */
export function amlPkgLength(contentLength: number): Uint8Array {
  if (!Number.isInteger(contentLength) || contentLength < 0) throw new RangeError(`bad AML package length ${contentLength}`);
  if (contentLength + 1 <= 0x3f) return Uint8Array.of(contentLength + 1);
  for (let extra = 1; extra <= 3; extra++) {
    const total = contentLength + 1 + extra;
    if (total < 2 ** (4 + 8 * extra)) {
      const out = new Uint8Array(1 + extra);
      out[0] = (extra << 6) | (total & 0x0f);
      for (let i = 0; i < extra; i++) out[1 + i] = (total >> (4 + 8 * i)) & 0xff;
      return out;
    }
  }
  throw new RangeError(`AML package of ${contentLength} bytes exceeds the PkgLength limit (${AML_MAX_PKG_LENGTH})`);
}

/** A NameSeg: 4 characters, lead A-Z or '_', then A-Z, 0-9 or '_'; shorter names are padded with '_'. */
function nameSeg(seg: string): number[] {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) throw new RangeError(`"${seg}" is not a valid AML name segment`);
  return Array.from(seg.padEnd(4, '_'), (c) => c.charCodeAt(0));
}

/**
 * A NameString: an optional root ('\') or parent ('^'...) prefix, then
 * dot-separated segments: `\_SB_.PCI0`, `^FOO`, `_HID`.
 */
export function amlNameString(path: string): Uint8Array {
  let i = 0;
  const prefix: number[] = [];
  if (path.startsWith('\\')) {
    prefix.push(AmlOp.RootChar);
    i = 1;
  } else {
    while (path[i] === '^') {
      prefix.push(AmlOp.ParentPrefixChar);
      i++;
    }
  }
  const rest = path.slice(i);
  const segs = rest === '' ? [] : rest.split('.').map(nameSeg);
  if (segs.length === 0) return Uint8Array.from([...prefix, 0x00]); // NullName
  if (segs.length === 1) return Uint8Array.from([...prefix, ...segs[0]!]);
  if (segs.length === 2) return Uint8Array.from([...prefix, AmlOp.DualNamePrefix, ...segs.flat()]);
  if (segs.length > 255) throw new RangeError('AML name path too long');
  return Uint8Array.from([...prefix, AmlOp.MultiNamePrefix, segs.length, ...segs.flat()]);
}

/** An integer constant in its shortest encoding. */
export function amlInteger(value: number | bigint): Uint8Array {
  const v = BigInt(value);
  if (v < 0n || v > 0xffffffffffffffffn) throw new RangeError(`AML integer out of range: ${value}`);
  if (v === 0n) return Uint8Array.of(AmlOp.Zero);
  if (v === 1n) return Uint8Array.of(AmlOp.One);
  if (v === 0xffffffffffffffffn) return Uint8Array.of(AmlOp.Ones);
  const sized = (prefix: number, bytes: number): Uint8Array => {
    const out = new Uint8Array(1 + bytes);
    out[0] = prefix;
    for (let i = 0; i < bytes; i++) out[1 + i] = Number((v >> BigInt(8 * i)) & 0xffn);
    return out;
  };
  if (v <= 0xffn) return sized(AmlOp.BytePrefix, 1);
  if (v <= 0xffffn) return sized(AmlOp.WordPrefix, 2);
  if (v <= 0xffffffffn) return sized(AmlOp.DWordPrefix, 4);
  return sized(AmlOp.QWordPrefix, 8);
}

/** A string constant: StringPrefix, ASCII characters 0x01-0x7f, NUL. */
export function amlString(text: string): Uint8Array {
  const out = new Uint8Array(text.length + 2);
  out[0] = AmlOp.StringPrefix;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 1 || c > 0x7f) throw new RangeError(`AML strings are 7-bit ASCII without NUL: "${text}"`);
    out[1 + i] = c;
  }
  return out;
}

/**
 * The 32-bit value of an EISA ID like "PNP0A03" (ASL EISAID(), ACPI 6.x
 * §19.6.35): three letters packed 5 bits each into a big-endian 16-bit word,
 * then four hex digits as two bytes, the whole read as a little-endian dword.
 */
export function eisaId(id: string): number {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`"${id}" is not an EISA ID (three capitals and four hex digits)`);
  const letters = ((id.charCodeAt(0) - 0x40) << 10) | ((id.charCodeAt(1) - 0x40) << 5) | (id.charCodeAt(2) - 0x40);
  const product = parseInt(id.slice(3), 16);
  const bytes = [letters >> 8, letters & 0xff, product >> 8, product & 0xff];
  return (bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24)) >>> 0;
}

/** EISAID("...") as ASL compiles it: always a DWord constant. */
export function amlEisaId(id: string): Uint8Array {
  const v = eisaId(id);
  return Uint8Array.of(AmlOp.DWordPrefix, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
}

/** Name(path, value). */
export function amlName(path: string, value: Uint8Array): Uint8Array {
  return concatBytes([Uint8Array.of(AmlOp.Name), amlNameString(path), value]);
}

/** Package(){elements}: PackageOp PkgLength NumElements elements. At most 255 elements. */
export function amlPackage(elements: readonly Uint8Array[]): Uint8Array {
  if (elements.length > 255) throw new RangeError('an AML Package holds at most 255 elements (VarPackage is not supported)');
  const content = concatBytes([Uint8Array.of(elements.length), ...elements]);
  return concatBytes([Uint8Array.of(AmlOp.Package), amlPkgLength(content.length), content]);
}

/** Scope(path){terms}. */
export function amlScope(path: string, terms: readonly Uint8Array[]): Uint8Array {
  const content = concatBytes([amlNameString(path), ...terms]);
  return concatBytes([Uint8Array.of(AmlOp.Scope), amlPkgLength(content.length), content]);
}

/** Device(path){terms}. */
export function amlDevice(path: string, terms: readonly Uint8Array[]): Uint8Array {
  const content = concatBytes([amlNameString(path), ...terms]);
  return concatBytes([Uint8Array.of(AmlOp.ExtOpPrefix, AmlOp.Device), amlPkgLength(content.length), content]);
}

/** Buffer(){bytes}: BufferOp PkgLength BufferSize bytes. */
export function amlBuffer(bytes: ArrayLike<number>): Uint8Array {
  const content = concatBytes([amlInteger(bytes.length), Uint8Array.from(bytes)]);
  return concatBytes([Uint8Array.of(AmlOp.Buffer), amlPkgLength(content.length), content]);
}

/** Method(name, args){} with an empty body: MethodOp PkgLength NameString MethodFlags (not serialized, sync level 0). */
export function amlEmptyMethod(name: string, args: number): Uint8Array {
  if (!Number.isInteger(args) || args < 0 || args > 7) throw new RangeError(`an AML method takes 0-7 arguments (got ${args})`);
  const content = concatBytes([amlNameString(name), Uint8Array.of(args)]);
  return concatBytes([Uint8Array.of(AmlOp.Method), amlPkgLength(content.length), content]);
}
