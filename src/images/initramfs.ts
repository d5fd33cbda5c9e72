/**
 * Initramfs images for Linux guests: nodevisor's static /init
 * (guests/linux/init.c), optionally Debian's busybox-static with every
 * applet linked, the user's own files, an init script or a run list. The
 * archive is an uncompressed newc cpio: the guest kernel unpacks it, and
 * where its ring 0 is emulated a gzip'd archive unpacks several times
 * slower than a plain one.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { basename, join } from 'node:path';
import { cpioArchive, normalizeCpioPath, type CpioEntry } from '../boot/cpio.js';
import { NodevisorError } from '../kvm/errors.js';
import { busyboxApplets, fetchBusybox } from './busybox.js';
import { elfInterpreter, isStaticX86_64Elf } from './elf-info.js';
import { guestProgram } from './guest-programs.js';

/** Where /init looks for what to run (see guests/linux/init.c). */
export const INIT_SCRIPT_PATH = 'etc/nodevisor/init-script';
export const RUN_LIST_PATH = 'etc/nodevisor/run';

export interface InitramfsAddition {
  /** A file or directory on the host (directories are copied whole; symlinks stay symlinks). */
  host: string;
  /** Where it goes in the guest (absolute); default /bin/NAME for executables, /root/NAME otherwise. */
  guest?: string;
}

export interface InitramfsOptions {
  /** Debian's busybox-static (true: fetched and cached), or the path of a static busybox. */
  busybox?: boolean | string;
  /** Host files and directories to copy in. */
  add?: readonly InitramfsAddition[];
  /** A program or #! script /init runs instead of a shell (host path or contents). */
  initScript?: string | { contents: string | Uint8Array };
  /** Commands /init runs one after another (one per line, blanks between words, no quoting). */
  runList?: readonly string[];
  /** Extra in-memory files (e.g. a benchmark's programs). */
  files?: readonly { path: string; data: Uint8Array | string; mode?: number }[];
  log?: (line: string) => void;
}

const BASE: CpioEntry[] = [
  ...['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc/nodevisor', 'proc', 'sys', 'tmp', 'root', 'mnt'].map((path): CpioEntry => ({ path, type: 'dir' })),
  { path: 'dev', type: 'dir' },
  // The kernel opens /dev/console for init's stdio before devtmpfs exists.
  { path: 'dev/console', type: 'char', major: 5, minor: 1 },
  { path: 'dev/null', type: 'char', mode: 0o666, major: 1, minor: 3 },
];

function fail(message: string): never {
  throw new NodevisorError('EINITRAMFS', message);
}

/** Default guest path of an added host path. */
export function defaultGuestPath(host: string, executable: boolean, directory: boolean): string {
  const name = basename(host.replace(/\/+$/, ''));
  if (directory) return `/${name}`;
  return executable ? `/bin/${name}` : `/root/${name}`;
}

/** `HOSTPATH[:GUESTPATH]` as the CLI takes it. */
export function parseAddition(text: string): InitramfsAddition {
  const colon = text.indexOf(':');
  const host = colon < 0 ? text : text.slice(0, colon);
  const guest = colon < 0 ? undefined : text.slice(colon + 1);
  if (!host) fail(`--add needs a host path, optionally followed by ":GUESTPATH" (got "${text}")`);
  if (guest !== undefined && !guest.startsWith('/')) fail(`--add ${text}: the guest path must be absolute (start with "/")`);
  return { host, guest };
}

function lstatOrFail(path: string, what: string): Stats {
  try {
    return lstatSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    fail(`${what} ${path} ${code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : (e as Error).message}`);
  }
}

/** The cpio entries for one host path (recursively for directories). */
function hostEntries(host: string, guest: string, out: CpioEntry[]): void {
  const st = lstatOrFail(host, '--add');
  const path = normalize(guest, host);
  const mode = Number(st.mode) & 0o7777;
  if (st.isSymbolicLink()) out.push({ path, type: 'symlink', target: readlinkSync(host) });
  else if (st.isDirectory()) {
    out.push({ path, type: 'dir', mode });
    for (const name of readdirSync(host).sort()) hostEntries(join(host, name), `${guest.replace(/\/+$/, '')}/${name}`, out);
  } else if (st.isFile()) out.push({ path, type: 'file', mode, data: readFileSync(host) });
  else fail(`--add ${host}: only regular files, directories and symlinks can go into an initramfs`);
}

function normalize(guest: string, what: string): string {
  try {
    return normalizeCpioPath(guest);
  } catch {
    return fail(`"${guest}" (for ${what}) is not a valid guest path`);
  }
}

/** The #! interpreter of a script, if it has one. */
function shebang(bytes: Uint8Array): string | undefined {
  if (bytes[0] !== 0x23 || bytes[1] !== 0x21) return undefined;
  const line = new TextDecoder().decode(bytes.subarray(2, 256)).split('\n')[0]!.trim();
  return line.split(/\s+/)[0] || undefined;
}

/** Fails unless every program's interpreter (ELF PT_INTERP or #!) is in the archive. */
function checkInterpreters(entries: readonly CpioEntry[]): void {
  const present = new Set(entries.map((e) => normalizeCpioPath(e.path)));
  for (const e of entries) {
    if (e.type !== 'file' || !(e.mode ?? 0o644) || ((e.mode ?? 0o644) & 0o111) === 0) continue;
    const data = typeof e.data === 'string' ? new TextEncoder().encode(e.data) : e.data;
    const elf = elfInterpreter(data);
    const script = elf === undefined ? shebang(data) : undefined;
    const needed = elf ?? script;
    if (!needed || present.has(normalize(needed, e.path))) continue;
    if (elf) fail(`/${e.path} is dynamically linked (it needs ${elf}, which the initramfs lacks): link it with -static, or --add its loader and libraries`);
    fail(`/${e.path} is a script for ${script}, which the initramfs lacks${script!.startsWith('/bin/') ? ': add --busybox for a shell' : ''}`);
  }
}

/** The archive, uncompressed; throws NodevisorError for anything that would leave the guest unable to run it. */
export function buildInitramfs(options: InitramfsOptions = {}): Uint8Array {
  const entries: CpioEntry[] = [...BASE, { path: 'init', type: 'file', mode: 0o755, data: readFileSync(guestProgram('init')) }];
  const userEntries: CpioEntry[] = [];
  for (const a of options.add ?? []) {
    const st = lstatOrFail(a.host, '--add');
    hostEntries(a.host, a.guest ?? defaultGuestPath(a.host, (Number(st.mode) & 0o111) !== 0, st.isDirectory()), userEntries);
  }
  for (const f of options.files ?? []) userEntries.push({ path: f.path, type: 'file', mode: f.mode ?? 0o755, data: f.data });
  if (options.initScript !== undefined) {
    const data = typeof options.initScript === 'string' ? (lstatOrFail(options.initScript, '--init-script'), readFileSync(options.initScript)) : options.initScript.contents;
    userEntries.push({ path: INIT_SCRIPT_PATH, type: 'file', mode: 0o755, data });
  }
  if (options.runList) userEntries.push({ path: RUN_LIST_PATH, type: 'file', mode: 0o644, data: options.runList.map((l) => `${l}\n`).join('') });

  // What the user adds wins over a busybox applet of the same name.
  const taken = new Set([...entries, ...userEntries].map((e) => normalizeCpioPath(e.path)));
  if (options.busybox) {
    const busybox = typeof options.busybox === 'string' ? options.busybox : fetchBusybox({ log: options.log });
    const bytes = readFileSync(busybox);
    if (!isStaticX86_64Elf(bytes)) fail(`${busybox} is not a static x86-64 program: use Debian's busybox-static`);
    if (!taken.has('bin/busybox')) entries.push({ path: 'bin/busybox', type: 'file', mode: 0o755, data: bytes });
    for (const applet of busyboxApplets(busybox)) {
      const path = normalizeCpioPath(applet);
      if (taken.has(path) || path === 'bin/busybox' || path === 'init') continue;
      taken.add(path);
      entries.push({ path, type: 'symlink', target: '/bin/busybox' });
    }
  }
  // Directories the user adds replace base ones of the same path.
  const userPaths = new Set(userEntries.map((e) => normalizeCpioPath(e.path)));
  const all = [...entries.filter((e) => !userPaths.has(normalizeCpioPath(e.path))), ...userEntries];
  checkInterpreters(all);
  try {
    return cpioArchive(all);
  } catch (e) {
    return fail(`cannot build the initramfs: ${(e as Error).message}`);
  }
}

/** The smallest useful initramfs: /init reports the CPU count and powers off (the boot tests and `bench boot`). */
export function testInitramfs(): Uint8Array {
  return buildInitramfs();
}
