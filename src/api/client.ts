/**
 * A client of the API socket (what `nodevisor ctl` and `nodevisor top`
 * use): JSON-RPC 2.0 requests over the Unix socket, one line each, with
 * the server's notifications (the greeting, events) handed to listeners.
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import split2 from 'split2';
import { JSONRPCClient, type JSONRPCResponse } from 'json-rpc-2.0';
import { NodevisorError } from '../kvm/errors.js';
import type { Hello } from './protocol.js';

/**
 * Events: 'event' (params of an `event` notification), 'close'.
 */
export class ApiClient extends EventEmitter {
  private readonly rpc: JSONRPCClient;
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly hello: Hello,
  ) {
    super();
    this.rpc = new JSONRPCClient((request) => {
      if (!socket.writable) throw new NodevisorError('EAPI', 'the connection to the VM is closed');
      socket.write(`${JSON.stringify(request)}\n`);
    });
  }

  /** Connects and waits for the server's greeting. */
  static connect(path: string, timeoutMs = 5000): Promise<ApiClient> {
    return new Promise((resolve, reject) => {
      const socket = createConnection(path);
      const lines = socket.pipe(split2());
      let client: ApiClient | undefined;
      const timer = setTimeout(() => fail(new NodevisorError('EAPI', `no answer from ${path} within ${timeoutMs / 1000} s`)), timeoutMs);
      const fail = (e: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(e);
      };
      socket.once('error', (e: NodeJS.ErrnoException) => {
        if (client) return;
        const why = e.code === 'ENOENT' ? 'no such socket' : e.code === 'ECONNREFUSED' ? 'nothing is listening (the VM has exited?)' : e.message;
        fail(new NodevisorError('EAPI', `cannot connect to ${path}: ${why}`));
      });
      lines.on('data', (line: string) => {
        let m: { method?: string; params?: unknown } & Partial<JSONRPCResponse>;
        try {
          m = JSON.parse(line) as typeof m;
        } catch {
          return;
        }
        if (!client) {
          if (m.method !== 'hello') return fail(new NodevisorError('EAPI', `${path} is not a nodevisor API socket`));
          clearTimeout(timer);
          client = new ApiClient(socket, m.params as Hello);
          socket.on('error', () => undefined);
          socket.once('close', () => client!.onClose());
          return resolve(client);
        }
        if (m.method === 'event') client.emit('event', m.params);
        else if (m.method === undefined) client.rpc.receive(m as JSONRPCResponse);
      });
    });
  }

  /**
   * `fn` with a connected client (closed afterwards), for the CLI: a VM
   * that cannot be reached is reported on `err` and gives status 1.
   */
  static async with(path: string, err: NodeJS.WritableStream, fn: (client: ApiClient) => Promise<number>): Promise<number> {
    let client: ApiClient;
    try {
      client = await ApiClient.connect(path);
    } catch (e) {
      err.write(`nodevisor: ${(e as Error).message}\n`);
      return 1;
    }
    try {
      return await fn(client);
    } finally {
      client.close();
    }
  }

  /** Sends one request; resolves with its result, rejects with the server's error (a JSONRPCErrorException). */
  request<T = unknown>(method: string, params?: unknown): Promise<T> {
    return this.rpc.request(method, params) as Promise<T>;
  }

  close(): void {
    this.socket.end();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.rpc.rejectAllPendingRequests('the VM closed the connection');
    this.emit('close');
  }
}
