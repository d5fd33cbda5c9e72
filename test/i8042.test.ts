import { expect } from 'chai';
import {
  I8042,
  I8042_AUX_IRQ,
  I8042_COMMAND_PORT,
  I8042_DATA_PORT,
  I8042_KBD_IRQ,
  I8042_PORT_OFFSET,
  I8042_SELF_TEST_OK,
  I8042Cmd,
  I8042Ctr,
  I8042Output,
  I8042Status,
  type I8042State,
  PS2_NO_DEVICE_REPLY,
} from '../src/devices/i8042.js';
import { deviceHost } from './helpers/recording.js';

function setup(state: I8042State = I8042.allocate()) {
  const { host, irq, vm } = deviceHost();
  const kbc = new I8042(state, host, { kbdIrq: I8042_KBD_IRQ, auxIrq: I8042_AUX_IRQ });
  const status = (): number => kbc.commandPort.read(0, 1, 0);
  const data = (): number => kbc.dataPort.read(0, 1, 0);
  const command = (value: number): void => kbc.commandPort.write(0, 1, value, 0);
  const send = (value: number): void => kbc.dataPort.write(0, 1, value, 0);
  /** Like Linux's i8042_command: a command, parameter bytes, then `replies` bytes read as soon as OBF says so. */
  const i8042Command = (cmd: number, params: number[], replies: number): number[] => {
    command(cmd);
    for (const p of params) send(p);
    const out: number[] = [];
    for (let i = 0; i < replies; i++) {
      expect(status() & I8042Status.OBF, `reply ${i} to 0x${cmd.toString(16)} is ready at once`).to.equal(I8042Status.OBF);
      out.push(data());
    }
    return out;
  };
  return { state, kbc, irq, vm, status, data, command, send, i8042Command };
}

describe('I8042', () => {
  describe('ports and power-up state', () => {
    it('decodes 0x60 and 0x64 with IRQ 1 and 12', () => {
      expect([I8042_DATA_PORT, I8042_COMMAND_PORT, I8042_KBD_IRQ, I8042_AUX_IRQ]).to.deep.equal([0x60, 0x64, 1, 12]);
      expect([I8042_PORT_OFFSET.Data, I8042_PORT_OFFSET.Command]).to.deep.equal([0, 4]);
    });

    it('comes up empty and unlocked, with the translation bit set and SYS clear', () => {
      const { status, data, i8042Command, irq } = setup();
      expect(status()).to.equal(I8042Status.UNLOCKED);
      expect(data()).to.equal(0);
      expect(i8042Command(I8042Cmd.ReadCtr, [], 1)).to.deep.equal([I8042Ctr.XLATE]);
      expect(irq.takeEvents()).to.deep.equal([]);
    });

    it('answers its offset-based interface the same way, and 0xff between the ports', () => {
      const { kbc } = setup();
      kbc.write(I8042_PORT_OFFSET.Command, 1, I8042Cmd.SelfTest, 0);
      expect(kbc.read(I8042_PORT_OFFSET.Command, 1, 0) & I8042Status.OBF).to.equal(I8042Status.OBF);
      expect(kbc.read(I8042_PORT_OFFSET.Data, 1, 0)).to.equal(I8042_SELF_TEST_OK);
      expect(kbc.read(2, 1, 0)).to.equal(0xff);
    });
  });

  describe('controller commands', () => {
    it('passes its self-test with 0x55, which sets the system flag', () => {
      const { status, data, command } = setup();
      command(I8042Cmd.SelfTest);
      expect(status()).to.equal(I8042Status.OBF | I8042Status.SYS | I8042Status.CMD | I8042Status.UNLOCKED);
      expect(data()).to.equal(0x55);
      expect(status() & I8042Status.OBF).to.equal(0);
    });

    it('reads and writes the command byte; SYS in the status follows its bit 2', () => {
      const { status, i8042Command } = setup();
      i8042Command(I8042Cmd.WriteCtr, [0x65], 0);
      expect(status() & I8042Status.CMD).to.equal(0); // the last write was data
      expect(status() & I8042Status.SYS).to.equal(I8042Status.SYS);
      expect(i8042Command(I8042Cmd.ReadCtr, [], 1)).to.deep.equal([0x65]);
      i8042Command(I8042Cmd.WriteCtr, [0x00], 0);
      expect(status() & I8042Status.SYS).to.equal(0);
    });

    it('passes both interface tests with 0x00', () => {
      const { i8042Command } = setup();
      expect(i8042Command(I8042Cmd.KbdTest, [], 1)).to.deep.equal([0x00]);
      expect(i8042Command(I8042Cmd.AuxTest, [], 1)).to.deep.equal([0x00]);
    });

    it('disables and enables the ports through the command byte', () => {
      const { i8042Command } = setup();
      const ctr = (): number => i8042Command(I8042Cmd.ReadCtr, [], 1)[0]!;
      i8042Command(I8042Cmd.KbdDisable, [], 0);
      i8042Command(I8042Cmd.AuxDisable, [], 0);
      expect(ctr()).to.equal(I8042Ctr.XLATE | I8042Ctr.KBDDIS | I8042Ctr.AUXDIS);
      i8042Command(I8042Cmd.KbdEnable, [], 0);
      expect(ctr()).to.equal(I8042Ctr.XLATE | I8042Ctr.AUXDIS);
      i8042Command(I8042Cmd.AuxEnable, [], 0);
      expect(ctr()).to.equal(I8042Ctr.XLATE);
    });

    it('treats the A20 commands as no-ops: A20 stays on in the output port', () => {
      const { i8042Command } = setup();
      i8042Command(I8042Cmd.A20Disable, [], 0);
      expect(i8042Command(I8042Cmd.ReadOutput, [], 1)[0]! & I8042Output.A20).to.equal(I8042Output.A20);
      i8042Command(I8042Cmd.WriteOutput, [0x01], 0);
      expect(i8042Command(I8042Cmd.ReadOutput, [], 1)).to.deep.equal([I8042Output.ResetDeasserted | I8042Output.A20]);
      expect(i8042Command(I8042Cmd.ReadInput, [], 1)).to.deep.equal([0x80]);
    });

    it('queues back-to-back replies instead of losing them', () => {
      const { command, data, status } = setup();
      command(I8042Cmd.SelfTest);
      command(I8042Cmd.KbdTest);
      command(I8042Cmd.ReadCtr);
      expect([data(), data(), data()]).to.deep.equal([0x55, 0x00, I8042Ctr.XLATE | I8042Ctr.SYS]);
      expect(status() & I8042Status.OBF).to.equal(0);
    });
  });

  describe('reset', () => {
    it('requests a VM reset on command 0xFE', () => {
      const { command, vm, kbc } = setup();
      command(I8042Cmd.Reset);
      expect(vm.stops).to.deep.equal([{ kind: 'reset' }]);
      expect(kbc.stats().resets).to.equal(1);
    });

    it('resets on any pulse command that pulses bit 0, and not on 0xFF', () => {
      const { command, vm } = setup();
      command(0xff);
      command(0xf1);
      expect(vm.stops).to.deep.equal([]);
      command(0xf0);
      expect(vm.stops).to.deep.equal([{ kind: 'reset' }]);
    });

    it('resets when the output port is written with bit 0 clear (0xD1)', () => {
      const { i8042Command, vm } = setup();
      i8042Command(I8042Cmd.WriteOutput, [0x03], 0);
      expect(vm.stops).to.deep.equal([]);
      i8042Command(I8042Cmd.WriteOutput, [0xfe], 0);
      expect(vm.stops).to.deep.equal([{ kind: 'reset' }]);
    });
  });

  describe('no devices attached', () => {
    it('answers a byte for the keyboard with 0xFE and a timeout, on IRQ 1 when enabled', () => {
      const { send, status, data, irq, i8042Command, kbc } = setup();
      i8042Command(I8042Cmd.WriteCtr, [I8042Ctr.KBDINT | I8042Ctr.XLATE], 0);
      irq.takeEvents();
      send(0xf2); // ATKBD GETID
      expect(status()).to.equal(I8042Status.OBF | I8042Status.TIMEOUT | I8042Status.UNLOCKED);
      expect(irq.takeEvents()).to.deep.equal([[I8042_KBD_IRQ, true]]);
      expect(data()).to.equal(PS2_NO_DEVICE_REPLY);
      expect(irq.takeEvents()).to.deep.equal([[I8042_KBD_IRQ, false]]);
      expect(status() & I8042Status.TIMEOUT).to.equal(I8042Status.TIMEOUT);
      // The next write clears the timeout.
      i8042Command(I8042Cmd.KbdTest, [], 1);
      expect(status() & I8042Status.TIMEOUT).to.equal(0);
      expect(kbc.stats().deviceBytes).to.equal(1);
    });

    it('answers a byte for the AUX device (0xD4) with 0xFE as AUX data, on IRQ 12 when enabled', () => {
      const { command, send, status, data, irq, i8042Command } = setup();
      i8042Command(I8042Cmd.WriteCtr, [I8042Ctr.AUXINT], 0);
      command(I8042Cmd.AuxSend);
      send(0xff);
      expect(status()).to.equal(I8042Status.OBF | I8042Status.AUXDATA | I8042Status.TIMEOUT | I8042Status.UNLOCKED);
      expect(irq.takeEvents()).to.deep.equal([[I8042_AUX_IRQ, true]]);
      expect(data()).to.equal(PS2_NO_DEVICE_REPLY);
      expect(irq.takeEvents()).to.deep.equal([[I8042_AUX_IRQ, false]]);
    });

    it('loops bytes back as keyboard (0xD2) or AUX (0xD3) data', () => {
      const { status, data, i8042Command } = setup();
      i8042Command(I8042Cmd.KbdLoop, [0x12], 0);
      expect(status()).to.equal(I8042Status.OBF | I8042Status.UNLOCKED);
      expect(data()).to.equal(0x12);
      i8042Command(I8042Cmd.AuxLoop, [0x5a], 0);
      expect(status()).to.equal(I8042Status.OBF | I8042Status.AUXDATA | I8042Status.UNLOCKED);
      expect(data()).to.equal(0x5a);
    });

    it('raises IRQ 1 for controller replies only while KBDINT is set', () => {
      const { command, data, irq, i8042Command } = setup();
      command(I8042Cmd.SelfTest);
      data();
      expect(irq.takeEvents()).to.deep.equal([]);
      i8042Command(I8042Cmd.WriteCtr, [I8042Ctr.KBDINT], 0);
      command(I8042Cmd.ReadCtr);
      expect(irq.takeEvents()).to.deep.equal([[I8042_KBD_IRQ, true]]);
      expect(data()).to.equal(I8042Ctr.KBDINT);
      expect(irq.takeEvents()).to.deep.equal([[I8042_KBD_IRQ, false]]);
    });

    it("lets Linux's i8042 probe run to the end without waiting on a single timeout", () => {
      // drivers/input/serio/i8042.c, in order: flush, controller self-test,
      // read CTR twice, write CTR, AUX checks (loop, test, disable/enable,
      // loop with the AUX IRQ), then keyboard port enable; atkbd's GETID.
      const { status, data, command, send, i8042Command, irq } = setup();
      let flushed = 0;
      while (status() & I8042Status.OBF && flushed < 16) {
        data();
        flushed++;
      }
      expect(flushed).to.equal(0);
      expect(i8042Command(I8042Cmd.SelfTest, [], 1)).to.deep.equal([I8042_SELF_TEST_OK]);
      const ctr = i8042Command(I8042Cmd.ReadCtr, [], 1)[0]!;
      expect(i8042Command(I8042Cmd.ReadCtr, [], 1)[0]).to.equal(ctr);
      const probeCtr = (ctr & ~I8042Ctr.KBDINT & ~I8042Ctr.AUXINT) | I8042Ctr.KBDDIS;
      i8042Command(I8042Cmd.WriteCtr, [probeCtr], 0);
      // i8042_check_aux(): the loop reply must carry the AUX-data bit.
      command(I8042Cmd.AuxLoop);
      send(0x5a);
      expect(status() & (I8042Status.OBF | I8042Status.AUXDATA)).to.equal(I8042Status.OBF | I8042Status.AUXDATA);
      expect(data()).to.equal(0x5a);
      expect(i8042Command(I8042Cmd.AuxTest, [], 1)).to.deep.equal([0x00]);
      i8042Command(I8042Cmd.AuxDisable, [], 0);
      expect(i8042Command(I8042Cmd.ReadCtr, [], 1)[0]! & I8042Ctr.AUXDIS).to.equal(I8042Ctr.AUXDIS);
      i8042Command(I8042Cmd.AuxEnable, [], 0);
      expect(i8042Command(I8042Cmd.ReadCtr, [], 1)[0]! & I8042Ctr.AUXDIS).to.equal(0);
      // The AUX IRQ test: AUXINT on, loop 0xa5, expect IRQ 12.
      i8042Command(I8042Cmd.WriteCtr, [(probeCtr & ~I8042Ctr.AUXDIS) | I8042Ctr.AUXINT], 0);
      irq.takeEvents();
      command(I8042Cmd.AuxLoop);
      send(0xa5);
      expect(irq.takeEvents()).to.deep.equal([[I8042_AUX_IRQ, true]]);
      expect(data()).to.equal(0xa5);
      expect(irq.takeEvents()).to.deep.equal([[I8042_AUX_IRQ, false]]);
      // Keyboard port enabled with interrupts; atkbd sends GETID and gets a NAK at once.
      i8042Command(I8042Cmd.WriteCtr, [I8042Ctr.KBDINT | I8042Ctr.AUXINT | I8042Ctr.XLATE], 0);
      send(0xf2);
      expect(status() & (I8042Status.OBF | I8042Status.TIMEOUT)).to.equal(I8042Status.OBF | I8042Status.TIMEOUT);
      expect(data()).to.equal(0xfe);
    });
  });

  describe('sharing', () => {
    it('keeps one controller for every view', () => {
      const a = setup();
      const b = setup(a.state);
      a.command(I8042Cmd.SelfTest);
      expect(b.status() & I8042Status.OBF).to.equal(I8042Status.OBF);
      expect(b.data()).to.equal(0x55);
      expect(a.status() & I8042Status.OBF).to.equal(0);
      b.command(I8042Cmd.Reset);
      expect(b.vm.stops).to.deep.equal([{ kind: 'reset' }]);
      expect(a.kbc.stats().resets).to.equal(1);
    });
  });
});
