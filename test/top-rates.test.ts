import { expect } from 'chai';
import { rates, type StatsSnapshot } from '../src/top/rates.js';
import { renderTop, shortRate } from '../src/top/render.js';
import type { VcpuStats } from '../src/vm/vcpu-stats.js';

function vcpu(index: number, o: Partial<VcpuStats>): VcpuStats {
  return {
    index, tid: 100 + index, exits: 0, exitsByReason: {}, injections: 0, pvEois: 0, ipisSent: 0, ipisReceived: 0,
    guestSeconds: 0, haltSeconds: 0, haltPollSeconds: 0, haltPollWakes: 0, pausedSeconds: 0, vmmSeconds: 0, state: 'in-guest', ...o,
  };
}

function snap(t: number, irqchip: 'user' | 'split' | 'kernel', vcpus: VcpuStats[], virtio: StatsSnapshot['virtio'] = []): StatsSnapshot {
  return { timeSeconds: t, state: 'running', irqchip, vcpus, console: { bytesOut: 0, bytesIn: 0 }, virtio };
}

const blk = (completed: number, exits: number, ioeventfd: number): StatsSnapshot['virtio'][number] => ({
  name: 'virtio-blk', device: 3, status: 15, interrupts: 'msix', notifications: { exits, ioeventfd }, requests: { completed, maxInFlight: 4, aio: 'io_uring', pollWakes: 0 },
});

describe('nodevisor top: rates', () => {
  it('turns two stats samples into per-second rates per vCPU and per exit reason', () => {
    const a = snap(10, 'user', [vcpu(0, { exits: 100, exitsByReason: { Io: 90, Hlt: 10 }, injections: 5, ipisSent: 1, ipisReceived: 2 })]);
    const b = snap(12, 'user', [vcpu(0, { exits: 2100, exitsByReason: { Io: 2090, Hlt: 10, Mmio: 4 }, injections: 25, ipisSent: 9, ipisReceived: 4, state: 'halted' })]);
    const r = rates(a, b);
    expect(r.intervalSeconds).to.equal(2);
    expect(r.vcpus[0]).to.include({ index: 0, state: 'halted', exitsPerSecond: 1000, injectionsPerSecond: 10, ipisSentPerSecond: 4, ipisReceivedPerSecond: 1 });
    expect(r.vcpus[0]!.exitsByReasonPerSecond).to.deep.equal({ Io: 1000, Mmio: 2 });
  });

  it('splits the interval into guest, VMM, halted and paused shares', () => {
    const a = snap(0, 'user', [vcpu(0, {})]);
    const b = snap(2, 'user', [vcpu(0, { guestSeconds: 1, vmmSeconds: 0.2, haltSeconds: 0.6, pausedSeconds: 0.2 })]);
    expect(rates(a, b).vcpus[0]!.time).to.deep.equal({ guest: 0.5, vmm: 0.1, halt: 0.3, paused: 0.1 });
  });

  it('shows injections only where nodevisor injects, and IPIs only with its own LAPICs', () => {
    const k = rates(snap(0, 'kernel', [vcpu(0, {})]), snap(1, 'kernel', [vcpu(0, {})])).vcpus[0]!;
    expect([k.injectionsPerSecond, k.ipisSentPerSecond, k.ipisReceivedPerSecond]).to.deep.equal([null, null, null]);
    const s = rates(snap(0, 'split', [vcpu(0, {})]), snap(1, 'split', [vcpu(0, { injections: 3 })])).vcpus[0]!;
    expect([s.injectionsPerSecond, s.ipisSentPerSecond]).to.deep.equal([3, null]);
  });

  it('gives virtio requests and notifications per second, and how many notifications exited', () => {
    const r = rates(snap(0, 'user', [], [blk(10, 5, 5)]), snap(0.5, 'user', [], [blk(110, 10, 45)]));
    expect(r.virtio).to.deep.equal([{ name: 'virtio-blk', device: 3, requestsPerSecond: 200, notificationsPerSecond: 90, notificationExitsPerSecond: 10 }]);
  });

  it('counts a vCPU that appears only in the later sample from zero', () => {
    const r = rates(snap(0, 'user', []), snap(1, 'user', [vcpu(1, { exits: 7 })]));
    expect(r.vcpus[0]!.exitsPerSecond).to.equal(7);
  });
});

describe('nodevisor top: screen', () => {
  it('prints rates short: 0, 4.5, 950, 12.3k, 1.23M, and - for unknown', () => {
    expect([0, 4.5, 950, 12345, 1234567, null].map(shortRate)).to.deep.equal(['0', '4.5', '950', '12.3k', '1.23M', '-']);
  });

  it('shows each vCPU with its state, rates, time split and busiest exit reasons, and each virtio device', () => {
    const a = snap(0, 'user', [vcpu(0, {})], [blk(0, 0, 0)]);
    const b = snap(1, 'user', [vcpu(0, { exits: 35000, exitsByReason: { Io: 34000, Mmio: 1000 }, guestSeconds: 0.9, vmmSeconds: 0.1 })], [blk(20000, 10, 100)]);
    const text = renderTop(rates(a, b), '/run/vm.sock');
    expect(text).to.contain('nodevisor top  /run/vm.sock  running  irqchip user  1 vCPU');
    expect(text).to.match(/\n {3}0 {2}in guest +35\.0k .* 90% .* 10% .*Io 34\.0k {2}Mmio 1000/);
    expect(text).to.match(/virtio-blk 00:03\.0 +20\.0k +110 +10/);
  });

  it('explains the dashes with an in-kernel irqchip', () => {
    const t = renderTop(rates(snap(0, 'kernel', [vcpu(0, {})]), snap(1, 'kernel', [vcpu(0, {})])), 'x');
    expect(t).to.contain('not seen by nodevisor with the kernel irqchip');
  });
});
