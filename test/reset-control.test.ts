import { expect } from 'chai';
import { noIrqLines } from '../src/devices/device.js';
import {
  RESET_CONTROL_PORT,
  RESET_CONTROL_PORT_COUNT,
  RESET_CONTROL_VALUE,
  ResetControl,
  ResetControlBits,
  type ResetControlState,
} from '../src/devices/reset-control.js';
import { deviceHost } from './helpers/recording.js';

function setup(state: ResetControlState = ResetControl.allocate()) {
  const { host, vm } = deviceHost({ irq: noIrqLines });
  const rc = new ResetControl(state, host);
  const rd = (): number => rc.read(0, 1, 0);
  const wr = (value: number): void => rc.write(0, 1, value, 0);
  return { state, rc, vm, rd, wr };
}

describe('ResetControl', () => {
  it('is port 0xCF9, one byte, and the FADT reset value is 0x06', () => {
    expect([RESET_CONTROL_PORT, RESET_CONTROL_PORT_COUNT, RESET_CONTROL_VALUE]).to.deep.equal([0xcf9, 1, 0x06]);
  });

  it('comes up reading 0 with no reset requested', () => {
    const { rd, vm, rc } = setup();
    expect(rd()).to.equal(0);
    expect(vm.stops).to.deep.equal([]);
    expect(rc.stats()).to.deep.equal({ resets: 0 });
  });

  it("follows Linux's reboot=pci sequence: 0x02 selects a hard reset, 0x06 performs it", () => {
    const { rd, wr, vm, rc } = setup();
    wr(ResetControlBits.SystemReset);
    expect(vm.stops).to.deep.equal([]);
    expect(rd()).to.equal(0x02);
    wr(ResetControlBits.SystemReset | ResetControlBits.ResetCpu);
    expect(vm.stops).to.deep.equal([{ kind: 'reset' }]);
    expect(rd()).to.equal(0x06);
    expect(rc.stats()).to.deep.equal({ resets: 1 });
  });

  it('resets on a full reset (0x0E) and on a soft reset (0x04) alike', () => {
    const a = setup();
    a.wr(0x0e);
    expect(a.vm.stops).to.deep.equal([{ kind: 'reset' }]);
    expect(a.rd()).to.equal(0x0e);
    const b = setup();
    b.wr(0x04);
    expect(b.vm.stops).to.deep.equal([{ kind: 'reset' }]);
  });

  it('stores only bits 1-3 and ignores writes without RCPU', () => {
    const { rd, wr, vm } = setup();
    wr(0xf3);
    expect(rd()).to.equal(0x02);
    wr(0x08);
    expect(rd()).to.equal(0x08);
    expect(vm.stops).to.deep.equal([]);
  });

  it('reads bytes past the register as 0xff and ignores writes there', () => {
    const { rc, vm } = setup();
    rc.write(0, 1, 0x02, 0);
    expect(rc.read(0, 2, 0)).to.equal(0xff02);
    rc.write(1, 1, 0x06, 0);
    expect(vm.stops).to.deep.equal([]);
  });

  it('is shared between views', () => {
    const a = setup();
    const b = setup(a.state);
    a.wr(0x02);
    expect(b.rd()).to.equal(0x02);
    b.wr(0x06);
    expect(a.rc.stats()).to.deep.equal({ resets: 1 });
  });
});
