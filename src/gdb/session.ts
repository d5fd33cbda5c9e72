/**
 * One gdb connection: the remote serial protocol's packets (GDB manual,
 * "Packets", "General Query Packets", "Stop Reply Packets") answered from a
 * GdbTarget, in all-stop mode with one thread per vCPU. Malformed packets
 * get an error reply or the empty reply ("not supported"), never an
 * exception.
 */
import { PacketDecoder, escapeBinary, frame, unescapeBinary, type GdbInput } from './framing.js';
import { REGISTERS, leBytes, targetXml, type RegisterValues } from './registers.js';
import type { BreakpointType, GdbTarget, StopEvent } from './target.js';

/** Largest packet we take and announce (PacketSize, hex). */
export const PACKET_SIZE = 0x4000;

const SIGINT = 2;
const SIGTRAP = 5;

const hex = (n: number | bigint, width = 2): string => n.toString(16).padStart(width, '0');
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Bytes of a hex string; undefined if it is not one. */
function fromHex(text: string): Buffer | undefined {
  return text.length % 2 === 0 && /^[0-9a-fA-F]*$/.test(text) ? Buffer.from(text, 'hex') : undefined;
}

function parseAddress(text: string | undefined): bigint | undefined {
  return text !== undefined && /^[0-9a-fA-F]{1,16}$/.test(text) ? BigInt(`0x${text}`) : undefined;
}

function parseNumber(text: string | undefined, max = 0x7fffffff): number | undefined {
  if (text === undefined || !/^[0-9a-fA-F]{1,8}$/.test(text)) return undefined;
  const n = parseInt(text, 16);
  return n <= max ? n : undefined;
}

export interface GdbSessionOptions {
  /** The connection is over: the server may accept the next gdb. */
  onEnd?: () => void;
}

export class GdbSession {
  private readonly decoder = new PacketDecoder(PACKET_SIZE);
  private ackMode = true;
  private lastReply?: Buffer;
  /** Thread for register and memory access (Hg), 0-based vCPU. */
  private current = 0;
  private running = false;
  private lastStop: StopEvent = { vcpu: 0, reason: { kind: 'attach' } };
  private ended = false;
  private gdbFeatures = new Set<string>();
  private queue: Promise<void>;

  constructor(
    private readonly target: GdbTarget,
    private readonly send: (bytes: Buffer) => void,
    private readonly options: GdbSessionOptions = {},
  ) {
    target.onStop(
      (e) => this.stopped(e),
      (status) => this.exited(status),
    );
    this.queue = target.halt().then(
      (e) => {
        this.lastStop = e;
        this.current = e.vcpu;
      },
      () => undefined,
    );
  }

  /** Bytes from gdb. */
  feed(chunk: Uint8Array): void {
    for (const input of this.decoder.push(chunk)) {
      this.queue = this.queue.then(() => this.input(input)).catch(() => this.reply('E01'));
    }
  }

  /** The connection closed without a detach: gdb went away, the guest runs on. */
  disconnected(): void {
    if (this.ended) return;
    this.ended = true;
    this.target.detach();
    this.options.onEnd?.();
  }

  private input(input: GdbInput): void {
    if (this.ended) return;
    switch (input.kind) {
      case 'ack':
        return;
      case 'nak':
        if (this.lastReply) this.send(this.lastReply);
        return;
      case 'corrupt':
        if (this.ackMode) this.send(Buffer.from('-'));
        return;
      case 'interrupt':
        if (this.running) this.target.interrupt();
        return;
      case 'packet': {
        if (this.ackMode) this.send(Buffer.from('+'));
        const reply = this.packet(input.payload.toString('latin1'), input.payload);
        if (reply !== null) this.reply(reply);
        return;
      }
    }
  }

  private reply(payload: string | Uint8Array): void {
    const bytes = frame(payload);
    this.lastReply = bytes;
    this.send(bytes);
  }

  private stopped(e: StopEvent): void {
    if (!this.running || this.ended) return;
    this.running = false;
    this.lastStop = e;
    this.current = e.vcpu;
    this.reply(this.stopReply(e));
  }

  private exited(status: number): void {
    if (this.ended) return;
    this.running = false;
    this.reply(`W${hex(status & 0xff)}`);
    this.ended = true;
    this.options.onEnd?.();
  }

  private stopReply(e: StopEvent): string {
    const r = e.reason;
    const signal = r.kind === 'interrupt' ? SIGINT : SIGTRAP;
    let extra = '';
    if (r.kind === 'breakpoint' && this.gdbFeatures.has('swbreak')) extra = 'swbreak:;';
    if (r.kind === 'hw-breakpoint' && this.gdbFeatures.has('hwbreak')) extra = 'hwbreak:;';
    if (r.kind === 'watchpoint') extra = `${r.access === 'write' ? 'watch' : 'awatch'}:${r.address.toString(16)};`;
    return `T${hex(signal)}thread:${hex(e.vcpu + 1)};${extra}`;
  }

  /** The reply to one packet, or null when it comes later (resume) or never. */
  private packet(p: string, raw: Buffer): string | Uint8Array | null {
    if (this.running) return null; // all-stop: only an interrupt is expected while running
    switch (p[0]) {
      case '?':
        return this.stopReply(this.lastStop);
      case 'q':
        return this.query(p);
      case 'Q':
        if (p === 'QStartNoAckMode') {
          this.reply('OK');
          this.ackMode = false;
          return null;
        }
        return '';
      case 'H':
        return this.setThread(p);
      case 'T':
        return this.thread(p.slice(1)) !== undefined ? 'OK' : 'E01';
      case 'g':
        return this.readAll();
      case 'G':
        return this.writeAll(p.slice(1));
      case 'p':
        return this.readOne(p.slice(1));
      case 'P':
        return this.writeOne(p.slice(1));
      case 'm':
        return this.readMemory(p.slice(1));
      case 'M':
        return this.writeMemory(p.slice(1));
      case 'X':
        return this.writeBinary(raw);
      case 'Z':
      case 'z':
        return this.breakpoint(p);
      case 'c':
        return this.resume(p.length > 1 ? p.slice(1) : undefined);
      case 's':
        return this.resume(p.length > 1 ? p.slice(1) : undefined, this.current);
      case 'v':
        return this.vPacket(p);
      case 'D':
        this.reply('OK');
        this.ended = true;
        this.target.detach();
        this.options.onEnd?.();
        return null;
      case 'k':
        this.ended = true;
        this.target.kill();
        this.options.onEnd?.();
        return null;
      default:
        return '';
    }
  }

  private query(p: string): string {
    if (p.startsWith('qSupported')) {
      for (const f of p.slice('qSupported:'.length).split(';')) if (f.endsWith('+')) this.gdbFeatures.add(f.slice(0, -1));
      return `PacketSize=${PACKET_SIZE.toString(16)};qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+`;
    }
    if (p.startsWith('qXfer:features:read:')) return this.xferFeatures(p.slice('qXfer:features:read:'.length));
    if (p === 'qfThreadInfo') return `m${Array.from({ length: this.target.vcpus }, (_, i) => hex(i + 1)).join(',')}`;
    if (p === 'qsThreadInfo') return 'l';
    if (p === 'qC') return `QC${hex(this.current + 1)}`;
    if (p === 'qAttached') return '1';
    if (p.startsWith('qThreadExtraInfo,')) {
      const t = this.thread(p.slice('qThreadExtraInfo,'.length));
      return t === undefined ? 'E01' : toHex(Buffer.from(this.target.describe(t), 'utf8'));
    }
    return '';
  }

  private xferFeatures(args: string): string {
    const m = /^([^:]+):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(args);
    if (!m) return 'E01';
    if (m[1] !== 'target.xml') return 'E00';
    const doc = Buffer.from(targetXml(), 'utf8');
    const offset = parseInt(m[2]!, 16);
    const length = Math.min(parseInt(m[3]!, 16), PACKET_SIZE - 16);
    const part = doc.subarray(offset, offset + length);
    return (offset + length >= doc.length ? 'l' : 'm') + escapeBinary(part).toString('latin1');
  }

  /** A gdb thread id as a vCPU index: -1 and 0 ("any") mean the current one. */
  private thread(text: string): number | undefined {
    if (text === '-1' || text === '0') return this.current;
    const n = parseNumber(text);
    return n !== undefined && n >= 1 && n <= this.target.vcpus ? n - 1 : undefined;
  }

  private setThread(p: string): string {
    const t = this.thread(p.slice(2));
    if (t === undefined || (p[1] !== 'g' && p[1] !== 'c')) return 'E01';
    // Hc only says which thread a later `s`/`c` applies to; steps use vCont or `current`.
    if (p[1] === 'g') this.current = t;
    return 'OK';
  }

  private readAll(): string {
    const values = this.target.readRegisters(this.current);
    return REGISTERS.map((r) => toHex(values[r.name] ?? new Uint8Array(r.bits / 8))).join('');
  }

  private writeAll(text: string): string {
    const bytes = fromHex(text);
    const total = REGISTERS.reduce((n, r) => n + r.bits / 8, 0);
    if (!bytes || bytes.length < total) return 'E01';
    const values: RegisterValues = {};
    let at = 0;
    for (const r of REGISTERS) {
      values[r.name] = bytes.subarray(at, at + r.bits / 8);
      at += r.bits / 8;
    }
    return this.target.writeRegisters(this.current, values) ? 'OK' : 'E01';
  }

  private readOne(text: string): string {
    const n = parseNumber(text);
    const r = n !== undefined ? REGISTERS[n] : undefined;
    if (!r) return 'E01';
    return toHex(this.target.readRegisters(this.current)[r.name] ?? new Uint8Array(r.bits / 8));
  }

  private writeOne(text: string): string {
    const [num, value] = text.split('=');
    const n = parseNumber(num);
    const r = n !== undefined ? REGISTERS[n] : undefined;
    const bytes = value !== undefined ? fromHex(value) : undefined;
    if (!r || !bytes || bytes.length !== r.bits / 8) return 'E01';
    return this.target.writeRegisters(this.current, { [r.name]: bytes }) ? 'OK' : 'E01';
  }

  private readMemory(args: string): string {
    const [a, l] = args.split(',');
    const address = parseAddress(a);
    const length = parseNumber(l, PACKET_SIZE / 2 - 8);
    if (address === undefined || length === undefined) return 'E01';
    const bytes = this.target.readMemory(this.current, address, length);
    return bytes.length || length === 0 ? toHex(bytes) : 'E14';
  }

  private writeMemory(args: string): string {
    const m = /^([0-9a-fA-F]+),([0-9a-fA-F]+):([0-9a-fA-F]*)$/.exec(args);
    const address = parseAddress(m?.[1]);
    const data = m ? fromHex(m[3]!) : undefined;
    if (!m || address === undefined || !data || data.length !== parseInt(m[2]!, 16)) return 'E01';
    return this.target.writeMemory(this.current, address, data) === data.length ? 'OK' : 'E14';
  }

  private writeBinary(raw: Buffer): string {
    const colon = raw.indexOf(0x3a);
    const m = colon > 0 ? /^X([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(raw.subarray(0, colon).toString('latin1')) : null;
    const address = parseAddress(m?.[1]);
    if (!m || address === undefined) return 'E01';
    const data = unescapeBinary(raw.subarray(colon + 1));
    if (data.length !== parseInt(m[2]!, 16)) return 'E01';
    return data.length === 0 || this.target.writeMemory(this.current, address, data) === data.length ? 'OK' : 'E14';
  }

  private breakpoint(p: string): string {
    const m = /^([Zz])([0-4]),([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(p.split(';')[0]!);
    if (!m) return 'E01';
    const type = Number(m[2]);
    if (type === 3) return ''; // read-only watchpoints: x86 debug registers cannot tell reads from writes
    const address = parseAddress(m[3]);
    if (address === undefined) return 'E01';
    const insert = m[1] === 'Z';
    const t = type as BreakpointType;
    const kind = parseInt(m[4]!, 16);
    const ok = insert ? this.target.insertBreakpoint(this.current, t, address, kind) : this.target.removeBreakpoint(this.current, t, address, kind);
    return ok ? 'OK' : 'E01';
  }

  /** `c`/`s` with an optional resume address. */
  private resume(address: string | undefined, step?: number): string | null {
    if (address !== undefined) {
      const a = parseAddress(address);
      if (a === undefined) return 'E01';
      if (!this.target.writeRegisters(this.current, { rip: leBytes(a, 8) })) return 'E01';
    }
    this.running = true;
    this.target.resume(step);
    return null;
  }

  private vPacket(p: string): string | null {
    if (p === 'vCont?') return 'vCont;c;C;s;S';
    if (p.startsWith('vCont;')) {
      // All-stop: threads not stepping run on. The first step action wins (gdb sends at most one).
      let step: number | undefined;
      for (const action of p.slice(6).split(';')) {
        const [what, thread] = action.split(':');
        if (!what || !/^[cCsS]/.test(what)) return 'E01';
        if (what[0] === 's' || what[0] === 'S') {
          const t = thread === undefined ? this.current : this.thread(thread);
          if (t === undefined) return 'E01';
          step ??= t;
        }
      }
      if (step !== undefined) this.current = step;
      this.running = true;
      this.target.resume(step);
      return null;
    }
    if (p === 'vMustReplyEmpty') return '';
    if (p.startsWith('vKill')) {
      this.reply('OK');
      this.ended = true;
      this.target.kill();
      this.options.onEnd?.();
      return null;
    }
    return '';
  }
}
