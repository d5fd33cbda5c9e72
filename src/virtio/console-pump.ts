import { CONSOLE_KICK_CLOSE, VirtioConsoleQueue, type VirtioConsole } from './console.js';

/**
 * The main thread's half of virtio-console: waits (without blocking the
 * event loop) on the device's kick word, hands transmitted bytes to
 * `output` and waits for it before taking more, so a slow sink
 * back-pressures the guest; holds typed input until the driver posts
 * receive buffers. Output and input are independent: a guest whose
 * writes wait on a slow terminal still gets what is typed.
 */
export class VirtioConsolePump {
  private readonly pending: Buffer[] = [];
  private closed = false;
  /** An output drain is under way; `moreOutput`: a transmit notification came in meanwhile. */
  private draining = false;
  private moreOutput = false;
  bytesOut = 0;
  bytesIn = 0;

  constructor(
    private readonly device: VirtioConsole,
    private readonly output: (chunk: Buffer) => Promise<void> | void,
  ) {
    void this.serve();
  }

  /** Queues `bytes` for the guest; they go in as receive buffers appear. */
  send(bytes: Uint8Array): void {
    if (bytes.length) this.pending.push(Buffer.from(bytes));
    this.feed();
  }

  /** Bytes typed but not yet taken by the guest. */
  get heldInput(): number {
    return this.pending.reduce((n, b) => n + b.length, 0);
  }

  /**
   * Stops serving (after the vCPUs have stopped) and passes on what the
   * guest wrote last, at once: a pending Atomics.waitAsync does not keep
   * the process alive, so nothing here may wait for one.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.or(this.device.kick, 0, CONSOLE_KICK_CLOSE);
    Atomics.notify(this.device.kick, 0);
    for (let bytes = this.device.transmit(); bytes.length; bytes = this.device.transmit()) this.pass(bytes);
  }

  private async serve(): Promise<void> {
    const kick = this.device.kick;
    for (;;) {
      const wait = Atomics.waitAsync(kick, 0, 0);
      if (wait.async) await wait.value;
      const bits = Atomics.exchange(kick, 0, 0);
      if (bits & CONSOLE_KICK_CLOSE || this.closed) return;
      if (bits & (1 << VirtioConsoleQueue.Receive)) this.feed();
      if (bits & (1 << VirtioConsoleQueue.Transmit)) void this.drainOutput();
    }
  }

  /** Passes on transmitted buffers until there are none, one drain at a time. */
  private async drainOutput(): Promise<void> {
    if (this.draining) {
      this.moreOutput = true;
      return;
    }
    this.draining = true;
    try {
      do {
        this.moreOutput = false;
        for (let bytes = this.device.transmit(); bytes.length && !this.closed; bytes = this.device.transmit()) await this.pass(bytes);
      } while (this.moreOutput && !this.closed);
    } finally {
      this.draining = false;
    }
  }

  private pass(bytes: Uint8Array): Promise<void> | void {
    this.bytesOut += bytes.length;
    return this.output(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  }

  private feed(): void {
    while (this.pending.length) {
      const head = this.pending[0]!;
      const n = this.device.receive(head);
      this.bytesIn += n;
      if (n === head.length) this.pending.shift();
      else {
        this.pending[0] = head.subarray(n);
        return;
      }
    }
  }
}
