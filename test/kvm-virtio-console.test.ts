import { expect } from 'chai';
import { Writable } from 'node:stream';
import { runVm, kitImage, type GuestRun } from './helpers/guests.js';
import { createVm, type IrqchipMode, type Vm } from '../src/index.js';

/**
 * virtio-console end to end under KVM, driven by our own guest
 * (test/guests/virtio-console.c on guests/lib/virtio.h) in each irqchip
 * mode: the greeting it transmits, input typed through
 * vm.sendConsoleInput (before the device exists, a little, then more than
 * its receive buffers hold) echoed back in order, and a transmit flood into
 * an output stream that holds the guest back.
 */

const RESULTS = 0x1000000;
const MODES: IrqchipMode[] = ['user', 'split', 'kernel'];
const EXIT_PASS = 0x10;
const GREETING = 'virtio-console guest: hello\n';
const TERMINATOR = 0x04;
// virtio-console.c's receive buffers and transmit queue.
const RX_BUFS = 8;
const RX_BUF_BYTES = 64;
const TX_QUEUE = 128;
// ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
const STATUS_DRIVER_OK = 0x0f;
const VERSION_1_HI = 1; // feature bit 32
const EVENT_IDX_LO = 1 << 29;
// More than the transmit queue's 128 buffers hold (the guest sends 16 to 256 bytes per buffer), little for an emulated ring 0.
const FLOOD_BYTES = 40 * 1024;
// A guest that hangs (a lost interrupt, input never delivered) is stopped well within the test's timeout, so its report shows.
const DEADLINE_MS = 30000;

/** The guest's u32 counters, in the order of virtio-console.c's R_* indices. */
const FIELDS = [
  'stage', 'failedLine', 'gate', 'rxBuffers', 'rxBytes', 'maxChunk', 'txChains', 'txBytes', 'txUsed', 'txFull',
  'rxIrqs', 'txIrqs', 'rxKicks', 'txKicks', 'featuresLo', 'featuresHi', 'ports',
] as const;
type Report = Record<(typeof FIELDS)[number], number>;
const STAGE_DONE = 4;

function report(vm: Vm): Report {
  const w = new Uint32Array(vm.memory.read(RESULTS, FIELDS.length * 4).buffer);
  return Object.fromEntries(FIELDS.map((f, i) => [f, w[i]!])) as Report;
}

function expectPassed(run: GuestRun): void {
  expect(run.result.reason, `${run.result.message}\nguest report: ${JSON.stringify(report(run.vm))}\nlogs: ${run.logs.join('\n')}`).to.deep.equal({ kind: 'debug-exit', code: EXIT_PASS });
}

/** Resolves once `cond` holds; rejects if the VM stops first (the guest failed, or hung until runVm's deadline). */
async function until(vm: Vm, cond: () => boolean, what: string): Promise<void> {
  let stopped = false;
  const onStop = (): void => void (stopped = true);
  vm.once('stop', onStop);
  try {
    while (!cond()) {
      if (stopped) throw new Error(`the VM stopped before ${what}; guest report: ${JSON.stringify(report(vm))}`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  } finally {
    vm.off('stop', onStop);
  }
}

/** A consoleOutput that keeps every chunk; `complete(i, done)` says when write i is done (at once by default). */
class Sink extends Writable {
  readonly chunks: Buffer[] = [];

  constructor(
    private readonly complete: (index: number, done: () => void) => void = (_i, done) => done(),
    highWaterMark?: number,
  ) {
    super({ highWaterMark });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.complete(this.chunks.length - 1, () => callback());
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** `length` bytes of every value but the terminator, in no short repeating order. */
function typed(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    const v = Math.imul(i + seed, 0x9e3779b1) >>> 24;
    b[i] = v === TERMINATOR ? v + 1 : v;
  }
  return b;
}

/** virtio-console.c's flood_byte(0 .. length - 1). */
function flood(length: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => Math.imul(i, 0x9e3779b1) >>> 24));
}

/**
 * Splits what followed the greeting into the guest's echo frames, "{seq,len}"
 * and `len` bytes, checking that they are numbered 0, 1, 2... and that the
 * last is whole. Returns the echoed bytes and each frame's length.
 */
function parseEcho(out: Buffer): { data: Buffer; lengths: number[] } {
  const text = out.toString('latin1');
  expect(text.startsWith(GREETING), 'the output starts with the greeting').to.equal(true);
  const header = /\{(\d+),(\d+)\}/y;
  const parts: Buffer[] = [];
  const lengths: number[] = [];
  for (let at = GREETING.length; at < text.length; ) {
    header.lastIndex = at;
    const m = header.exec(text);
    if (!m) throw new Error(`no frame header at byte ${at}: ${JSON.stringify(text.slice(at, at + 40))}`);
    expect(Number(m[1]), `sequence number of the frame at byte ${at}`).to.equal(lengths.length);
    const len = Number(m[2]);
    at += m[0].length;
    expect(at + len, `frame ${lengths.length} ends within the output`).to.be.at.most(text.length);
    parts.push(out.subarray(at, at + len));
    lengths.push(len);
    at += len;
  }
  return { data: Buffer.concat(parts), lengths };
}

interface EchoRun {
  run: GuestRun;
  sink: Sink;
  typed: Buffer;
  early: Buffer;
  /** vm.stats() right after the early input was typed, the guest still waiting at its gate. */
  atEarly: { bytesIn: number; status: number };
  /** Bytes of `big` the device took at once when it was typed. */
  bigTakenAtOnce: number;
}

/**
 * The ECHO guest: input typed right after start (the guest waits at its
 * gate until then), a few bytes once the greeting is out, then 4 KiB and
 * the terminator once those came back.
 */
async function echoRun(mode: IrqchipMode): Promise<EchoRun> {
  const sink = new Sink();
  const early = typed(100, 1);
  const small = Buffer.from('ls -l\r', 'latin1');
  const big = typed(4096, 2);
  const all = Buffer.concat([early, small, big, Buffer.of(TERMINATOR)]);
  let atEarly = { bytesIn: -1, status: -1 };
  let bigTakenAtOnce = -1;
  const image = kitImage('virtio-console', { defines: { SCENARIO: 'ECHO', EVENT_IDX: 1 } });
  const run = await runVm({ image, console: 'virtio', irqchip: mode, consoleOutput: sink }, async (vm) => {
    vm.sendConsoleInput(early);
    const s = vm.stats();
    atEarly = { bytesIn: s.console.bytesIn, status: s.virtio[0]!.status };
    vm.memory.writeU32(RESULTS + 4 * FIELDS.indexOf('gate'), 1);
    await until(vm, () => sink.bytes.includes(GREETING), 'the greeting');
    vm.sendConsoleInput(small);
    await until(vm, () => report(vm).rxBytes === early.length + small.length, 'the guest received the first input');
    const before = vm.stats().console.bytesIn;
    vm.sendConsoleInput(big);
    bigTakenAtOnce = vm.stats().console.bytesIn - before;
    vm.sendConsoleInput(Buffer.of(TERMINATOR));
  }, DEADLINE_MS);
  return { run, sink, typed: all, early, atEarly, bigTakenAtOnce };
}

describe('virtio-console under KVM with our own guest', function () {
  this.timeout(60000);

  const gate = RESULTS + 4 * FIELDS.indexOf('gate');

  it('keeps taking typed input while its output waits on a slow stream', async () => {
    // After the greeting, every write is held until released: the echoes back up behind them.
    const held: Array<() => void> = [];
    let holding = true;
    const sink = new Sink((i, done) => (holding && i > 0 ? held.push(done) : done()), 16);
    const input = typed(600, 3); // more than the 8 x 64 bytes of receive buffers posted at a time
    const image = kitImage('virtio-console', { defines: { SCENARIO: 'ECHO', EVENT_IDX: 1 } });
    let heldWrites = 0;
    const run = await runVm({ image, console: 'virtio', consoleOutput: sink }, async (vm) => {
      vm.memory.writeU32(gate, 1);
      await until(vm, () => sink.bytes.includes(GREETING), 'the greeting');
      vm.sendConsoleInput(input);
      await until(vm, () => vm.stats().console.bytesIn === input.length, 'every typed byte taken while the output is held');
      heldWrites = held.length;
      holding = false;
      for (const done of held.splice(0)) done();
      vm.sendConsoleInput(Buffer.of(TERMINATOR));
    }, DEADLINE_MS);
    expectPassed(run);
    expect(heldWrites, 'output writes still pending when the last input went in').to.be.at.least(1);
    expect(parseEcho(sink.bytes).data.equals(Buffer.concat([input, Buffer.of(TERMINATOR)]))).to.equal(true);
  });

  it('holds input typed before start() and delivers it once the guest posts receive buffers', async () => {
    const sink = new Sink();
    const early = typed(50, 4);
    const vm = createVm({ memory: '64M', image: kitImage('virtio-console', { defines: { SCENARIO: 'ECHO', EVENT_IDX: 1 } }), console: 'virtio', consoleOutput: sink });
    vm.sendConsoleInput(early);
    await vm.start();
    const deadline = setTimeout(() => void vm.stop(), DEADLINE_MS);
    try {
      vm.memory.writeU32(gate, 1);
      await until(vm, () => report(vm).rxBytes === early.length, 'the early input reached the guest');
      vm.sendConsoleInput(Buffer.of(TERMINATOR));
      const result = await vm.wait();
      expect(result.reason, `${result.message}; guest report ${JSON.stringify(report(vm))}`).to.deep.equal({ kind: 'debug-exit', code: EXIT_PASS });
    } finally {
      clearTimeout(deadline);
      await vm.stop();
    }
    expect(parseEcho(sink.bytes).data.equals(Buffer.concat([early, Buffer.of(TERMINATOR)]))).to.equal(true);
  });

  for (const mode of MODES) {
    describe(`irqchip "${mode}"`, () => {
      let echo: EchoRun;
      before(async () => {
        echo = await echoRun(mode);
        expectPassed(echo.run);
      });

      it('transmits the greeting once, to the console event and to consoleOutput alike', () => {
        const { run, sink } = echo;
        expect(run.console.split(GREETING).length - 1, 'greetings in the console event').to.equal(1);
        expect(run.console.startsWith(GREETING)).to.equal(true);
        expect(sink.bytes.toString('latin1')).to.equal(run.console);
        expect(run.vm.stats().console.bytesOut).to.equal(sink.bytes.length);
      });

      it('holds input typed before the driver set the device up, and delivers it first once receive buffers exist', () => {
        expect(echo.atEarly, 'the device untouched and nothing taken when typed').to.deep.equal({ bytesIn: 0, status: 0 });
        expect(parseEcho(echo.sink.bytes).data.subarray(0, echo.early.length).equals(echo.early)).to.equal(true);
      });

      it('echoes what was typed, across many reposted receive buffers, in order, none lost or duplicated', () => {
        const { run, sink } = echo;
        const { data, lengths } = parseEcho(sink.bytes);
        expect(data.length, 'bytes echoed').to.equal(echo.typed.length);
        expect(data.equals(echo.typed), 'the echoed bytes are the typed ones').to.equal(true);
        expect(echo.bigTakenAtOnce, 'the 4 KiB went in no faster than the guest posted buffers').to.be.within(0, RX_BUFS * RX_BUF_BYTES);
        const r = report(run.vm);
        expect(r).to.include({ stage: STAGE_DONE, failedLine: 0, rxBytes: echo.typed.length, rxBuffers: lengths.length, ports: 1 });
        expect(r.maxChunk).to.be.at.most(RX_BUF_BYTES);
        expect(lengths.length, 'receive buffers used').to.be.at.least(Math.ceil(echo.typed.length / RX_BUF_BYTES));
        expect(r.rxIrqs, 'receive interrupts').to.be.at.least(1);
        expect({ lo: r.featuresLo, hi: r.featuresHi }).to.deep.equal({ lo: EVENT_IDX_LO, hi: VERSION_1_HI });
        // The greeting plus one chain per echo, all returned.
        expect(r.txChains).to.equal(1 + lengths.length);
        expect(r.txUsed).to.equal(r.txChains);
        const stats = run.vm.stats();
        expect(stats.console.bytesIn).to.equal(echo.typed.length);
        expect(stats.virtio).to.have.length(1);
        expect(stats.virtio[0]).to.include({ name: 'virtio-console', device: 1, status: STATUS_DRIVER_OK, interrupts: 'msix' });
      });

      it(`passes a ${FLOOD_BYTES / 1024} KiB transmit flood through a slow consoleOutput in order, the guest waiting for it with a full transmit queue`, async () => {
        // The first write (the greeting) completes only once the guest has found its transmit queue full; later ones after 2 ms.
        let release: (() => void) | undefined;
        const sink = new Sink((i, done) => (i === 0 ? (release = done) : setTimeout(done, 2)), 16);
        let held: { report: Report; queued: number; writes: number } | undefined;
        let mostQueuedAtNewChunk = 0;
        const image = kitImage('virtio-console', { defines: { SCENARIO: 'FLOOD', EVENT_IDX: 0, FLOOD_BYTES } });
        const run = await runVm({ image, console: 'virtio', irqchip: mode, consoleOutput: sink }, async (vm) => {
          // Each chunk is announced just before it is written: what the stream still holds then was not waited for.
          vm.on('console', () => (mostQueuedAtNewChunk = Math.max(mostQueuedAtNewChunk, sink.writableLength)));
          await until(vm, () => release !== undefined && report(vm).txFull > 0, 'the guest found its transmit queue full');
          held = { report: report(vm), queued: sink.writableLength, writes: sink.chunks.length };
          release!();
        }, DEADLINE_MS);
        expectPassed(run);
        const expected = Buffer.concat([Buffer.from(GREETING, 'latin1'), flood(FLOOD_BYTES)]);
        expect(sink.bytes.equals(expected), `the output is the greeting and the flood (${sink.bytes.length} bytes, expected ${expected.length})`).to.equal(true);
        expect(run.console).to.equal(expected.toString('latin1'));
        expect(run.vm.stats().console.bytesOut).to.equal(expected.length);
        // While the first write was pending the stream was given nothing more, and every descriptor was the device's.
        expect(held!.writes).to.equal(1);
        expect(held!.queued).to.equal(sink.chunks[0]!.length);
        expect(held!.report.txChains - held!.report.txUsed, 'transmit buffers outstanding while the output was held').to.equal(TX_QUEUE);
        expect(mostQueuedAtNewChunk, 'bytes still in the stream when the next chunk came').to.equal(0);
        expect(sink.chunks.length).to.be.above(1);
        const r = report(run.vm);
        expect(r).to.include({ stage: STAGE_DONE, failedLine: 0, txBytes: expected.length, rxBuffers: 0 });
        expect(r.txUsed).to.equal(r.txChains);
        expect(r.txFull).to.be.at.least(1);
        expect(r.txIrqs, 'transmit interrupts that let the guest go on').to.be.at.least(1);
        expect({ lo: r.featuresLo, hi: r.featuresHi }).to.deep.equal({ lo: 0, hi: VERSION_1_HI });
      });
    });
  }
});
