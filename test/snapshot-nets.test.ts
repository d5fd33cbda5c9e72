import { expect } from 'chai';
import { restoredNets } from '../src/vm/snapshot.js';
import type { NetOptions } from '../src/vm/net-options.js';

describe('the NICs a restore opens', () => {
  const saved: NetOptions[] = [
    { kind: 'tap', name: 'tap0', mac: '52:54:00:00:00:01', queues: 2 },
    { kind: 'user', mac: '52:54:00:00:00:02', hostfwd: [{ protocol: 'tcp', hostPort: 2222, guestPort: 22 }] },
  ];

  it('are the snapshot\'s when none are given', () => {
    expect(restoredNets(undefined, saved)).to.deep.equal(saved);
    expect(restoredNets([], saved)).to.deep.equal(saved);
    expect(restoredNets(undefined, [])).to.deep.equal([]);
  });

  it('may move to another back end of the same kind (another tap, other forwarded ports), keeping the MAC and queue pairs the guest saw', () => {
    const given: NetOptions[] = [{ kind: 'tap', name: 'tap9' }, { kind: 'user', hostfwd: [] }];
    expect(restoredNets(given, saved)).to.deep.equal([
      { kind: 'tap', name: 'tap9', mac: '52:54:00:00:00:01', queues: 2 },
      { kind: 'user', mac: '52:54:00:00:00:02', hostfwd: [] },
    ]);
    // The same MAC however it is spelt.
    expect(restoredNets([{ kind: 'tap', name: 'tap9', mac: '52-54-00-00-00-01', queues: 2 }, { kind: 'user' }], saved)[0]!.mac).to.equal('52:54:00:00:00:01');
  });

  it('refuses what the guest would see change: another count, kind, MAC or number of queue pairs', () => {
    expect(() => restoredNets([{ kind: 'user' }], [])).to.throw(/the snapshot has no NICs, 1 were given; give none, or one for each/);
    expect(() => restoredNets([{ kind: 'tap', name: 'tap9' }], saved)).to.throw(/the snapshot has 2 NIC\(s\) \(tap=tap0,mac=52:54:00:00:00:01,queues=2 user,mac=52:54:00:00:00:02\), 1 were given/);
    expect(() => restoredNets([{ kind: 'user' }, { kind: 'user' }], saved)).to.throw(/NIC 0 is tap=tap0,mac=52:54:00:00:00:01,queues=2: its back end may change, not its kind/);
    expect(() => restoredNets([{ kind: 'tap', name: 'tap0', mac: '52:54:00:00:00:09' }, { kind: 'user' }], saved)).to.throw(/NIC 0's MAC is 52:54:00:00:00:01, 52:54:00:00:00:09 was given/);
    expect(() => restoredNets([{ kind: 'tap', name: 'tap0', queues: 1 }, { kind: 'user' }], saved)).to.throw(/NIC 0 has 2 queue pairs, 1 were given/);
  });
});
