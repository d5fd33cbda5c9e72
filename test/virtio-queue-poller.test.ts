import { expect } from 'chai';
import { native, k } from '../src/kvm/addon.js';
import { PollWindow } from '../src/sync/poll-window.js';
import { QueuePoller } from '../src/virtio/queue-poller.js';
import { VIRTQ_USED_F_NO_NOTIFY, VirtqDesc } from '../src/virtio/constants.js';
import { DESC, Driver, SIZE, USED } from './helpers/virtq-driver.js';

/**
 * An I/O thread's wait for work (queue-poller.ts) over a model queue: what
 * it tells the driver about notifications, when it polls, and that it
 * never sleeps on a ring that still says "do not notify". poll(2) runs on
 * real eventfds; a signalled "stop" eventfd stands for whatever would end
 * the sleep, so no test blocks.
 */
describe('I/O thread polling: a thread out of requests polls its queues before it sleeps', () => {
  const fds: number[] = [];
  const eventfd = (): number => {
    const fd = native.eventfd(0, k('EFD_NONBLOCK') | k('EFD_CLOEXEC'));
    fds.push(fd);
    return fd;
  };
  after(() => fds.forEach((fd) => native.close(fd)));

  const QUEUE_BIT = 1;
  const STOP_BIT = 2;
  const availEvent = (d: Driver): number => d.mem.readU16(USED + 4 + 8 * SIZE);
  const usedFlags = (d: Driver): number => d.mem.readU16(USED);

  function setup(o: { eventIdx: boolean; windowNs?: number; paused?: boolean }): { d: Driver; poller: QueuePoller; window: PollWindow; fds: number[]; caught: () => number } {
    const d = new Driver({ eventIdx: o.eventIdx });
    d.desc(DESC, 0, { addr: 0x4000, len: 16, flags: VirtqDesc.Write });
    const window = new PollWindow({ maxNs: 200_000 });
    // Grow the window the way short idle spells do.
    while (window.windowNs < (o.windowNs ?? 0)) window.afterIdle(window.windowNs + 1);
    let caught = 0;
    const poller = new QueuePoller({
      owner: { queues: [d.q], fail: (why) => expect.fail(why), interruptQueue: () => {} },
      queues: [0],
      window,
      paused: () => o.paused ?? false,
      onCaught: () => caught++,
    });
    const stop = eventfd();
    native.eventfdWrite(stop, 1);
    return { d, poller, window, fds: [eventfd(), stop], caught: () => caught };
  }

  it('re-arms a ring that still says "do not notify" before its first sleep (a restored VM)', () => {
    const { d, poller, fds } = setup({ eventIdx: false });
    d.mem.writeU16(USED, VIRTQ_USED_F_NO_NOTIFY);
    expect(poller.wait(fds, true)).to.equal(STOP_BIT);
    expect(usedFlags(d)).to.equal(0);
    expect(poller.arming).to.equal(true);
  });

  it('takes a chain published while it polls without sleeping, and keeps the driver quiet while it serves', () => {
    const { d, poller, fds, caught } = setup({ eventIdx: false, windowNs: 10_000 });
    d.offer(0);
    expect(poller.wait(fds, true) & QUEUE_BIT).to.equal(QUEUE_BIT);
    expect(caught()).to.equal(1);
    expect(usedFlags(d)).to.equal(VIRTQ_USED_F_NO_NOTIFY);
    expect(poller.arming).to.equal(false);
  });

  it('with event index, leaves avail_event behind while it polls and serves, and asks for the next chain before it sleeps', () => {
    const { d, poller, fds } = setup({ eventIdx: true, windowNs: 10_000 });
    d.offer(0);
    expect(poller.wait(fds, true) & QUEUE_BIT).to.equal(QUEUE_BIT);
    const before = availEvent(d);
    // Served quietly: pops that do not arm leave avail_event where it was.
    expect(d.q.withLock(() => d.q.pop(poller.arming))).to.not.equal(null);
    expect(d.q.withLock(() => d.q.pop(poller.arming))).to.equal(null);
    expect(availEvent(d)).to.equal(before);
    // Nothing more comes: the poll ends, the thread asks for the next chain and sleeps.
    expect(poller.wait(fds, true)).to.equal(STOP_BIT);
    expect(availEvent(d)).to.equal(1);
    expect(poller.arming).to.equal(true);
  });

  it('looks once more after asking for notifications, and takes a chain published just before without sleeping', () => {
    const { d, poller, fds, caught } = setup({ eventIdx: false, windowNs: 0 });
    d.offer(0);
    // No window: no poll, but the quiet ring is re-armed and looked at again.
    expect(poller.wait(fds, true) & QUEUE_BIT).to.equal(QUEUE_BIT);
    expect(caught()).to.equal(1);
    expect(usedFlags(d)).to.equal(0);
  });

  it('sleeps at once, notifications on, while work in flight needs poll(2) (mayPoll false)', () => {
    const { d, poller, fds } = setup({ eventIdx: false, windowNs: 10_000 });
    expect(poller.wait(fds, false)).to.equal(STOP_BIT);
    expect(usedFlags(d)).to.equal(0);
  });

  it('neither polls nor writes guest RAM while the VM is paused', () => {
    const { d, poller, fds, caught } = setup({ eventIdx: false, windowNs: 10_000, paused: true });
    d.mem.writeU16(USED, VIRTQ_USED_F_NO_NOTIFY);
    d.offer(0);
    expect(poller.wait(fds, true)).to.equal(STOP_BIT);
    expect(caught()).to.equal(0);
    expect(usedFlags(d)).to.equal(VIRTQ_USED_F_NO_NOTIFY);
  });

  it('stops polling a queue that idles: the window shrinks to nothing after long sleeps', () => {
    const { poller, window, fds } = setup({ eventIdx: false, windowNs: 10_000 });
    expect(window.windowNs).to.be.above(0);
    for (let i = 0; i < 4; i++) window.afterIdle(1_000_000);
    expect(window.windowNs).to.equal(0);
    expect(poller.wait(fds, true)).to.equal(STOP_BIT);
  });

  it('a pop that arms lifts a stale "do not notify" from an empty ring without event index', () => {
    const { d } = setup({ eventIdx: false });
    d.mem.writeU16(USED, VIRTQ_USED_F_NO_NOTIFY);
    expect(d.q.withLock(() => d.q.pop(false))).to.equal(null);
    expect(usedFlags(d)).to.equal(VIRTQ_USED_F_NO_NOTIFY);
    expect(d.q.withLock(() => d.q.pop())).to.equal(null);
    expect(usedFlags(d)).to.equal(0);
  });
});
