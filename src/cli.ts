#!/usr/bin/env node
import { openSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Vm } from './vm/vm.js';
import { VERSION } from './version.js';
import { joinNegativeValues } from './args.js';
import { ExitStatus } from './vm/stop-reason.js';
import { NodevisorError } from './kvm/errors.js';
import { DEFAULT_BIOS } from './boot/firmware.js';
import { CONSOLE_KINDS, type ConsoleKind } from './vm/guest-console.js';
import { IRQCHIP_MODES, DEFAULT_MEMORY, type VmOptions } from './vm/options.js';
import type { IrqchipMode } from './vcpu/cpuid.js';
import { parseTopology } from './vcpu/topology.js';
import type { EntryMode } from './vcpu/boot-state.js';
import type { DiskOptions } from './vm/disk-images.js';
import { BLK_AIO_MODES, type BlkAio } from './virtio/blk.js';
import { parseNetSpec } from './vm/net-options.js';
import { formatExitProfile } from './vm/exit-profile-table.js';
import type { GdbServer } from './gdb/server.js';
import { parseGdbAddress, type GdbAddress } from './gdb/address.js';
import { MAX_POLL_NS } from './vm/vm-config.js';

const HELP = `nodevisor ${VERSION} - an x86-64 hypervisor for Linux/KVM on Node.js

Usage:
  nodevisor run [options]     boot a guest (the built-in demo guest by default)
  nodevisor ctl PATH COMMAND [ARGS...] [--json]
                              control a running VM through its API socket:
                              status, stats, pause, resume, power-button,
                              stop, console-input, subscribe (nodevisor ctl -h)
  nodevisor top PATH [--interval S] [--once] [--json]
                              live per-vCPU view of a running VM (nodevisor top -h)
  nodevisor bench [suite...] [options]
                              scalability and micro benchmarks, regression
                              checks against a baseline (nodevisor bench -h)
  nodevisor image build-test-kernel
                              build the small Linux test kernel (needs Debian's
                              linux-source-6.12 and kernel build tools)
  nodevisor image path test-kernel
                              print where the built test kernel is
  nodevisor image build-initramfs OUT [--busybox] [--add H[:G]]... [--init-script F]
                              an initramfs with nodevisor's /init (a shell on
                              the console with --busybox; nodevisor image -h)
  nodevisor image build-disk OUT --kernel K [--initrd I] [--cmdline TEXT]
                              a raw disk image with an MBR, SYSLINUX and the
                              kernel, that --bios boots (nodevisor image -h)
  nodevisor image fetch       get Debian's stock cloud kernel and busybox
                              (apt-get download) and build an initramfs whose
                              /init reports the CPU count, runs a workload and
                              powers off; prints the kernel and initrd paths
  nodevisor --version
  nodevisor --help

Options for run:
  --smp N               number of vCPUs (default 1, or the --topology product)
  --topology sockets=S,cores=C,threads=T
                        how the vCPUs are grouped (default one socket of
                        --smp cores); a level left out is 1, or for cores
                        what --smp leaves; S x C x T must equal --smp
  --memory SIZE         guest RAM, e.g. 512M or 2G (default ${DEFAULT_MEMORY})
  --image FILE          a flat binary to boot instead of the demo guest
  --entry-mode MODE     how --image is entered: real, protected or long (default long)
  --load-address ADDR   where --image is loaded (default 0x100000; 0x8000 in real mode)
  --kernel FILE         a Linux bzImage (or x86-64 vmlinux), or a multiboot
                        ELF kernel, to boot
  --initrd FILE         an initramfs for --kernel (for a multiboot kernel:
                        its first module)
  --module FILE[,ARGS]  a multiboot module with its command line; repeatable
  --bios [FILE]         boot through PC firmware from the disks instead
                        (default Debian's SeaBIOS, ${DEFAULT_BIOS};
                        apt-get install seabios); its text and the boot
                        loader's menu go to the serial console
  --boot-order LIST     with --bios: the disks to try first, as positions in
                        --disk order counted from 1 (e.g. 2,1)
  --debug-console FILE  write what the guest sends to the debug console
                        (port 0x402, e.g. SeaBIOS's log) to FILE; --verbose
                        shows it too
  --cmdline TEXT        the kernel command line (default "console=ttyS0", or
                        "earlyprintk=serial console=hvc0" with --console
                        virtio; on
                        software-virtualising KVM hosts the options those
                        need are appended)
  --irqchip MODE        user (default), split or kernel: where the interrupt
                        controllers are emulated
  --no-pv-eoi           do not offer the guest paravirtual EOI (irqchip user)
  --halt-poll-ns N      the most a halted vCPU polls for a wake-up before its
                        thread sleeps, 0-10000000 ns (irqchip user; adapts
                        per vCPU as KVM's halt_poll_ns does). Default 200000
                        while there are fewer vCPUs than host CPUs, else 0
  --io-poll-ns N        the most an idle virtio-blk I/O thread polls its
                        queues before it sleeps, 0-10000000 ns (adaptive).
                        Default 32768 while there are fewer vCPUs than host
                        CPUs, else 0
  --exit-profile        count exits by port, MMIO address and reason, and
                        print the table (with the VMM's time per exit) on
                        stderr when the VM ends
  --disk PATH[,readonly][,aio=MODE]
                        a raw disk image as a virtio-blk PCI device (vda,
                        vdb, ... in Linux); repeatable. aio=io_uring (the
                        default where the kernel allows it) or aio=sync
                        (pread/pwrite, the fallback); --verbose says which
  --rng                 a virtio-rng PCI device fed from the host's CSPRNG
  --net tap=NAME[,mac=MAC][,queues=N]
                        a virtio-net PCI device on host tap device NAME
                        (opened, or created; needs CAP_NET_ADMIN); N queue
                        pairs (default one per vCPU up to 4); repeatable
  --net user[,mac=MAC][,hostfwd=tcp:HOSTADDR:HOSTPORT-:GUESTPORT]...
                        a virtio-net PCI device with rootless user-mode
                        networking through passt (apt-get install passt):
                        DHCP, DNS, outbound TCP/UDP, forwarded host ports
  --console KIND        serial (default): the terminal is the 16550 UART
                        (ttyS0); virtio: it is a virtio-console PCI device
                        (hvc0) instead, and UART output is still shown
  --restore DIR         continue a snapshot (the machine is the snapshot's:
                        no --kernel/--image; --smp/--memory/--disk... only
                        if they match it; --net may move a NIC to another
                        tap or other forwards, same kind, MAC and queues)
  --snapshot-on-signal SIGNAL:DIR
                        take a snapshot into DIR on SIGNAL (SIGUSR1, SIGUSR2,
                        SIGHUP or SIGWINCH); the VM goes on
  --api-socket PATH     serve the JSON API (nodevisor ctl, nodevisor top) on a
                        Unix socket at PATH (mode 0600, removed on exit;
                        refused if another process listens there)
  --gdb ADDR            a gdb stub: tcp:HOST:PORT, tcp::PORT (127.0.0.1;
                        port 0 picks one, printed at start) or unix:PATH;
                        then gdb: target remote HOST:PORT
  --gdb-wait            hold every vCPU before its first instruction until
                        gdb attaches and continues (needs --gdb)
  --quiet               print only guest output (no stop message or logs)
  --verbose             also print informational logs (unclaimed ports...)

On a terminal the console is in raw mode: keys go to the guest (Ctrl-C too).
Press Ctrl-A then X to stop the VM, Ctrl-A S to take a snapshot (into the
--snapshot-on-signal DIR, else ./nodevisor-snapshot), Ctrl-A Ctrl-A to send
Ctrl-A.

Exit status: 0 guest powered off; 2 guest asked for a reset; 4 triple fault;
6 vCPU error (e.g. emulation failure); 8 stopped by the host (130 on Ctrl-C);
10 the guest kernel panicked (pvpanic); 12 the firmware found no bootable
disk;
64 the VM could not be started; (v << 1) | 1 when the guest writes v to the
debug-exit port 0xf4.`;

class UsageError extends Error {}

function fail(message: string, status: number = ExitStatus.setupFailed): never {
  process.stderr.write(`nodevisor: ${message}\n`);
  process.exit(status);
}

/** Decimal digits only: Number() would also take "0x2", "1e2" and " 2". */
function parseIntArg(name: string, text: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (text === undefined) return undefined;
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a decimal integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`} (got "${text}")`);
  }
  return n;
}

/**
 * `PATH[,readonly][,aio=MODE]` (`ro` for `readonly`; flags in any order).
 * Flags are taken from the end, so a path may itself hold commas.
 */
function parseDisk(text: string): DiskOptions {
  let path = text;
  let readonly = false;
  let aio: BlkAio | undefined;
  for (let m = /,(readonly|ro|aio=[^,]*)$/.exec(path); m; m = /,(readonly|ro|aio=[^,]*)$/.exec(path)) {
    path = path.slice(0, m.index);
    if (!m[1]!.startsWith('aio=')) {
      readonly = true;
      continue;
    }
    const mode = m[1]!.slice(4);
    if (!(BLK_AIO_MODES as readonly string[]).includes(mode)) throw new UsageError(`--disk ${text}: aio must be ${BLK_AIO_MODES.join(' or ')} (got "${mode}")`);
    aio = mode as BlkAio;
  }
  if (!path) throw new UsageError(`--disk needs a path, optionally followed by ",readonly" and ",aio=io_uring|sync" (got "${text}")`);
  return { path, readonly, ...(aio ? { aio } : {}) };
}

/** `--bios` takes an optional file: a bare `--bios` (last, or before another option) means the default firmware. */
function withOptionalBios(args: string[]): string[] {
  return args.map((a, i) => (a === '--bios' && (i + 1 >= args.length || args[i + 1]!.startsWith('-')) ? '--bios=' : a));
}

/** `FILE` or `FILE,ARGS`: a multiboot module and its command line. */
function parseModule(text: string): { source: string; args?: string } {
  const comma = text.indexOf(',');
  const source = comma < 0 ? text : text.slice(0, comma);
  if (!source) throw new UsageError(`--module needs a file, optionally followed by ",ARGS" (got "${text}")`);
  return comma < 0 ? { source } : { source, args: text.slice(comma + 1) };
}

function parseBootOrder(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const items = text.split(',').map((t) => Number(t.trim()));
  if (!items.length || items.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--boot-order takes disk positions counted from 1, e.g. 2,1 (got "${text}")`);
  return items.map((n) => n - 1);
}

/** Signals `--snapshot-on-signal` may take: not the ones that stop the VM or cannot be caught. */
const SNAPSHOT_SIGNALS = ['SIGUSR1', 'SIGUSR2', 'SIGHUP', 'SIGWINCH'] as const;
type SnapshotSignal = (typeof SNAPSHOT_SIGNALS)[number];

/** `SIGNAL:DIR`, e.g. SIGUSR1:/var/tmp/snap. */
function parseSnapshotOnSignal(text: string): { signal: SnapshotSignal; dir: string } {
  const colon = text.indexOf(':');
  const signal = text.slice(0, colon) as SnapshotSignal;
  const dir = text.slice(colon + 1);
  if (colon < 0 || !SNAPSHOT_SIGNALS.includes(signal) || !dir) {
    throw new UsageError(`--snapshot-on-signal takes SIGNAL:DIR with SIGNAL one of ${SNAPSHOT_SIGNALS.join(', ')} (got "${text}")`);
  }
  return { signal, dir };
}

interface RunCommand {
  options: VmOptions;
  quiet: boolean;
  verbose: boolean;
  debugConsole?: string;
  apiSocket?: string;
  gdb?: GdbAddress;
  snapshotOnSignal?: { signal: SnapshotSignal; dir: string };
}

function runOptions(args: string[]): RunCommand {
  const { values, positionals } = parseArgs({
    args: joinNegativeValues(withOptionalBios(args)),
    allowPositionals: true,
    options: {
      smp: { type: 'string' },
      topology: { type: 'string' },
      memory: { type: 'string' },
      image: { type: 'string' },
      'entry-mode': { type: 'string' },
      'load-address': { type: 'string' },
      kernel: { type: 'string' },
      initrd: { type: 'string' },
      cmdline: { type: 'string' },
      irqchip: { type: 'string' },
      disk: { type: 'string', multiple: true },
      rng: { type: 'boolean' },
      net: { type: 'string', multiple: true },
      console: { type: 'string' },
      bios: { type: 'string' },
      'boot-order': { type: 'string' },
      'debug-console': { type: 'string' },
      module: { type: 'string', multiple: true },
      quiet: { type: 'boolean', short: 'q' },
      verbose: { type: 'boolean', short: 'v' },
      restore: { type: 'string' },
      'snapshot-on-signal': { type: 'string' },
      'api-socket': { type: 'string' },
      gdb: { type: 'string' },
      'gdb-wait': { type: 'boolean' },
      'exit-profile': { type: 'boolean' },
      'no-pv-eoi': { type: 'boolean' },
      'halt-poll-ns': { type: 'string' },
      'io-poll-ns': { type: 'string' },
    },
  });
  if (values['gdb-wait'] && values.gdb === undefined) throw new UsageError('--gdb-wait needs --gdb');
  if (values['api-socket'] === '') throw new UsageError('--api-socket needs a path');
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (see nodevisor --help)`);
  if (values.kernel === undefined && (values.initrd !== undefined || values.cmdline !== undefined)) {
    throw new UsageError('--initrd and --cmdline need --kernel');
  }
  if (values.kernel !== undefined && values.image !== undefined) throw new UsageError('use either --kernel or --image, not both');
  if (values.bios !== undefined && (values.kernel !== undefined || values.image !== undefined)) throw new UsageError('--bios boots from the disks: leave out --kernel and --image (nodevisor image build-disk makes a bootable disk)');
  if (values['boot-order'] !== undefined && values.bios === undefined) throw new UsageError('--boot-order needs --bios');
  if (values.module !== undefined && values.kernel === undefined) throw new UsageError('--module needs --kernel (a multiboot kernel)');
  const irqchip = values.irqchip as IrqchipMode | undefined;
  if (irqchip !== undefined && !IRQCHIP_MODES.includes(irqchip)) {
    throw new UsageError(`--irqchip must be one of ${IRQCHIP_MODES.join(', ')} (got "${irqchip}")`);
  }
  // KVM's LAPIC (split, kernel) handles halts and EOIs itself: these would do nothing there.
  for (const flag of ['no-pv-eoi', 'halt-poll-ns'] as const) {
    if (values[flag] !== undefined && irqchip !== undefined && irqchip !== 'user') throw new UsageError(`--${flag} applies to --irqchip user only (with ${irqchip}, KVM's LAPIC handles halts and EOIs itself)`);
  }
  const consoleKind = values.console as ConsoleKind | undefined;
  if (consoleKind !== undefined && !CONSOLE_KINDS.includes(consoleKind)) {
    throw new UsageError(`--console must be one of ${CONSOLE_KINDS.join(', ')} (got "${consoleKind}")`);
  }
  const mode = (values['entry-mode'] ?? 'long') as EntryMode;
  if (!['real', 'protected', 'long'].includes(mode)) throw new UsageError(`--entry-mode must be real, protected or long (got "${mode}")`);
  let loadAddress: number | undefined;
  if (values['load-address'] !== undefined) {
    loadAddress = Number(values['load-address']);
    if (!Number.isSafeInteger(loadAddress) || loadAddress < 0) throw new UsageError(`--load-address must be an address like 0x100000 (got "${values['load-address']}")`);
  }
  const options: VmOptions = {
    vcpus: parseIntArg('smp', values.smp, 1),
    topology: values.topology !== undefined ? parseTopology(values.topology) : undefined,
    memory: values.memory,
    irqchip,
    image: values.image !== undefined ? { source: values.image, mode, loadAddress } : undefined,
    kernel: values.kernel,
    initrd: values.initrd,
    cmdline: values.cmdline,
    // Left undefined when not given, so a restore can tell "not asked" from "none".
    disks: values.disk?.map(parseDisk),
    modules: values.module?.map(parseModule),
    bios: values.bios === undefined ? undefined : values.bios === '' ? true : values.bios,
    bootOrder: parseBootOrder(values['boot-order']),
    rng: values.rng,
    nets: values.net?.map(parseNetSpec),
    console: consoleKind,
    consoleOutput: process.stdout,
    restore: values.restore,
    startPaused: values['gdb-wait'] ?? false,
    exitProfile: values['exit-profile'] ?? false,
    ...(values['no-pv-eoi'] ? { pvEoi: false } : {}),
    ...(values['halt-poll-ns'] !== undefined ? { haltPollNs: parseIntArg('halt-poll-ns', values['halt-poll-ns'], 0, MAX_POLL_NS) } : {}),
    ...(values['io-poll-ns'] !== undefined ? { ioPollNs: parseIntArg('io-poll-ns', values['io-poll-ns'], 0, MAX_POLL_NS) } : {}),
  };
  return {
    options,
    quiet: values.quiet ?? false,
    verbose: values.verbose ?? false,
    apiSocket: values['api-socket'],
    gdb: values.gdb !== undefined ? parseGdbAddress(values.gdb) : undefined,
    snapshotOnSignal: values['snapshot-on-signal'] !== undefined ? parseSnapshotOnSignal(values['snapshot-on-signal']) : undefined,
    debugConsole: values['debug-console'],
  };
}

function openDebugFile(path: string): number {
  try {
    return openSync(path, 'w');
  } catch (e) {
    throw new UsageError(`--debug-console: cannot write ${path}: ${(e as Error).message}`);
  }
}

/** Takes a snapshot of the running VM and says where, or why not; the VM goes on either way. */
function snapshotTo(vm: Vm, dir: string, quiet: boolean): void {
  vm.snapshot(dir).then(
    (info) => {
      if (!quiet) process.stderr.write(`nodevisor: snapshot written to ${dir} (${(info.ramBytes / 1048576).toFixed(1)} MiB of RAM data, ${info.seconds.toFixed(2)} s); continue it with: nodevisor run --restore ${dir}\n`);
    },
    (e: Error) => process.stderr.write(`nodevisor: snapshot to ${dir} failed: ${e.message}\n`),
  );
}

/**
 * The API socket of a `run`, up before the VM starts (so `ctl` sees it
 * starting) and gone when it ends; `startGdb` follows once the VM runs.
 */
async function startApi(vm: Vm, r: RunCommand): Promise<() => Promise<void>> {
  if (r.apiSocket === undefined) return async () => undefined;
  const { ApiServer } = await import('./api/server.js');
  const api = new ApiServer({ path: r.apiSocket, vm, version: VERSION });
  const removeSocket = (): void => api.removeSocketFile();
  await api.listen();
  process.once('exit', removeSocket);
  return async () => {
    await api.close();
    process.off('exit', removeSocket);
  };
}

/** The gdb stub, once the VM exists (with --gdb-wait its vCPUs are held by then). */
async function startGdb(vm: Vm, r: RunCommand): Promise<GdbServer | undefined> {
  if (!r.gdb) return undefined;
  const { GdbServer } = await import('./gdb/server.js');
  const gdb = new GdbServer(vm, r.gdb);
  const where = await gdb.listen();
  if (!r.quiet) {
    const wait = r.options.startPaused ? '; the vCPUs wait for it' : '';
    process.stderr.write(`nodevisor: gdb stub listening on ${where} (gdb: target remote ${where})${wait}\n`);
  }
  return gdb;
}

async function run(args: string[]): Promise<number> {
  const command = runOptions(args);
  const { options, quiet, verbose, snapshotOnSignal, debugConsole } = command;
  const vm = new Vm(options);
  const debugFile = debugConsole === undefined ? undefined : openDebugFile(debugConsole);
  vm.on('debug-output', (line: Buffer) => {
    if (debugFile !== undefined) writeSync(debugFile, line);
    if (verbose && !quiet) process.stderr.write(`nodevisor: debug console: ${line.toString('latin1').replace(/\n$/, '')}\n`);
  });
  vm.on('log', (level: string, message: string) => {
    if (quiet || (level === 'info' && !verbose)) return;
    process.stderr.write(`nodevisor: ${message}\n`);
  });
  let interrupted = false;
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  // In raw mode Ctrl-C reaches the guest as a byte, as on a serial line;
  // Ctrl-A X stops the VM and Ctrl-A Ctrl-A sends one Ctrl-A (QEMU's keys);
  // Ctrl-A S takes a snapshot (to --snapshot-on-signal's DIR, else ./nodevisor-snapshot).
  let escape = false;
  stdin.on('data', (chunk: Buffer) => {
    if (!raw) return vm.sendConsoleInput(chunk);
    const out: number[] = [];
    for (const b of chunk) {
      if (escape) {
        escape = false;
        if (b === 0x78 || b === 0x58) {
          interrupted = true;
          void vm.stop();
          return;
        }
        if (b === 0x73 || b === 0x53) snapshotTo(vm, snapshotOnSignal?.dir ?? 'nodevisor-snapshot', quiet);
        if (b === 0x01) out.push(b);
      } else if (b === 0x01) escape = true;
      else out.push(b);
    }
    vm.sendConsoleInput(Uint8Array.from(out));
  });
  const restore = (): void => {
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
  const onSignal = (): void => {
    interrupted = true;
    void vm.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (snapshotOnSignal) process.on(snapshotOnSignal.signal, () => snapshotTo(vm, snapshotOnSignal.dir, quiet));
  let stopApi: (() => Promise<void>) | undefined;
  let gdb: GdbServer | undefined;
  try {
    stopApi = await startApi(vm, command);
    await vm.start();
    gdb = await startGdb(vm, command).catch(async (e: unknown) => {
      await vm.stop();
      throw e;
    });
    const result = await vm.wait();
    restore();
    gdb?.close();
    await stopApi();
    if (!quiet) process.stderr.write(`nodevisor: ${result.message}\n`);
    const profile = vm.exitProfile();
    if (profile) process.stderr.write(`nodevisor: exit profile (all vCPUs):\n${formatExitProfile(profile)}\n`);
    return interrupted ? 130 : result.exitStatus;
  } catch (e) {
    restore();
    gdb?.close();
    await stopApi?.();
    // A signal or Ctrl-A X while starting: the start was cut short, as asked.
    if (interrupted && e instanceof NodevisorError && e.code === 'ESTOPPED') {
      if (!quiet) process.stderr.write(`nodevisor: ${e.message}\n`);
      return 130;
    }
    throw e;
  }
}

/** Runs a subcommand; its own usage errors end the process as ours do. */
async function asUsage(own: new (message: string) => Error, command: () => Promise<number>): Promise<number> {
  try {
    return await command();
  } catch (e) {
    throw e instanceof own ? new UsageError(e.message) : e;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (command === '--version' || command === '-V') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (command === 'run' && (rest.includes('--help') || rest.includes('-h'))) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (command === 'run') return run(rest);
  // The other commands load their modules only when asked for: a `run`
  // then carries none of them (~10 MiB of RSS and part of its start-up).
  if (command === 'ctl') {
    const { ctlCommand, CtlUsageError } = await import('./api/ctl.js');
    return asUsage(CtlUsageError, () => ctlCommand(rest));
  }
  if (command === 'top') {
    const { topCommand, TopUsageError } = await import('./top/cli.js');
    return asUsage(TopUsageError, () => topCommand(rest));
  }
  if (command === 'image') {
    const { imageCommand, ImageUsageError } = await import('./images/cli.js');
    return asUsage(ImageUsageError, async () => imageCommand(rest));
  }
  if (command === 'bench') return (await import('./bench/cli.js')).benchCommand(rest);
  throw new UsageError(`unknown command "${command}" (see nodevisor --help)`);
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof NodevisorError) fail(e.message);
    if (e instanceof TypeError && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) fail(e.message);
    fail(`internal error: ${(e as Error).stack ?? String(e)}`, 70);
  },
);
