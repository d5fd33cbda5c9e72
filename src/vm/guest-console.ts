import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { Uart16550 } from '../devices/uart16550.js';
import type { VirtioConsole } from '../virtio/console.js';
import { VirtioConsolePump } from '../virtio/console-pump.js';

/** Which device is the guest's console: the 16550 UART (ttyS0) or virtio-console (hvc0). */
export type ConsoleKind = 'serial' | 'virtio';
export const CONSOLE_KINDS: readonly ConsoleKind[] = ['serial', 'virtio'];

export interface GuestConsoleOptions {
  readonly kind: ConsoleKind;
  readonly output: Writable | null | undefined;
  readonly input: Readable | null | undefined;
  /** Every chunk of guest output, whichever device wrote it (the VM's 'console' event). */
  readonly emit: (chunk: Buffer) => void;
}

/**
 * The main thread's console plumbing: output from the UART and, with
 * `--console virtio`, from virtio-console goes to the output stream and the
 * 'console' event; input goes to the selected device only, held back
 * (never dropped) until that device can take it. virtio-console output
 * waits for a slow output stream; the UART's FIFO and THRE already pace it.
 */
export class GuestConsole {
  private uart?: Uart16550;
  private virtio?: VirtioConsolePump;
  private readonly pendingInput: Buffer[] = [];
  private readonly inputListener?: (chunk: Buffer | string) => void;
  private closed = false;
  private readonly closing: Promise<void>;
  private signalClosing!: () => void;

  constructor(private readonly o: GuestConsoleOptions) {
    this.closing = new Promise((resolve) => (this.signalClosing = resolve));
    const input = o.input;
    if (input) {
      this.inputListener = (chunk) => this.send(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
      input.on('data', this.inputListener);
    }
  }

  attachUart(uart: Uart16550): void {
    this.uart = uart;
    void this.pumpUart(uart);
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
   * of the input stream.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signalClosing();
    if (this.inputListener) this.o.input?.off('data', this.inputListener);
    if (this.uart) this.flushUart(this.uart);
    this.virtio?.close();
  }

  /** Passes `chunk` on; the promise (while the VM runs) waits for a full output stream to drain. */
  private deliver(chunk: Buffer): Promise<void> | void {
    this.o.emit(chunk);
    const out = this.o.output;
    if (!out || out.write(chunk) || out.destroyed || this.closed) return;
    const drained = once(out, 'drain').then(
      () => undefined,
      () => undefined, // a failed stream stops pacing, not the VM
    );
    return Promise.race([drained, this.closing]);
  }

  private async pumpUart(uart: Uart16550): Promise<void> {
    while (!this.closed) {
      const seen = uart.outputSnapshot();
      this.flushUart(uart);
      this.feedUart();
      // Held-back input is retried soon; otherwise output wakes us.
      await uart.waitForOutput(seen, this.pendingInput.length ? 5 : 50);
    }
  }

  private flushUart(uart: Uart16550): void {
    const bytes = uart.takeOutput();
    if (bytes.length) void this.deliver(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  private feedUart(): void {
    const uart = this.o.kind === 'serial' ? this.uart : undefined;
    while (uart && this.pendingInput.length) {
      const head = this.pendingInput[0]!;
      const n = uart.receive(head.subarray(0, Math.min(head.length, uart.receiveSpace())));
      if (n === head.length) this.pendingInput.shift();
      else {
        this.pendingInput[0] = head.subarray(n);
        return;
      }
    }
  }
}
