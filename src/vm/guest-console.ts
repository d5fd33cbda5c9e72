import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { Uart16550 } from '../devices/uart16550.js';
import type { VirtioConsole } from '../virtio/console.js';
import { VirtioConsolePump } from '../virtio/console-pump.js';
import { watchStreamErrors } from './stream-errors.js';

/** Which device is the guest's console: the 16550 UART (ttyS0) or virtio-console (hvc0). */
export type ConsoleKind = 'serial' | 'virtio';
export const CONSOLE_KINDS: readonly ConsoleKind[] = ['serial', 'virtio'];

export interface GuestConsoleOptions {
  readonly kind: ConsoleKind;
  readonly output: Writable | null | undefined;
  readonly input: Readable | null | undefined;
  /** Every chunk of guest output, whichever device wrote it (the VM's 'console' event). */
  readonly emit: (chunk: Buffer) => void;
  /**
   * The output stream failed (EPIPE when its reader went away, ENOSPC,
   * EBADF...): with nowhere to go, the guest's output would wait forever.
   */
  readonly outputFailed: (e: Error) => void;
}

/** How often held-back input is offered to the UART again (it has no "ready for input" notification). */
const INPUT_RETRY_MS = 5;
/** While output flows, how long a partial line may wait in the UART's ring before it is shown. */
const LINE_WAIT_MS = 10;

/**
 * The main thread's console plumbing: output from the UART and, with
 * `--console virtio`, from virtio-console goes to the output stream and the
 * 'console' event; input goes to the selected device only, held back
 * (never dropped) until that device can take it. Output of both devices
 * waits for a full output stream to drain before more is taken, so a slow
 * reader slows the guest (the UART's transmit ring fills and THRE stays
 * clear) instead of growing a buffer here.
 */
export class GuestConsole {
  private uart?: Uart16550;
  private virtio?: VirtioConsolePump;
  private readonly pendingInput: Buffer[] = [];
  private readonly inputListener?: (chunk: Buffer | string) => void;
  private inputRetry?: NodeJS.Timeout;
  private closed = false;
  private readonly closing: Promise<void>;
  private signalClosing!: () => void;
  /** The one wait for the output stream's 'drain' (both pumps share it). */
  private drained?: Promise<void>;
  private readonly unwatchOutput?: () => void;
  private outputBroken = false;

  constructor(private readonly o: GuestConsoleOptions) {
    this.closing = new Promise((resolve) => (this.signalClosing = resolve));
    const input = o.input;
    if (input) {
      this.inputListener = (chunk) => this.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      input.on('data', this.inputListener);
    }
    if (o.output) this.unwatchOutput = watchStreamErrors(o.output, (e) => this.outputError(e));
  }

  attachUart(uart: Uart16550): void {
    this.uart = uart;
    void this.pumpUart(uart);
    this.feedUart();
  }

  attachVirtio(device: VirtioConsole): void {
    this.virtio = new VirtioConsolePump(device, (chunk) => this.deliver(chunk));
    // What was typed before the device existed goes in first.
    if (this.o.kind === 'virtio') for (const b of this.pendingInput.splice(0)) this.virtio.send(b);
  }

  /** Types bytes into the guest's console device (held until that device exists and can take them). */
  send(bytes: Uint8Array): void {
    if (this.o.kind === 'virtio' && this.virtio) {
      this.virtio.send(bytes);
      return;
    }
    if (bytes.length) this.pendingInput.push(Buffer.from(bytes));
    this.feedUart();
  }

  stats(): { bytesOut: number; bytesIn: number } {
    const u = this.uart?.stats();
    return { bytesOut: (u?.txBytes ?? 0) + (this.virtio?.bytesOut ?? 0), bytesIn: (u?.rxBytes ?? 0) + (this.virtio?.bytesIn ?? 0) };
  }

  /**
   * After the vCPUs have stopped: passes on the last output, synchronously
   * (the pumps' pending waits do not keep the process alive), and lets go
   * of the input and output streams.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signalClosing();
    clearTimeout(this.inputRetry);
    if (this.inputListener) this.o.input?.off('data', this.inputListener);
    if (this.uart) this.flushUart(this.uart);
    this.virtio?.close();
    this.unwatchOutput?.();
  }

  /** Passes `chunk` on; the promise (while the VM runs) waits for a full output stream to drain. */
  private deliver(chunk: Buffer): Promise<void> | void {
    this.o.emit(chunk);
    const out = this.o.output;
    if (!out || out.destroyed || out.writableEnded) return;
    if (out.write(chunk) || this.closed) return;
    this.drained ??= once(out, 'drain').then(
      () => {
        this.drained = undefined;
      },
      () => undefined, // the stream failed: outputError stops the VM
    );
    return Promise.race([this.drained, this.closing]);
  }

  private outputError(e: Error): void {
    if (this.closed || this.outputBroken) return;
    this.outputBroken = true;
    this.o.outputFailed(e);
  }

  /**
   * Moves UART output to the stream, one batch at a time, each after the
   * stream took the last. While output flows it is taken a line at a time
   * (or after LINE_WAIT_MS): a wake-up of this thread per byte cost the
   * guest about a third of each console write. The first byte after a quiet
   * spell (a shell's echo) is taken at once.
   */
  private async pumpUart(uart: Uart16550): Promise<void> {
    let flowing = false;
    while (!this.closed) {
      const seen = uart.outputSnapshot();
      const bytes = uart.takeOutput();
      if (bytes.length) {
        flowing = true;
        await this.deliver(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
      } else {
        const woken = await uart.waitForOutput(seen, flowing ? LINE_WAIT_MS : 50, flowing ? 'line' : 'byte');
        flowing &&= woken;
      }
    }
  }

  private flushUart(uart: Uart16550): void {
    const bytes = uart.takeOutput();
    if (bytes.length) void this.deliver(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  /** Offers held-back input to the UART; what it cannot take yet is offered again shortly. */
  private feedUart(): void {
    const uart = this.o.kind === 'serial' ? this.uart : undefined;
    while (uart && this.pendingInput.length) {
      const head = this.pendingInput[0]!;
      const n = uart.receive(head.subarray(0, Math.min(head.length, uart.receiveSpace())));
      if (n === head.length) this.pendingInput.shift();
      else {
        this.pendingInput[0] = head.subarray(n);
        break;
      }
    }
    if (uart && this.pendingInput.length && !this.closed && !this.inputRetry) {
      this.inputRetry = setTimeout(() => {
        this.inputRetry = undefined;
        this.feedUart();
      }, INPUT_RETRY_MS);
    }
  }
}
