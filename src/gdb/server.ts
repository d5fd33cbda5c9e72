/**
 * The gdb stub's listener (`nodevisor run --gdb tcp:HOST:PORT` or
 * `--gdb unix:PATH`): one gdb at a time; a second connection is turned
 * away while the first is attached.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { NodevisorError } from '../kvm/errors.js';
import { claimSocketPath } from '../api/socket-path.js';
import type { Vm } from '../vm/vm.js';
import { GdbSession } from './session.js';
import { VmGdbTarget } from './vm-target.js';

export { parseGdbAddress, type GdbAddress } from './address.js';
import type { GdbAddress } from './address.js';

export class GdbServer {
  private server?: Server;
  private active?: { socket: Socket; session: GdbSession; target: VmGdbTarget };

  constructor(
    private readonly vm: Vm,
    private readonly address: GdbAddress,
  ) {}

  /** Starts listening; resolves with the address gdb should use (`target remote ...`). */
  async listen(): Promise<string> {
    const a = this.address;
    if (a.kind === 'unix') await claimSocketPath(a.path, 'gdb socket');
    const server = createServer((socket) => this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => reject(new NodevisorError('EGDB', `cannot listen for gdb on ${this.describe()}: ${e.message}`)));
      if (a.kind === 'tcp') server.listen(a.port, a.host, () => resolve());
      else server.listen(a.path, () => resolve());
    });
    server.on('error', () => undefined);
    this.server = server;
    if (a.kind === 'unix') return a.path;
    const port = (server.address() as AddressInfo).port;
    return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${port}`;
  }

  private describe(): string {
    return this.address.kind === 'tcp' ? `${this.address.host}:${this.address.port}` : this.address.path;
  }

  close(): void {
    this.active?.socket.destroy();
    this.server?.close();
    this.server = undefined;
  }

  private accept(socket: Socket): void {
    if (this.active || this.vm.runState === 'stopped') {
      socket.end();
      return;
    }
    socket.setNoDelay(true);
    const target = new VmGdbTarget(this.vm);
    const end = (): void => {
      if (this.active?.socket !== socket) return;
      this.active = undefined;
      target.dispose();
      socket.end();
    };
    const session = new GdbSession(target, (b) => socket.writable && socket.write(b), { onEnd: end });
    this.active = { socket, session, target };
    socket.on('data', (chunk: Buffer) => session.feed(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.active?.socket !== socket) return;
      session.disconnected();
      end();
    });
  }
}
