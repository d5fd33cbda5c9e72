/** What an initramfs builder needs to know of an ELF program. */

const PT_INTERP = 3;

/**
 * For an ELF file: its program interpreter ("/lib64/ld-linux-x86-64.so.2"),
 * or null for a static program. undefined when `bytes` is not an ELF file.
 */
export function elfInterpreter(bytes: Uint8Array): string | null | undefined {
  if (bytes.length < 64 || bytes[0] !== 0x7f || bytes[1] !== 0x45 || bytes[2] !== 0x4c || bytes[3] !== 0x46) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes[4] !== 2 || bytes[5] !== 1) return undefined; // ELFCLASS64, little-endian
  const phoff = Number(view.getBigUint64(32, true));
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phentsize < 56 || phoff + phnum * phentsize > bytes.length) return undefined;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (view.getUint32(at, true) !== PT_INTERP) continue;
    const offset = Number(view.getBigUint64(at + 8, true));
    const size = Number(view.getBigUint64(at + 32, true));
    if (offset + size > bytes.length) return undefined;
    return new TextDecoder().decode(bytes.subarray(offset, offset + size)).replace(/\0.*$/s, '');
  }
  return null;
}

/**
 * True for an x86-64 ELF executable without a program interpreter, i.e. one
 * that runs with nothing else in the file system (no ld.so, no libc.so).
 */
export function isStaticX86_64Elf(bytes: Uint8Array): boolean {
  if (elfInterpreter(bytes) !== null) return false;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint16(18, true) === 62 && view.getUint16(56, true) > 0;
}
