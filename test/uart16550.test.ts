import { expect } from 'chai';
import { Worker } from 'node:worker_threads';
import type { IrqLines } from '../src/devices/device.js';
import {
  Uart16550,
  UartFcr,
  UartIer,
  UartIir,
  UartLsr,
  UartMcr,
  UartMsr,
  UartReg,
  type Uart16550AllocateOptions,
  type Uart16550State,
} from '../src/devices/uart16550.js';
import { deviceHost, RecordingIrq } from './helpers/recording.js';
import type { UartWorkerData } from './uart16550.worker.js';

const IRQ = 4;
const THRE_TEMT = UartLsr.THRE | UartLsr.TEMT;

function view(state: Uart16550State, irq: IrqLines): Uart16550 {
  return new Uart16550(state, deviceHost({ irq }).host, { irq: IRQ });
}

function setup(options?: Uart16550AllocateOptions) {
  const state = Uart16550.allocate(options);
  const irq = new RecordingIrq(IRQ);
  const uart = view(state, irq);
  const rd = (reg: number): number => uart.read(reg, 1, 0);
  const wr = (reg: number, value: number): void => uart.write(reg, 1, value, 0);
  const send = (text: string): void => {
    for (const c of Buffer.from(text)) wr(UartReg.Data, c);
  };
  const text = (): string => Buffer.from(uart.takeOutput()).toString('latin1');
  return { state, irq, uart, rd, wr, send, text };
}

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'latin1'));

describe('Uart16550', () => {
  describe('reset state and simple registers', () => {
    it('comes up with 16550A reset values', () => {
      const { uart, rd, irq } = setup();
      expect(rd(UartReg.Ier)).to.equal(0);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
      expect(rd(UartReg.Lcr)).to.equal(0);
      expect(rd(UartReg.Mcr)).to.equal(0);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
      expect(rd(UartReg.Msr)).to.equal(UartMsr.CTS | UartMsr.DSR | UartMsr.DCD);
      expect(rd(UartReg.Scr)).to.equal(0);
      expect(rd(UartReg.Data)).to.equal(0);
      expect(uart.divisor).to.equal(1);
      expect(uart.baud).to.equal(115200);
      expect(uart.rxTriggerLevel).to.equal(1);
      expect(uart.stats()).to.deep.equal({ txBytes: 0, rxBytes: 0, txDrops: 0, rxOverruns: 0 });
      expect(irq.take()).to.deep.equal([]);
    });

    it('keeps what is written to the scratch register', () => {
      const { rd, wr } = setup();
      for (const v of [0xa5, 0x5a, 0xff, 0x00]) {
        wr(UartReg.Scr, v);
        expect(rd(UartReg.Scr)).to.equal(v);
      }
    });

    it('reads back LCR in full and masks IER to 4 bits and MCR to 5 bits', () => {
      const { rd, wr } = setup();
      wr(UartReg.Lcr, 0x5b);
      expect(rd(UartReg.Lcr)).to.equal(0x5b);
      wr(UartReg.Ier, 0xff);
      expect(rd(UartReg.Ier)).to.equal(0x0f);
      wr(UartReg.Mcr, 0xe3);
      expect(rd(UartReg.Mcr)).to.equal(0x03);
    });

    it('ignores writes to LSR and MSR', () => {
      const { rd, wr } = setup();
      wr(UartReg.Lsr, 0xff);
      wr(UartReg.Msr, 0x0f);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
      expect(rd(UartReg.Msr)).to.equal(0xb0);
    });
  });

  describe('divisor latch', () => {
    it('maps offsets 0 and 1 to DLL/DLM while LCR.DLAB is set', () => {
      const { uart, rd, wr, text, send } = setup();
      wr(UartReg.Ier, UartIer.RDI | UartIer.RLSI);
      wr(UartReg.Lcr, 0x83);
      wr(UartReg.Data, 0x0c);
      wr(UartReg.Ier, 0x00);
      expect(rd(UartReg.Data)).to.equal(0x0c);
      expect(rd(UartReg.Ier)).to.equal(0x00);
      expect(rd(UartReg.Lcr)).to.equal(0x83);
      expect(uart.divisor).to.equal(12);
      expect(uart.baud).to.equal(9600);
      expect(text()).to.equal('');
      expect(uart.stats().txBytes).to.equal(0);

      wr(UartReg.Lcr, 0x03);
      expect(rd(UartReg.Ier)).to.equal(UartIer.RDI | UartIer.RLSI);
      send('A');
      expect(text()).to.equal('A');
      expect(uart.divisor).to.equal(12);
    });

    it('combines DLM and DLL into a 16-bit divisor', () => {
      const { uart, wr } = setup();
      wr(UartReg.Lcr, 0x80);
      wr(UartReg.Data, 0x01);
      wr(UartReg.Ier, 0x02);
      expect(uart.divisor).to.equal(0x201);
      wr(UartReg.Ier, 0x00);
      wr(UartReg.Data, 0x00);
      expect(uart.divisor).to.equal(0);
      expect(uart.baud).to.equal(0);
    });

    it('treats a 16-bit access at offset 0 as DLL then DLM', () => {
      const { uart, wr } = setup();
      wr(UartReg.Lcr, 0x80);
      uart.write(UartReg.Data, 2, 0x0180, 0);
      expect(uart.divisor).to.equal(0x180);
      expect(uart.baud).to.equal(300);
      expect(uart.read(UartReg.Data, 2, 0)).to.equal(0x0180);
    });
  });

  describe('wide accesses', () => {
    it('splits them into byte accesses of consecutive registers', () => {
      const { uart, rd } = setup();
      uart.write(UartReg.Lcr, 2, 0x0b03, 0);
      expect(rd(UartReg.Lcr)).to.equal(0x03);
      expect(rd(UartReg.Mcr)).to.equal(0x0b);
      uart.write(UartReg.Scr, 1, 0x42, 0);
      expect(uart.read(UartReg.Mcr, 4, 0)).to.equal((0x42 << 24) | (0xb0 << 16) | (THRE_TEMT << 8) | 0x0b);
    });

    it('reads bytes past the last register as 0xff', () => {
      const { uart, wr } = setup();
      wr(UartReg.Scr, 0x11);
      expect(uart.read(UartReg.Scr, 2, 0)).to.equal(0xff11);
      expect(uart.read(UartReg.Scr, 4, 0)).to.equal(0xffffff11);
    });
  });

  describe('transmitter', () => {
    it('sends THR writes to the TX ring in order and keeps THRE/TEMT set', () => {
      const { uart, rd, send, text } = setup();
      send('hello');
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
      expect(text()).to.equal('hello');
      expect(text()).to.equal('');
      expect(uart.stats().txBytes).to.equal(5);
    });

    it('wakes a waiter on new output and times out without it', async () => {
      const { uart, send, text } = setup();
      let seen = uart.outputSnapshot();
      expect(await uart.waitForOutput(seen, 5)).to.equal(false);

      seen = uart.outputSnapshot();
      const woken = uart.waitForOutput(seen);
      setImmediate(() => send('x'));
      expect(await woken).to.equal(true);
      expect(text()).to.equal('x');

      seen = uart.outputSnapshot();
      send('y');
      expect(await uart.waitForOutput(seen, 1000)).to.equal(true);
      expect(text()).to.equal('y');
    });

    it('drops THRE/TEMT while the TX ring is full and drops only bytes written anyway', () => {
      const { uart, rd, wr, irq } = setup({ txCapacity: 4 });
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Ier, UartIer.THRI);
      expect(irq.take()).to.deep.equal([true]);

      for (const b of [1, 2, 3]) wr(UartReg.Data, b);
      expect(irq.take()).to.deep.equal([false, true, false, true, false, true]);
      wr(UartReg.Data, 4);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(UartReg.Lsr)).to.equal(0);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);

      wr(UartReg.Data, 5);
      expect(irq.take()).to.deep.equal([]);
      expect(uart.stats()).to.include({ txBytes: 4, txDrops: 1 });

      expect([...uart.takeOutput()]).to.deep.equal([1, 2, 3, 4]);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Thri);
      expect(irq.take()).to.deep.equal([false]);

      wr(UartReg.Data, 6);
      expect([...uart.takeOutput()]).to.deep.equal([6]);
      expect(irq.take()).to.deep.equal([true]);
    });

    it('does not raise THRE on enabling THRI while the TX ring is full, but does once drained', () => {
      const { rd, wr, uart, irq } = setup({ txCapacity: 2 });
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Data, 1);
      wr(UartReg.Data, 2);
      wr(UartReg.Ier, UartIer.THRI);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
      expect(irq.take()).to.deep.equal([]);
      uart.takeOutput();
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Thri);
    });
  });

  describe('THRE interrupt', () => {
    it('is raised when THRI is enabled with THR empty and cleared by reading IIR', () => {
      const { rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Ier, UartIer.THRI);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Thri);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
      expect(irq.take()).to.deep.equal([]);
    });

    it('is re-armed by every THR write, with a low-high pulse while it is pending', () => {
      const { rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Ier, UartIer.THRI);
      rd(UartReg.IirFcr);
      expect(irq.take()).to.deep.equal([true, false]);

      wr(UartReg.Data, 0x41);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Thri);

      wr(UartReg.Data, 0x42);
      expect(irq.take()).to.deep.equal([false, true]);
      wr(UartReg.Data, 0x43);
      expect(irq.take()).to.deep.equal([false, true]);
    });

    it('is re-armed by a rising edge of IER.THRI and dropped when THRI is cleared', () => {
      const { rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Ier, UartIer.THRI);
      rd(UartReg.IirFcr);
      wr(UartReg.Ier, UartIer.THRI); // no edge: stays cleared
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
      wr(UartReg.Ier, 0);
      wr(UartReg.Ier, UartIer.THRI);
      expect(irq.take()).to.deep.equal([true, false, true]);
      wr(UartReg.Ier, 0);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
    });

    it('latches while THRI is disabled without reaching IIR', () => {
      const { rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Data, 0x41);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
      expect(irq.take()).to.deep.equal([]);
    });

    it('is not cleared by an IIR read that reports a higher-priority source', () => {
      const { uart, rd, wr } = setup();
      wr(UartReg.Ier, UartIer.THRI | UartIer.RDI);
      uart.receive(bytes('z'));
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Rdi);
      expect(rd(UartReg.Data)).to.equal(0x7a);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Thri);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
    });
  });

  describe('interrupt priority', () => {
    it('reports line status > received data > THRE > modem status, each cleared its own way', () => {
      const { uart, rd, wr, irq } = setup({ rxCapacity: 2 });
      wr(UartReg.Mcr, UartMcr.LOOP | UartMcr.OUT2); // CTS and DSR drop: modem status delta
      expect(irq.take()).to.deep.equal([]);
      wr(UartReg.Ier, UartIer.RDI | UartIer.THRI | UartIer.RLSI | UartIer.MSI);
      expect(irq.take()).to.deep.equal([true]);
      expect(uart.receive(bytes('abc'))).to.equal(2);

      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Rlsi);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Rlsi);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT | UartLsr.DR | UartLsr.OE);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Rdi);
      expect(rd(UartReg.Data)).to.equal(0x61);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Rdi);
      expect(rd(UartReg.Data)).to.equal(0x62);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Thri);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Msi);
      expect(irq.take()).to.deep.equal([]);
      expect(rd(UartReg.Msr)).to.equal(UartMsr.DCD | UartMsr.DCTS | UartMsr.DDSR);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
    });

    it('skips sources whose IER bit is clear', () => {
      const { uart, rd, wr } = setup({ rxCapacity: 2 });
      wr(UartReg.Ier, UartIer.RDI);
      uart.receive(bytes('abc'));
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Rdi);
      wr(UartReg.Ier, UartIer.MSI);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
    });
  });

  describe('FIFO control', () => {
    it('reports the FIFOs as enabled in IIR bits 6-7', () => {
      const { rd, wr } = setup();
      wr(UartReg.IirFcr, UartFcr.Enable);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.FifoEnabled | UartIir.NoInt);
      wr(UartReg.Ier, UartIer.THRI);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.FifoEnabled | UartIir.Thri);
      wr(UartReg.IirFcr, 0); // switching the FIFOs off empties them, re-arming THRE
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Thri);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
    });

    it('records the RX trigger level, but only with the FIFOs enabled', () => {
      const { uart, wr } = setup();
      const levels: Array<[number, number]> = [
        [0x01, 1],
        [0x41, 4],
        [0x81, 8],
        [0xc1, 14],
        [0xc0, 1],
      ];
      for (const [fcr, level] of levels) {
        wr(UartReg.IirFcr, fcr);
        expect(uart.rxTriggerLevel).to.equal(level);
      }
    });

    it('reports received data below the trigger level as a character timeout', () => {
      const { uart, rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.IirFcr, 0x41);
      wr(UartReg.Ier, UartIer.RDI);
      uart.receive(bytes('a'));
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.FifoEnabled | UartIir.RxTimeout);
      uart.receive(bytes('bcd'));
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.FifoEnabled | UartIir.Rdi);
      rd(UartReg.Data);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.FifoEnabled | UartIir.RxTimeout);
      rd(UartReg.Data);
      rd(UartReg.Data);
      expect(irq.take()).to.deep.equal([]);
      expect(rd(UartReg.Data)).to.equal(0x64);
      expect(irq.take()).to.deep.equal([false]);
    });

    it('empties the RX FIFO on FCR bit 1 and lowers the interrupt', () => {
      const { uart, rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.IirFcr, UartFcr.Enable);
      wr(UartReg.Ier, UartIer.RDI);
      uart.receive(bytes('abc'));
      expect(irq.take()).to.deep.equal([true]);
      wr(UartReg.IirFcr, UartFcr.Enable | UartFcr.ClearRx);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.FifoEnabled | UartIir.NoInt);
      uart.receive(bytes('d'));
      expect(rd(UartReg.Data)).to.equal(0x64);
    });

    it('empties the RX FIFO when the FIFOs are switched on or off', () => {
      const { uart, rd, wr } = setup();
      uart.receive(bytes('ab'));
      wr(UartReg.IirFcr, UartFcr.Enable);
      expect(rd(UartReg.Lsr) & UartLsr.DR).to.equal(0);
      uart.receive(bytes('cd'));
      wr(UartReg.IirFcr, UartFcr.Enable); // no mode change: kept
      expect(rd(UartReg.Lsr) & UartLsr.DR).to.equal(UartLsr.DR);
      wr(UartReg.IirFcr, 0);
      expect(rd(UartReg.Lsr) & UartLsr.DR).to.equal(0);
    });

    it('re-arms THRE on FCR bit 2 and keeps bytes already sent', () => {
      const { rd, wr, irq, send, text } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.IirFcr, UartFcr.Enable);
      wr(UartReg.Ier, UartIer.THRI);
      send('xy');
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.FifoEnabled | UartIir.Thri);
      irq.take();
      wr(UartReg.IirFcr, UartFcr.Enable | UartFcr.ClearTx);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.FifoEnabled | UartIir.Thri);
      expect(text()).to.equal('xy');
    });
  });

  describe('receiver', () => {
    it('hands received bytes to RBR in order, with DR while any wait', () => {
      const { uart, rd } = setup();
      expect(uart.receive(bytes('ok!'))).to.equal(3);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT | UartLsr.DR);
      expect([rd(UartReg.Data), rd(UartReg.Data)]).to.deep.equal([0x6f, 0x6b]);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT | UartLsr.DR);
      expect(rd(UartReg.Data)).to.equal(0x21);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
      expect(rd(UartReg.Data)).to.equal(0);
      expect(uart.stats()).to.include({ rxBytes: 3, rxOverruns: 0 });
      expect(uart.receive(new Uint8Array(0))).to.equal(0);
    });

    it('raises the data interrupt while bytes wait', () => {
      const { uart, rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Ier, UartIer.RDI);
      uart.receive(bytes('a'));
      uart.receive(bytes('b'));
      expect(irq.take()).to.deep.equal([true]);
      rd(UartReg.Data);
      expect(irq.take()).to.deep.equal([]);
      rd(UartReg.Data);
      expect(irq.take()).to.deep.equal([false]);
    });

    it('accepts what fits, drops the rest and sets OE until LSR is read', () => {
      const { uart, rd, wr, irq } = setup({ rxCapacity: 4 });
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Ier, UartIer.RLSI);
      expect(uart.receiveSpace()).to.equal(4);
      expect(uart.receive(bytes('abcdef'))).to.equal(4);
      expect(uart.receiveSpace()).to.equal(0);
      expect(uart.receive(bytes('g'))).to.equal(0);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Rlsi);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT | UartLsr.DR | UartLsr.OE);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT | UartLsr.DR);
      expect(uart.stats()).to.include({ rxBytes: 4, rxOverruns: 3 });
      expect([0, 1, 2, 3].map(() => rd(UartReg.Data))).to.deep.equal([0x61, 0x62, 0x63, 0x64]);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
    });
  });

  describe('modem status', () => {
    it('shows CTS, DSR and DCD asserted whatever MCR drives outside loopback', () => {
      const { rd, wr } = setup();
      for (const mcr of [0x00, 0x0f, 0x03]) {
        wr(UartReg.Mcr, mcr);
        expect(rd(UartReg.Msr)).to.equal(UartMsr.CTS | UartMsr.DSR | UartMsr.DCD);
      }
    });

    it('mirrors the MCR outputs in loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD', () => {
      const { rd, wr } = setup();
      wr(UartReg.Mcr, UartMcr.LOOP);
      expect(rd(UartReg.Msr)).to.equal(UartMsr.DCTS | UartMsr.DDSR | UartMsr.DDCD);
      expect(rd(UartReg.Msr)).to.equal(0);
      const wiring: Array<[number, number]> = [
        [UartMcr.RTS, UartMsr.CTS],
        [UartMcr.DTR, UartMsr.DSR],
        [UartMcr.OUT1, UartMsr.RI],
        [UartMcr.OUT2, UartMsr.DCD],
        [0x0f, 0xf0],
      ];
      for (const [mcr, lines] of wiring) {
        wr(UartReg.Mcr, UartMcr.LOOP | mcr);
        rd(UartReg.Msr);
        expect(rd(UartReg.Msr)).to.equal(lines);
        wr(UartReg.Mcr, UartMcr.LOOP);
        rd(UartReg.Msr);
      }
    });

    it('sets the delta bits on changes, TERI only on the trailing edge of RI, and clears them on read', () => {
      const { rd, wr } = setup();
      wr(UartReg.Mcr, UartMcr.LOOP);
      rd(UartReg.Msr);
      wr(UartReg.Mcr, UartMcr.LOOP | UartMcr.RTS | UartMcr.OUT1);
      expect(rd(UartReg.Msr)).to.equal(UartMsr.CTS | UartMsr.RI | UartMsr.DCTS);
      wr(UartReg.Mcr, UartMcr.LOOP | UartMcr.RTS);
      expect(rd(UartReg.Msr)).to.equal(UartMsr.CTS | UartMsr.TERI);
      wr(UartReg.Mcr, UartMcr.RTS); // out of loopback: DSR and DCD come back
      expect(rd(UartReg.Msr)).to.equal(UartMsr.CTS | UartMsr.DSR | UartMsr.DCD | UartMsr.DDSR | UartMsr.DDCD);
      expect(rd(UartReg.Msr)).to.equal(UartMsr.CTS | UartMsr.DSR | UartMsr.DCD);
    });

    it('raises the modem status interrupt until MSR is read', () => {
      const { rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Ier, UartIer.MSI);
      expect(irq.take()).to.deep.equal([]);
      wr(UartReg.Mcr, UartMcr.LOOP | UartMcr.OUT2);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Msi);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Msi);
      expect(rd(UartReg.Msr)).to.equal(UartMsr.DCD | UartMsr.DCTS | UartMsr.DDSR);
      expect(irq.take()).to.deep.equal([false]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.NoInt);
    });
  });

  describe('loopback', () => {
    it('sends THR writes to the receiver instead of the TX ring', () => {
      const { uart, rd, wr, send, text } = setup();
      wr(UartReg.Mcr, UartMcr.LOOP);
      send('ab');
      expect(text()).to.equal('');
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT | UartLsr.DR);
      expect([rd(UartReg.Data), rd(UartReg.Data)]).to.deep.equal([0x61, 0x62]);
      expect(uart.stats()).to.include({ txBytes: 0, rxBytes: 2 });
      wr(UartReg.Mcr, 0);
      send('c');
      expect(text()).to.equal('c');
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT);
    });

    it('overruns the receiver when it is full, keeping THRE set', () => {
      const { uart, rd, wr } = setup({ rxCapacity: 2 });
      wr(UartReg.Mcr, UartMcr.LOOP);
      for (const b of [1, 2, 3]) wr(UartReg.Data, b);
      expect(rd(UartReg.Lsr)).to.equal(THRE_TEMT | UartLsr.DR | UartLsr.OE);
      expect(uart.stats()).to.include({ rxBytes: 2, rxOverruns: 1, txDrops: 0 });
      expect([rd(UartReg.Data), rd(UartReg.Data)]).to.deep.equal([1, 2]);
    });

    it('raises the data interrupt for looped-back bytes', () => {
      const { rd, wr, irq } = setup();
      wr(UartReg.Mcr, UartMcr.LOOP | UartMcr.OUT2);
      rd(UartReg.Msr);
      wr(UartReg.Ier, UartIer.RDI);
      wr(UartReg.Data, 0x55);
      expect(irq.take()).to.deep.equal([true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Rdi);
      expect(rd(UartReg.Data)).to.equal(0x55);
      expect(irq.take()).to.deep.equal([false]);
    });
  });

  describe('interrupt line', () => {
    it('is gated by MCR.OUT2', () => {
      const { rd, wr, irq } = setup();
      wr(UartReg.Ier, UartIer.THRI);
      expect(irq.take()).to.deep.equal([]);
      wr(UartReg.Mcr, UartMcr.OUT2);
      wr(UartReg.Mcr, UartMcr.OUT2 | UartMcr.DTR);
      wr(UartReg.Mcr, UartMcr.DTR);
      wr(UartReg.Mcr, UartMcr.OUT2);
      expect(irq.take()).to.deep.equal([true, false, true]);
      expect(rd(UartReg.IirFcr)).to.equal(UartIir.Thri);
      expect(irq.take()).to.deep.equal([false]);
      wr(UartReg.Mcr, 0);
      wr(UartReg.Data, 0x41); // pending again, but gated
      expect(irq.take()).to.deep.equal([]);
      wr(UartReg.Mcr, UartMcr.OUT2);
      expect(irq.take()).to.deep.equal([true]);
    });

    it('is driven once per change across every view of the same state', () => {
      const state = Uart16550.allocate();
      const irq = new RecordingIrq(IRQ);
      const a = view(state, irq);
      const b = view(state, irq);
      a.write(UartReg.Mcr, 1, UartMcr.OUT2, 0);
      a.write(UartReg.Ier, 1, UartIer.THRI | UartIer.RDI, 0);
      b.write(UartReg.Ier, 1, UartIer.THRI | UartIer.RDI, 1);
      expect(irq.take()).to.deep.equal([true]);
      expect(b.read(UartReg.IirFcr, 1, 1)).to.equal(UartIir.Thri);
      expect(a.read(UartReg.IirFcr, 1, 0)).to.equal(UartIir.NoInt);
      expect(irq.take()).to.deep.equal([false]);
      a.receive(bytes('q'));
      expect(irq.take()).to.deep.equal([true]);
      expect(b.read(UartReg.Data, 1, 1)).to.equal(0x71);
      expect(irq.take()).to.deep.equal([false]);
      b.write(UartReg.Data, 1, 0x70, 1);
      expect([...a.takeOutput()]).to.deep.equal([0x70]);
      expect(a.stats()).to.deep.equal(b.stats());
    });
  });

  describe('across threads', function () {
    const GO = 0;
    const DONE = 1;
    const READY = 2;

    function startWorker(state: Uart16550State, mode: UartWorkerData['mode'], count: number) {
      const shared = new SharedArrayBuffer(12);
      const flags = new Int32Array(shared);
      const data: UartWorkerData = { state, mode, count, flags: shared };
      const worker = new Worker(new URL('./uart16550.worker.js', import.meta.url), { workerData: data });
      const exited = new Promise<void>((resolve, reject) => {
        worker.once('error', reject);
        worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
      });
      /** Waits for the worker to be up, then lets it start. */
      const go = async (): Promise<void> => {
        const ready = Atomics.waitAsync(flags, READY, 0);
        if (ready.async) await ready.value;
        Atomics.store(flags, GO, 1);
        Atomics.notify(flags, GO);
      };
      const done = (): boolean => Atomics.load(flags, DONE) === 1;
      return { go, done, exited };
    }

    function concat(chunks: Uint8Array[]): Uint8Array {
      return new Uint8Array(Buffer.concat(chunks));
    }

    /** Checks that `out` is exactly 0, 1, 2, ... `count` - 1, each masked by `mask`. */
    function expectSequence(out: Uint8Array, count: number, mask: number): void {
      expect(out.length).to.equal(count);
      const bad = out.findIndex((b, i) => b !== (i & mask));
      expect(bad, `first out-of-order byte`).to.equal(-1);
    }

    it('keeps every THR byte from two concurrent writers exactly once, each in order', async () => {
      const count = 20000;
      const state = Uart16550.allocate();
      const uart = view(state, new RecordingIrq(IRQ));
      const worker = startWorker(state, 'burst', count);
      const chunks: Uint8Array[] = [];
      await worker.go();
      for (let i = 0; i < count; i++) {
        uart.write(UartReg.Data, 1, 0x80 | (i & 0x7f), 0);
        if (i % 64 === 0) chunks.push(uart.takeOutput());
      }
      await worker.exited;
      chunks.push(uart.takeOutput());

      const out = concat(chunks);
      expectSequence(out.filter((b) => b < 0x80), count, 0x7f);
      expectSequence(out.filter((b) => b >= 0x80).map((b) => b & 0x7f), count, 0x7f);
      expect(uart.stats()).to.deep.equal({ txBytes: 2 * count, rxBytes: 0, txDrops: 0, rxOverruns: 0 });
    });

    it('holds back a polling writer on another thread while the TX ring is full, losing nothing', async () => {
      const count = 20000;
      const state = Uart16550.allocate({ txCapacity: 64 });
      const uart = view(state, new RecordingIrq(IRQ));
      const worker = startWorker(state, 'polled', count);
      const chunks: Uint8Array[] = [];
      await worker.go();
      for (;;) {
        const finished = worker.done();
        const seen = uart.outputSnapshot();
        const out = uart.takeOutput();
        chunks.push(out);
        if (out.length > 0) continue;
        if (finished) break;
        await uart.waitForOutput(seen, 100);
      }
      await worker.exited;

      expectSequence(concat(chunks), count, 0xff);
      expect(uart.stats()).to.include({ txBytes: count, txDrops: 0 });
    });

    it('delivers bytes received on another thread to RBR in order', async () => {
      const count = 20000;
      const state = Uart16550.allocate({ rxCapacity: 256 });
      const uart = view(state, new RecordingIrq(IRQ));
      const worker = startWorker(state, 'receive', count);
      const got = new Uint8Array(count);
      let n = 0;
      await worker.go();
      const giveUp = Date.now() + 20000;
      while (n < count && Date.now() < giveUp) {
        if (uart.read(UartReg.Lsr, 1, 0) & UartLsr.DR) got[n++] = uart.read(UartReg.Data, 1, 0);
      }
      await worker.exited;

      expectSequence(got.subarray(0, n), count, 0xff);
      expect(uart.stats().rxBytes).to.equal(count);
      expect(uart.read(UartReg.Lsr, 1, 0) & UartLsr.DR).to.equal(0);
    });
  });
});
