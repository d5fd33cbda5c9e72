/**
 * The API socket: a Unix socket (mode 0600) speaking JSON-RPC 2.0, one
 * message per line. json-rpc-2.0 dispatches requests and shapes responses
 * and errors; split2 cuts the byte stream into lines with a length cap.
 * Every client is independent; none can crash the VMM: bad JSON, bad
 * requests, oversized lines and vanished clients are answered or ignored.
 */
import { chmodSync, statSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import split2 from 'split2';
import { JSONRPCServer, createJSONRPCErrorResponse, createJSONRPCNotification, type JSONRPCResponse } from 'json-rpc-2.0';
import type { VmResult } from '../vm/vm.js';
import { monotonicClock } from '../sync/clock.js';
import { COMMANDS, type CommandContext } from './commands.js';
import { ErrorCode, EVENT_NAMES, MAX_MESSAGE_BYTES, PROTOCOL_VERSION, type ApiVm, type EventName, type Hello } from './protocol.js';
import { claimSocketPath } from './socket-path.js';

export interface ApiServerOptions {
  path: string;
  vm: ApiVm;
  version: string;
  /** Longest request line in bytes (default MAX_MESSAGE_BYTES). */
  maxMessageBytes?: number;
}

/** One client. */
class Connection {
  readonly events = new Set<EventName>();
  /** Requests being carried out; `close` lets them answer first. */
  pending = 0;
  private idle: Array<() => void> = [];
  private readonly console = new StringDecoder('utf8');

  constructor(readonly socket: Socket) {}

  /** Resolves once no request is in progress (or after `timeoutMs`). */
  settled(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idle.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  done(): void {
    if (--this.pending === 0) for (const f of this.idle.splice(0)) f();
  }

  send(message: unknown): void {
    if (this.socket.writable) this.socket.write(`${JSON.stringify(message)}\n`);
  }

  event(name: EventName, params: Record<string, unknown>): void {
    if (this.events.has(name)) this.send(createJSONRPCNotification('event', { event: name, ...params }));
  }

  consoleEvent(chunk: Buffer): void {
    if (!this.events.has('console')) return;
    // Multi-byte characters split across chunks stay whole.
    const data = this.console.write(chunk);
    if (data) this.event('console', { data });
  }
}

export class ApiServer {
  private readonly rpc = new JSONRPCServer<Connection>({ errorListener: () => undefined });
  private readonly connections = new Set<Connection>();
  private server?: Server;
  private inode?: number;
  private readonly startedAt = monotonicClock.nowNs() / 1e9;
  private readonly maxBytes: number;
  private readonly onConsole = (chunk: Buffer): void => {
    for (const c of this.connections) c.consoleEvent(chunk);
  };
  private readonly onStop = (r: VmResult): void => {
    for (const c of this.connections) {
      if (r.reason.kind === 'panic') c.event('panic', { message: r.message, detail: r.reason.detail ?? null });
      c.event('stop', { reason: r.reason, exitStatus: r.exitStatus, message: r.message });
    }
  };

  constructor(private readonly o: ApiServerOptions) {
    this.maxBytes = o.maxMessageBytes ?? MAX_MESSAGE_BYTES;
    for (const command of COMMANDS) {
      this.rpc.addMethod(command.name, (raw, connection) => command.run(this.context(connection), command.params(raw)));
    }
  }

  get path(): string {
    return this.o.path;
  }

  /** Creates the socket (refusing a live one at the path) and starts serving. */
  async listen(): Promise<void> {
    await claimSocketPath(this.o.path, 'API socket');
    const server = createServer((socket) => this.accept(socket));
    // The socket is created 0600: no window in which others could connect.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.o.path, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(umask);
    }
    chmodSync(this.o.path, 0o600);
    this.inode = statSync(this.o.path).ino;
    server.on('error', () => undefined);
    this.server = server;
    this.o.vm.on('console', this.onConsole);
    this.o.vm.on('stop', this.onStop);
  }

  /** Ends every connection (after what was written to it is sent) and removes the socket file. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.o.vm.off('console', this.onConsole);
    this.o.vm.off('stop', this.onStop);
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all(
      [...this.connections].map(
        async (c) => {
          // A `stop` request answers as the VM ends: let it (and any other) answer first.
          await c.settled(1000);
          await new Promise<void>((resolve) => {
            if (c.socket.destroyed) return resolve();
            const t = setTimeout(() => c.socket.destroy(), 1000);
            c.socket.once('close', () => {
              clearTimeout(t);
              resolve();
            });
            c.socket.end();
          });
        },
      ),
    );
    await closed;
    this.removeSocketFile();
  }

  /** Removes the socket file if it is still ours (also safe at process exit). */
  removeSocketFile(): void {
    try {
      if (this.inode !== undefined && statSync(this.o.path).ino === this.inode) unlinkSync(this.o.path);
    } catch {
      // already gone
    }
  }

  private context(connection: Connection): CommandContext {
    return {
      vm: this.o.vm,
      startedAt: this.startedAt,
      subscribe: (events) => {
        for (const e of events) connection.events.add(e);
        return EVENT_NAMES.filter((e) => connection.events.has(e));
      },
    };
  }

  private accept(socket: Socket): void {
    const c = new Connection(socket);
    this.connections.add(c);
    socket.on('error', () => undefined); // a client that vanishes mid-request harms nothing
    socket.on('close', () => this.connections.delete(c));
    const hello: Hello = { protocol: PROTOCOL_VERSION, nodevisor: this.o.version, commands: COMMANDS.map((x) => x.name) };
    c.send(createJSONRPCNotification('hello', hello));
    // A line that outgrows the cap before its newline arrives ends the
    // connection after the error: the rest of it cannot be told from the
    // next request. One that arrives whole is refused in `handle`.
    const lines = split2((line: string) => line, { maxLength: this.maxBytes });
    lines.on('data', (line: string) => void this.handle(c, line));
    lines.on('error', () => {
      c.send(this.tooLong());
      socket.end();
    });
    socket.pipe(lines);
  }

  private tooLong(): JSONRPCResponse {
    return createJSONRPCErrorResponse(null, ErrorCode.InvalidRequest, `message longer than ${this.maxBytes} bytes`);
  }

  private async handle(c: Connection, line: string): Promise<void> {
    if (!line.trim()) return;
    if (Buffer.byteLength(line) > this.maxBytes) return c.send(this.tooLong());
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      return c.send(createJSONRPCErrorResponse(null, ErrorCode.ParseError, 'not valid JSON'));
    }
    const valid = (m: unknown): boolean => typeof m === 'object' && m !== null && !Array.isArray(m);
    if (!(valid(message) || (Array.isArray(message) && message.length > 0 && message.every(valid)))) {
      return c.send(createJSONRPCErrorResponse(null, ErrorCode.InvalidRequest, 'a request must be a JSON-RPC 2.0 object (or a non-empty array of them)'));
    }
    let response: JSONRPCResponse | JSONRPCResponse[] | null;
    c.pending++;
    try {
      response = await this.rpc.receive(message as Parameters<JSONRPCServer['receive']>[0], c);
    } catch (e) {
      response = createJSONRPCErrorResponse(null, ErrorCode.InternalError, (e as Error).message);
    } finally {
      c.done();
    }
    if (response !== null) c.send(response);
  }
}
