import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/src/guests/ is three levels below it). */
export const PACKAGE_ROOT = resolve(fileURLToPath(new URL('../../../', import.meta.url)));
/** Shared guest code (serial output, locks) that every guest may include. */
export const GUEST_LIB = join(PACKAGE_ROOT, 'guests', 'lib');

export interface GuestSpec {
  /** Assembly (.S, preprocessed) or freestanding C (.c) sources; the first holds the entry point, the last names the guest. */
  sources: string[];
  /** Guest-physical address the binary is linked for and loaded at. */
  loadAddress: number;
  /** Output directory for the flat binary (default build/guests). */
  outDir?: string;
  /** Extra preprocessor definitions. */
  defines?: Record<string, string | number>;
}

const CFLAGS = [
  '-ffreestanding', '-fno-pic', '-fno-pie', '-fno-stack-protector', '-fno-asynchronous-unwind-tables',
  '-mno-sse', '-mno-red-zone', '-mgeneral-regs-only', '-nostdlib', '-O2', '-Wall',
];

/**
 * Builds a flat binary from guest sources with the host toolchain (gcc, ld,
 * objcopy), linked at `loadAddress` with the entry section first. Outputs
 * are cached by a hash of the sources and flags.
 */
export function buildGuest(spec: GuestSpec): string {
  const outDir = spec.outDir ?? join(PACKAGE_ROOT, 'build', 'guests');
  const defines = Object.entries(spec.defines ?? {}).map(([k, v]) => `-D${k}=${v}`);
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ load: spec.loadAddress, defines, CFLAGS }));
  for (const s of spec.sources) hash.update(readFileSync(s));
  for (const lib of ['guest.h', 'kit.h', 'serial64.S', 'start64.S', 'virtio.h', 'ring3.h']) {
    const p = join(GUEST_LIB, lib);
    if (existsSync(p)) hash.update(readFileSync(p));
  }
  // Named after the guest's own source (the last; shared runtime comes first).
  const name = basename(spec.sources[spec.sources.length - 1]!).replace(/\.[^.]+$/, '');
  const out = join(outDir, `${name}-${hash.digest('hex').slice(0, 12)}.bin`);
  if (existsSync(out)) return out;

  const work = join(outDir, `.${name}-${process.pid}`);
  mkdirSync(work, { recursive: true });
  const objects = spec.sources.map((src, i) => {
    const obj = join(work, `${i}.o`);
    run('gcc', [...CFLAGS, ...defines, `-I${GUEST_LIB}`, `-I${dirname(src)}`, '-c', src, '-o', obj]);
    return obj;
  });
  const script = join(work, 'link.ld');
  writeFileSync(script, linkerScript(spec.loadAddress));
  const elf = join(work, 'guest.elf');
  run('ld', ['-m', 'elf_x86_64', '-nostdlib', '-static', '--no-warn-rwx-segments', '-T', script, '-o', elf, ...objects]);
  const tmp = `${out}.${process.pid}`;
  run('objcopy', ['-O', 'binary', elf, tmp]);
  renameSync(tmp, out);
  // Keep the ELF beside the binary: symbols for debugging a guest.
  renameSync(elf, out.replace(/\.bin$/, '.elf'));
  rmSync(work, { recursive: true, force: true });
  return out;
}

function linkerScript(load: number): string {
  return `ENTRY(_start)
SECTIONS {
  . = 0x${load.toString(16)};
  .text : { *(.text.entry) *(.text .text.*) }
  .rodata : { *(.rodata .rodata.*) }
  .data : { *(.data .data.*) }
  .bss : { *(.bss .bss.*) *(COMMON) }
  /DISCARD/ : { *(.note.*) *(.comment) *(.eh_frame) }
}
`;
}

function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string; code?: string };
    if (err.code === 'ENOENT') throw new Error(`building a guest needs \`${cmd}\` (install gcc and binutils)`);
    throw new Error(`${cmd} failed building a guest:\n${err.stderr?.toString() ?? err.message}`);
  }
}
