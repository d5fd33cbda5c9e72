#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createVm, type Vm } from './index.js';
import { VERSION } from './index.js';
import { ExitStatus } from './vm/stop-reason.js';
import { NodevisorError } from './kvm/errors.js';
import { imageCommand, ImageUsageError } from './images/cli.js';
import { benchCommand } from './bench/cli.js';
import { CONSOLE_KINDS, type ConsoleKind } from './vm/guest-console.js';
import { IRQCHIP_MODES, DEFAULT_MEMORY, type VmOptions } from './vm/options.js';
import type { IrqchipMode } from './vcpu/cpuid.js';
import type { EntryMode } from './vcpu/boot-state.js';
import { parseNetSpec } from './vm/net-options.js';

const HELP = `nodevisor ${VERSION} - an x86-64 hypervisor for Linux/KVM on Node.js

Usage:
  nodevisor run [options]     boot a guest (the built-in demo guest by default)
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
  nodevisor image fetch       get Debian's stock cloud kernel and busybox
                              (apt-get download) and build an initramfs whose
                              /init reports the CPU count, runs a workload and
                              powers off; prints the kernel and initrd paths
  nodevisor --version
  nodevisor --help

Options for run:
  --smp N               number of vCPUs (default 1)
  --memory SIZE         guest RAM, e.g. 512M or 2G (default ${DEFAULT_MEMORY})
  --image FILE          a flat binary to boot instead of the demo guest
  --entry-mode MODE     how --image is entered: real, protected or long (default long)
  --load-address ADDR   where --image is loaded (default 0x100000; 0x8000 in real mode)
  --kernel FILE         a Linux bzImage (or x86-64 vmlinux) to boot
  --initrd FILE         an initramfs for --kernel
  --cmdline TEXT        the kernel command line (default "console=ttyS0", or
                        "earlyprintk=serial console=hvc0" with --console
                        virtio; on
                        software-virtualising KVM hosts the options those
                        need are appended)
  --irqchip MODE        user (default), split or kernel: where the interrupt
                        controllers are emulated
  --disk PATH[,readonly] a raw disk image as a virtio-blk PCI device (vda,
                        vdb, ... in Linux); repeatable
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
  --quiet               print only guest output (no stop message or logs)
  --verbose             also print informational logs (unclaimed ports...)

On a terminal the console is in raw mode: keys go to the guest (Ctrl-C too).
Press Ctrl-A then X to stop the VM, Ctrl-A Ctrl-A to send Ctrl-A.

Exit status: 0 guest powered off; 2 guest asked for a reset; 4 triple fault;
6 vCPU error (e.g. emulation failure); 8 stopped by the host (130 on Ctrl-C);
10 the guest kernel panicked (pvpanic);
64 the VM could not be started; (v << 1) | 1 when the guest writes v to the
debug-exit port 0xf4.`;

class UsageError extends Error {}

function fail(message: string, status: number = ExitStatus.setupFailed): never {
  process.stderr.write(`nodevisor: ${message}\n`);
  process.exit(status);
}

function parseIntArg(name: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min} (got "${text}")`);
  return n;
}

/** `PATH` or `PATH,readonly` (also `ro`). */
function parseDisk(text: string): { path: string; readonly: boolean } {
  const m = /^(.*?)(?:,(readonly|ro))?$/.exec(text)!;
  if (!m[1]) throw new UsageError(`--disk needs a path, optionally followed by ",readonly" (got "${text}")`);
  return { path: m[1], readonly: m[2] !== undefined };
}

function runOptions(args: string[]): { options: VmOptions; quiet: boolean; verbose: boolean } {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      smp: { type: 'string' },
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
      quiet: { type: 'boolean', short: 'q' },
      verbose: { type: 'boolean', short: 'v' },
    },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}" (see nodevisor --help)`);
  if (values.kernel === undefined && (values.initrd !== undefined || values.cmdline !== undefined)) {
    throw new UsageError('--initrd and --cmdline need --kernel');
  }
  if (values.kernel !== undefined && values.image !== undefined) throw new UsageError('use either --kernel or --image, not both');
  const irqchip = values.irqchip as IrqchipMode | undefined;
  if (irqchip !== undefined && !IRQCHIP_MODES.includes(irqchip)) {
    throw new UsageError(`--irqchip must be one of ${IRQCHIP_MODES.join(', ')} (got "${irqchip}")`);
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
    memory: values.memory,
    irqchip,
    image: values.image !== undefined ? { source: values.image, mode, loadAddress } : undefined,
    kernel: values.kernel,
    initrd: values.initrd,
    cmdline: values.cmdline,
    disks: (values.disk ?? []).map(parseDisk),
    rng: values.rng ?? false,
    nets: (values.net ?? []).map(parseNetSpec),
    console: consoleKind,
    consoleOutput: process.stdout,
  };
  return { options, quiet: values.quiet ?? false, verbose: values.verbose ?? false };
}

async function run(args: string[]): Promise<number> {
  const { options, quiet, verbose } = runOptions(args);
  const vm: Vm = createVm(options);
  vm.on('log', (level: string, message: string) => {
    if (quiet || (level === 'info' && !verbose)) return;
    process.stderr.write(`nodevisor: ${message}\n`);
  });
  let interrupted = false;
  const stdin = process.stdin;
  const raw = stdin.isTTY === true;
  if (raw) stdin.setRawMode(true);
  // In raw mode Ctrl-C reaches the guest as a byte, as on a serial line;
  // Ctrl-A X stops the VM and Ctrl-A Ctrl-A sends one Ctrl-A (QEMU's keys).
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
  try {
    await vm.start();
    const result = await vm.wait();
    restore();
    if (!quiet) process.stderr.write(`nodevisor: ${result.message}\n`);
    return interrupted ? 130 : result.exitStatus;
  } catch (e) {
    restore();
    throw e;
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
  if (command === 'image') return imageCommand(rest);
  if (command === 'bench') return benchCommand(rest);
  throw new UsageError(`unknown command "${command}" (see nodevisor --help)`);
}

main(process.argv.slice(2)).then(
  (status) => process.exit(status),
  (e: unknown) => {
    if (e instanceof UsageError || e instanceof ImageUsageError || e instanceof NodevisorError) fail(e.message);
    if (e instanceof TypeError && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS')) fail(e.message);
    fail(`internal error: ${(e as Error).stack ?? String(e)}`, 70);
  },
);
