import { expect } from 'chai';
import { PollWindow, KVM_HALT_POLL_NS, pollUntil } from '../src/sync/poll-window.js';
import { defaultPollNs, QEMU_IO_POLL_NS, resolveVmConfig } from '../src/vm/vm-config.js';

describe('poll windows: halted vCPUs and idle I/O threads poll before they sleep', () => {
  const us = 1000;

  it('starts at no polling, and a halt shorter than the limit opens a 10 us window', () => {
    const p = new PollWindow({ maxNs: KVM_HALT_POLL_NS });
    expect(p.windowNs).to.equal(0);
    p.afterIdle(50 * us);
    expect(p.windowNs).to.equal(10 * us);
  });

  it('doubles the window while halts outlast it but end within the limit, up to the limit', () => {
    const p = new PollWindow({ maxNs: 200 * us });
    const seen: number[] = [];
    for (let i = 0; i < 7; i++) {
      p.afterIdle(190 * us);
      seen.push(p.windowNs / us);
    }
    expect(seen).to.deep.equal([10, 20, 40, 80, 160, 200, 200]);
  });

  it('keeps the window while halts end inside it (the poll caught them)', () => {
    const p = new PollWindow({ maxNs: 200 * us });
    for (let i = 0; i < 4; i++) p.afterIdle(150 * us);
    expect(p.windowNs).to.equal(80 * us);
    for (let i = 0; i < 10; i++) p.afterIdle(30 * us);
    expect(p.windowNs).to.equal(80 * us);
  });

  it('halves the window on a halt longer than the limit, and stops polling below the first window', () => {
    const p = new PollWindow({ maxNs: 200 * us });
    for (let i = 0; i < 6; i++) p.afterIdle(190 * us);
    expect(p.windowNs).to.equal(200 * us);
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      p.afterIdle(4_000 * us); // a 250 Hz tick on an idle vCPU
      seen.push(p.windowNs / us);
    }
    expect(seen).to.deep.equal([100, 50, 25, 12.5, 0, 0]);
  });

  it('drops straight to no polling with a shrink divisor of 0', () => {
    const p = new PollWindow({ maxNs: 200 * us, shrink: 0 });
    p.afterIdle(100 * us);
    p.afterIdle(100 * us);
    p.afterIdle(1_000 * us);
    expect(p.windowNs).to.equal(0);
  });

  it('never polls with a limit of 0', () => {
    const p = new PollWindow({ maxNs: 0 });
    for (let i = 0; i < 5; i++) p.afterIdle(5 * us);
    expect(p.windowNs).to.equal(0);
  });

  it('caps the first window at a limit below 10 us', () => {
    const p = new PollWindow({ maxNs: 4 * us });
    p.afterIdle(3 * us);
    expect(p.windowNs).to.equal(4 * us);
  });

  it('polls until a look finds something, and returns what it found', () => {
    let looks = 0;
    expect(pollUntil(Infinity, () => (++looks === 40 ? 'found' : ''))).to.equal('found');
    expect(looks).to.equal(40);
  });

  it('stops polling once its deadline has passed, returning the last look', () => {
    let looks = 0;
    expect(pollUntil(0, () => (looks++, 0))).to.equal(0);
    // One round of looks, then the clock says the deadline has passed.
    expect(looks).to.be.within(1, 16);
  });

  it('refuses a negative or non-finite limit', () => {
    expect(() => new PollWindow({ maxNs: -1 })).to.throw(RangeError, /non-negative/);
    expect(() => new PollWindow({ maxNs: NaN })).to.throw(RangeError);
  });

  it('defaults to KVM\'s 200 us (halts) and QEMU\'s 32,768 ns (I/O threads) while vCPUs are fewer than host CPUs, else to no polling', () => {
    expect(defaultPollNs(KVM_HALT_POLL_NS, 1, 2)).to.equal(KVM_HALT_POLL_NS);
    expect(defaultPollNs(KVM_HALT_POLL_NS, 3, 16)).to.equal(KVM_HALT_POLL_NS);
    expect(defaultPollNs(QEMU_IO_POLL_NS, 1, 2)).to.equal(QEMU_IO_POLL_NS);
    expect(defaultPollNs(KVM_HALT_POLL_NS, 2, 2)).to.equal(0);
    expect(defaultPollNs(QEMU_IO_POLL_NS, 64, 16)).to.equal(0);
  });

  it('takes haltPollNs from the VM options and refuses a value that is not a whole number of ns up to 10 ms', () => {
    expect(resolveVmConfig({ vcpus: 4, haltPollNs: 50_000 }).haltPollNs).to.equal(50_000);
    expect(resolveVmConfig({ vcpus: 4, haltPollNs: 0 }).haltPollNs).to.equal(0);
    for (const bad of [-1, 1.5, 20_000_000, NaN]) {
      expect(() => resolveVmConfig({ vcpus: 1, haltPollNs: bad }), String(bad)).to.throw(/haltPollNs must be an integer from 0 to 10000000/);
    }
  });
});
