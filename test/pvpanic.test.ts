import { expect } from 'chai';
import { Pvpanic, PvpanicEvent } from '../src/devices/pvpanic.js';
import type { StopReason } from '../src/devices/device.js';
import { exitStatusOf, describeStop } from '../src/vm/stop-reason.js';
import { panicMessage, TextTail } from '../src/vm/console-tail.js';

function device(): { dev: Pvpanic; stops: StopReason[]; logs: string[] } {
  const stops: StopReason[] = [];
  const logs: string[] = [];
  const dev = new Pvpanic({ requestStop: (r) => stops.push(r), log: (_l, m) => logs.push(m) });
  return { dev, stops, logs };
}

describe('pvpanic device', () => {
  it('reads back the events it supports: PANICKED, CRASH_LOADED and SHUTDOWN', () => {
    expect(device().dev.read(0, 1)).to.equal(0b111);
  });

  it('stops the VM with a panic when the guest writes PANICKED', () => {
    const { dev, stops } = device();
    dev.write(0, 1, PvpanicEvent.panicked);
    expect(stops).to.deep.equal([{ kind: 'panic' }]);
  });

  it('lets the guest go on (and says so once) when a crash kernel is loaded', () => {
    const { dev, stops, logs } = device();
    dev.write(0, 1, PvpanicEvent.crashLoaded);
    dev.write(0, 1, PvpanicEvent.crashLoaded);
    expect(stops).to.deep.equal([]);
    expect(logs).to.have.length(1);
    expect(logs[0]).to.match(/crash kernel/);
  });

  it('ignores writes of no event', () => {
    const { dev, stops } = device();
    dev.write(0, 1, 0);
    expect(stops).to.deep.equal([]);
  });

  it('maps a panic to exit status 10 and a message with the reason', () => {
    expect(exitStatusOf({ kind: 'panic' })).to.equal(10);
    expect(describeStop({ kind: 'panic', detail: 'VFS: Unable to mount root fs' })).to.equal('the guest kernel panicked: VFS: Unable to mount root fs');
    expect(describeStop({ kind: 'panic' })).to.equal('the guest kernel panicked');
  });
});

describe('console tail', () => {
  it('keeps the last N bytes of the output', () => {
    const t = new TextTail(10);
    t.push(Buffer.from('0123456'));
    t.push(Buffer.from('789abc'));
    expect(t.text()).to.equal('3456789abc');
  });

  it("finds the last panic line's reason", () => {
    const log = '[ 1.0] Kernel panic - not syncing: first\r\n[ 2.0] CPU: 0 PID: 1\r\n[ 3.0] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n[ 3.1] ---[ end';
    expect(panicMessage(log)).to.equal('Attempted to kill init! exitcode=0x00000100');
    expect(panicMessage('no panic here')).to.equal(undefined);
  });
});
