/**
 * Synthetic kernel images for the boot tests: a bzImage with a setup header
 * written field by field at the offsets Documentation/arch/x86/boot.rst
 * gives (literal numbers here on purpose, independent of src/boot), and a
 * minimal ELF64 vmlinux.
 */

export interface FakeBzImageOptions {
  /** Raw setup_sects byte (0 means 4). Default 4. */
  setupSects?: number;
  /** Boot protocol version. Default 0x020f. */
  version?: number;
  /** The byte at 0x201 (header end = 0x202 + it). Default 0x6a (end 0x26c). */
  jumpDisplacement?: number;
  bootFlag?: number;
  /** Bytes at 0x202..0x205. Default "HdrS". */
  magic?: string;
  loadflags?: number;
  xloadflags?: number;
  relocatable?: boolean;
  kernelAlignment?: number;
  minAlignmentLog2?: number;
  prefAddress?: bigint;
  initSize?: number;
  cmdlineSize?: number;
  initrdAddrMax?: number;
  /** The compressed payload; default an XZ magic followed by filler (a compression only the kernel decodes, so the VMM enters the bzImage itself). */
  payload?: Uint8Array;
  payloadOffset?: number;
  /** Protected-mode bytes; default payloadOffset + payload + 64 rounded up to 16. */
  kernelSize?: number;
  /** syssize override (default kernelSize / 16 rounded up). */
  syssize?: number;
  /** Cut the finished file to this many bytes. */
  truncateTo?: number;
  kernelVersion?: string;
}

export const FAKE_XZ_PAYLOAD = Uint8Array.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3, 4, 5, 6]);

/** A fake bzImage; the protected-mode part holds byte (i * 7 + 3) & 0xff at offset i (payload aside). */
export function fakeBzImage(o: FakeBzImageOptions = {}): Uint8Array {
  const setupSects = o.setupSects ?? 4;
  const setupSize = ((setupSects === 0 ? 4 : setupSects) + 1) * 512;
  const payload = o.payload ?? FAKE_XZ_PAYLOAD;
  const payloadOffset = o.payloadOffset ?? 0x3a0;
  const kernelSize = o.kernelSize ?? Math.ceil((payloadOffset + payload.length + 64) / 16) * 16;
  const file = new Uint8Array(setupSize + kernelSize);
  const v = new DataView(file.buffer);
  for (let i = 0; i < kernelSize; i++) file[setupSize + i] = (i * 7 + 3) & 0xff;
  file.set(payload, setupSize + payloadOffset);

  file[0x1f1] = setupSects;
  v.setUint32(0x1f4, o.syssize ?? Math.ceil(kernelSize / 16), true);
  v.setUint16(0x1fa, 0xffff, true);
  v.setUint16(0x1fe, o.bootFlag ?? 0xaa55, true);
  file[0x200] = 0xeb;
  file[0x201] = o.jumpDisplacement ?? 0x6a;
  const magic = o.magic ?? 'HdrS';
  for (let i = 0; i < 4; i++) file[0x202 + i] = magic.charCodeAt(i);
  v.setUint16(0x206, o.version ?? 0x020f, true);
  file[0x211] = o.loadflags ?? 0x01;
  v.setUint32(0x214, 0x100000, true);
  v.setUint32(0x22c, o.initrdAddrMax ?? 0x7fffffff, true);
  v.setUint32(0x230, o.kernelAlignment ?? 0x200000, true);
  file[0x234] = (o.relocatable ?? true) ? 1 : 0;
  file[0x235] = o.minAlignmentLog2 ?? 21;
  v.setUint16(0x236, o.xloadflags ?? 0x0003, true);
  v.setUint32(0x238, o.cmdlineSize ?? 2047, true);
  v.setUint32(0x248, payloadOffset, true);
  v.setUint32(0x24c, payload.length, true);
  v.setBigUint64(0x258, o.prefAddress ?? 0x1000000n, true);
  v.setUint32(0x260, o.initSize ?? 0x2000000, true);
  if (o.kernelVersion !== undefined) {
    const at = 0x400;
    v.setUint16(0x20e, at - 0x200, true);
    for (let i = 0; i < o.kernelVersion.length; i++) file[at + i] = o.kernelVersion.charCodeAt(i);
    file[at + o.kernelVersion.length] = 0;
  }
  return o.truncateTo === undefined ? file : file.slice(0, o.truncateTo);
}

export interface FakeSegment {
  vaddr: bigint;
  paddr: bigint;
  data: Uint8Array;
  memsz: number;
  type?: number;
}

export interface FakeElfOptions {
  cls?: number;
  data?: number;
  type?: number;
  machine?: number;
  entry?: bigint;
  segments?: FakeSegment[];
}

/** A minimal ELF64 file: header, program headers, then each segment's bytes. */
export function fakeElf(o: FakeElfOptions = {}): Uint8Array {
  const segments = o.segments ?? [];
  const phoff = 64;
  let dataAt = phoff + 56 * segments.length;
  const size = dataAt + segments.reduce((n, s) => n + s.data.length, 0);
  const file = new Uint8Array(size);
  const v = new DataView(file.buffer);
  file.set([0x7f, 0x45, 0x4c, 0x46, o.cls ?? 2, o.data ?? 1, 1]);
  v.setUint16(16, o.type ?? 2, true);
  v.setUint16(18, o.machine ?? 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, o.entry ?? 0x1000000n, true);
  v.setBigUint64(32, BigInt(phoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(54, 56, true);
  v.setUint16(56, segments.length, true);
  segments.forEach((s, i) => {
    const at = phoff + i * 56;
    v.setUint32(at, s.type ?? 1, true);
    v.setUint32(at + 4, 5, true);
    v.setBigUint64(at + 8, BigInt(dataAt), true);
    v.setBigUint64(at + 16, s.vaddr, true);
    v.setBigUint64(at + 24, s.paddr, true);
    v.setBigUint64(at + 32, BigInt(s.data.length), true);
    v.setBigUint64(at + 40, BigInt(s.memsz), true);
    v.setBigUint64(at + 48, 0x200000n, true);
    file.set(s.data, dataAt);
    dataAt += s.data.length;
  });
  return file;
}
