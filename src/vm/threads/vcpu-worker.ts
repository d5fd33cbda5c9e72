import { parentPort, workerData } from 'node:worker_threads';
import { native, k } from '../../kvm/addon.js';
import { KvmVcpu } from '../../kvm/vcpu-fd.js';
import { setIoeventfd } from '../../kvm/vm-fd.js';
import { Bus, type AddressSpace } from '../../devices/bus.js';
import type { DeviceHost, VmControl } from '../../devices/device.js';
import { ExitProfileRecorder } from '../../vcpu/exit-profile.js';
import { GuestMemory } from '../../memory/guest-memory.js';
import { monotonicClock } from '../../sync/clock.js';
import { attachDevices } from '../device-specs.js';
import { irqchipFor, type IrqchipViews } from '../irqchip.js';
import { TimerWake } from '../timer-wake.js';
import { bootRegs, bootSregs } from '../../vcpu/boot-state.js';
import { Stat, STAT_WORDS } from '../../vcpu/control.js';
import type { VcpuInterrupts } from '../../vcpu/interrupts.js';
import { RunLoop } from '../../vcpu/run-loop.js';
import { PausedTsc } from '../../vcpu/paused-tsc.js';
import { loadArchState } from '../../vcpu/arch-state.js';
import { DebugBlock } from '../../vcpu/debug-block.js';
import { DebugExits } from '../../vcpu/debug-exit.js';
import { RunPage, RunOff } from '../../vcpu/run-page.js';
import type { VcpuWorkerData, WorkerMessage } from './vcpu-worker-data.js';
import { threadContext, threadVmControl } from './thread-control.js';
import { PollWindow } from '../../sync/poll-window.js';

const data = workerData as VcpuWorkerData;
const post = (m: WorkerMessage): void => parentPort!.postMessage(m);
const { control, clock, irqchipViews } = threadContext(data, data.count);
const stats = new Float64Array(data.stats, data.index * STAT_WORDS * 8, STAT_WORDS);

const vm: VmControl = {
  ...threadVmControl(post, control),
  debugOutput(bytes): void {
    post({ type: 'debug-output', bytes });
  },
};

const reported = new Int32Array(data.reportedPorts);
const reportedMmio = new Set<number>();
function unhandled(space: AddressSpace, address: number, size: number, write: boolean): void {
  if (space === 'pio') {
    const bit = 1 << (address & 31);
    if (Atomics.or(reported, address >> 5, bit) & bit) return;
  } else {
    const page = Math.floor(address / 4096);
    if (reportedMmio.has(page) || reportedMmio.size > 256) return;
    reportedMmio.add(page);
  }
  const what = space === 'pio' ? `port 0x${address.toString(16)}` : `MMIO address 0x${address.toString(16)}`;
  vm.log('info', `vCPU ${data.index}: ${write ? 'write to' : 'read from'} unclaimed ${what} (${size} bytes) ignored${write ? '' : ', reads as all ones'}`);
}

function main(): void {
  // A VM stopped while starting may have cancelled this vCPU already; then
  // this worker owns nothing and the main thread may terminate it any time.
  if (!control.claimSetup(data.index)) return;
  try {
    if (!control.stopRequested) runVcpu();
  } finally {
    post({ type: 'exited', index: data.index });
  }
}

/** Creates the vCPU, runs it until the VM stops, and gives back everything it took from KVM. */
function runVcpu(): void {
  const memory = new GuestMemory(data.memory);
  const irqchip = irqchipViews({ testKnobs: data.testKnobs, stats: data.stats, guestRam: memory });
  const host: DeviceHost = { irq: irqchip.lines, vm, clock };
  const bus = new Bus(unhandled);
  irqchip.attach(bus);
  const ioeventfd = (addr: number, len: number, fd: number, assign: boolean): void => setIoeventfd(data.vmFd, addr, len, fd, assign);
  attachDevices(bus, data.devices, host, new TimerWake(data.timerWake), { memory, msi: irqchip.msi, ioeventfd });

  const vcpu = new KvmVcpu(native.ioctl(data.vmFd, k('KVM_CREATE_VCPU'), data.apicId));
  control.setFd(data.index, vcpu.fd);
  try {
    const attached = native.attachVcpu(vcpu.fd, data.runSize, stats);
    control.setSlot(data.index, attached.slot);
    stats[Stat.Tid] = attached.tid;
    try {
      runAttached(vcpu, attached.slot, new RunPage(attached.run), { irqchip, bus, memory });
    } finally {
      stats[Stat.EndNs] = monotonicClock.nowNs();
      // The run page holds the vCPU file, and so the whole KVM VM, until it is unmapped.
      native.detachVcpu(attached.slot, attached.run);
    }
  } finally {
    control.setFd(data.index, -1);
    native.close(vcpu.fd);
  }
}

function runAttached(vcpu: KvmVcpu, slot: number, run: RunPage, c: { irqchip: IrqchipViews; bus: Bus; memory: GuestMemory }): void {
  try {
    vcpu.setCpuid(data.cpuid);
    if (data.restore) {
      const refused = loadArchState(vcpu, data.restore.arch);
      if (refused.length) vm.log('warn', `vCPU ${data.index}: KVM refused to restore MSRs ${refused.map((m) => `0x${m.toString(16)}`).join(', ')}`);
    } else applyBootState(vcpu);
    // Registers for fault reports and the quirk layer; vcpu events so the
    // userspace irqchip injects through the run page (see UserInterrupts).
    if (data.syncRegs) run.u32[RunOff.validRegs >> 2] = k('KVM_SYNC_X86_REGS') | (data.syncEvents ? k('KVM_SYNC_X86_EVENTS') : 0);
    // An injection through the run page writes KVM's whole event state from
    // the page's copy, which KVM fills only at the first exit: a restored
    // vCPU's events (an interrupt being delivered, a pending NMI) go in it now.
    if (data.restore && data.syncEvents) {
      const events = vcpu.getEvents();
      run.u8.set(new Uint8Array(events.buffer, events.byteOffset, events.byteLength), RunOff.syncEvents);
    }
    post({ type: 'ready', index: data.index, tid: stats[Stat.Tid]! });
    control.waitForGo();
    stats[Stat.StartNs] = monotonicClock.nowNs();
    const interrupts = interruptsFor(c.irqchip, vcpu, slot, run);
    const tsc = new PausedTsc(vcpu, clock);
    const loop = new RunLoop({
      index: data.index,
      slot,
      vcpu,
      run,
      bus: c.bus,
      memory: c.memory,
      control,
      stats,
      interrupts,
      vm,
      quirks: data.quirks,
      syncEvents: data.syncEvents,
      haltPoll: data.haltPollNs > 0 ? new PollWindow({ maxNs: data.haltPollNs }) : undefined,
      kickDelayNs: (data.testKnobs?.kickDelayUs ?? 0) * 1000,
      profile: data.exitProfile ? new ExitProfileRecorder(data.exitProfile, data.index) : undefined,
      onPause: () => tsc.pause(),
      onResume: () => tsc.resume(),
      debug: new DebugExits({ index: data.index, vcpu, control, block: new DebugBlock(data.debug), report: (e) => post({ type: 'debug-stop', ...e }) }),
    });
    loop.run();
  } catch (e) {
    vm.requestStop({ kind: 'error', vcpu: data.index, detail: `vCPU ${data.index} failed: ${(e as Error).stack ?? String(e)}` });
  }
}

function interruptsFor(irqchip: IrqchipViews, vcpu: KvmVcpu, slot: number, run: RunPage): VcpuInterrupts {
  return irqchip.vcpuInterrupts({
    index: data.index,
    vcpu,
    run,
    stats,
    clock,
    // The LAPIC counts in VM time; the addon's timer fires in host time.
    setTimer: (deadlineNs) => native.setTimer(slot, deadlineNs === 0 ? 0 : clock.toHostNs(deadlineNs)),
    waitForSipi: data.restore ? data.restore.waitingForSipi : data.startup === 'sipi' && data.index > 0,
    syncEvents: data.syncEvents,
  });
}

function applyBootState(vcpu: KvmVcpu): void {
  // KVM's LAPIC holds APs until INIT-SIPI; when we start every vCPU, release them.
  if (!irqchipFor(data.irqchip).userLapic && data.startup === 'all' && data.index > 0) vcpu.setMpState(k('KVM_MP_STATE_RUNNABLE'));
  if (data.startup === 'sipi' && data.index > 0) return;
  const boot = data.boot;
  if (!boot) return;
  if ('mode' in boot) {
    vcpu.setSregs(bootSregs(vcpu.getSregs(), boot.mode, boot.mode === 'real' ? boot.entry >>> 4 : 0, boot.linux ?? false));
    const regs = bootRegs(boot.mode, boot.entry, data.index, data.count);
    if (boot.rsi !== undefined) regs.rsi = BigInt(boot.rsi);
    if (boot.rax !== undefined) regs.rax = BigInt(boot.rax);
    if (boot.rbx !== undefined) regs.rbx = BigInt(boot.rbx);
    vcpu.setRegs(regs);
  } else {
    vcpu.setSregs({ ...vcpu.getSregs(), ...boot.sregs });
    vcpu.setRegs(boot.regs);
  }
  vcpu.resetFpu();
}

main();
