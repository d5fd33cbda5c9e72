import { expect } from 'chai';
import { PacketDecoder, checksum, escapeBinary, frame, unescapeBinary } from '../src/gdb/framing.js';
import { GdbSession, PACKET_SIZE } from '../src/gdb/session.js';
import { REGISTERS, leBytes, targetXml, type RegisterValues } from '../src/gdb/registers.js';
import type { BreakpointType, GdbTarget, StopEvent } from '../src/gdb/target.js';
import { abridgedTag, fullTagWord } from '../src/gdb/vm-target.js';

describe('gdb remote protocol framing', () => {
  it('frames a packet as $payload#checksum with the modulo-256 sum in two hex digits', () => {
    expect(frame('OK').toString()).to.equal('$OK#9a');
    expect(frame('').toString()).to.equal('$#00');
    expect(checksum(Buffer.from('qSupported'))).to.equal(0x37);
  });

  it('splits a byte stream into packets, acks, interrupts and corrupt packets, across chunk boundaries', () => {
    const d = new PacketDecoder(100);
    const a = d.push(Buffer.from('+$g#6'));
    const b = d.push(Buffer.from('7-\x03$m0,1#00junk'));
    expect(a).to.deep.equal([{ kind: 'ack' }]);
    expect(b).to.deep.equal([{ kind: 'packet', payload: Buffer.from('g') }, { kind: 'nak' }, { kind: 'interrupt' }, { kind: 'corrupt' }]);
  });

  it('reports a packet longer than the limit as corrupt without keeping it', () => {
    const d = new PacketDecoder(4);
    const body = 'abcdefgh';
    expect(d.push(frame(body))).to.deep.equal([{ kind: 'corrupt' }]);
    expect(d.push(frame('abcd'))).to.deep.equal([{ kind: 'packet', payload: Buffer.from('abcd') }]);
  });

  it('escapes #, $, } and * in binary data as } and the byte XOR 0x20, and undoes it', () => {
    const data = Buffer.from([0x23, 0x24, 0x7d, 0x2a, 0x41]);
    expect([...escapeBinary(data)]).to.deep.equal([0x7d, 0x03, 0x7d, 0x04, 0x7d, 0x5d, 0x7d, 0x0a, 0x41]);
    expect([...unescapeBinary(escapeBinary(data))]).to.deep.equal([...data]);
  });
});

describe('gdb target description', () => {
  it("lists amd64's registers in gdb's order: general, rip, eflags, selectors, x87, SSE, then fs_base/gs_base", () => {
    const names = REGISTERS.map((r) => r.name);
    expect(names.slice(0, 24)).to.deep.equal(['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs']);
    expect(names.indexOf('st0')).to.equal(24);
    expect(names.indexOf('fop')).to.equal(39);
    expect(names.indexOf('xmm0')).to.equal(40);
    expect(names.slice(-3)).to.deep.equal(['mxcsr', 'fs_base', 'gs_base']);
  });

  it('describes the core, sse and segments features for i386:x86-64', () => {
    const xml = targetXml();
    expect(xml).to.contain('<architecture>i386:x86-64</architecture>');
    for (const f of ['core', 'sse', 'segments']) expect(xml).to.contain(`<feature name="org.gnu.gdb.i386.${f}">`);
    expect(xml).to.contain('<reg name="rip" bitsize="64" type="code_ptr" regnum="16" group="general"/>');
  });

  it("converts KVM's abridged x87 tag to the full tag word and back", () => {
    const one = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]); // 1.0: valid
    const zero = Buffer.alloc(10);
    const stack = [one, zero, ...Array.from({ length: 6 }, () => Buffer.alloc(10))];
    // TOP = 6: ST0 is physical 6, ST1 physical 7.
    const tag = fullTagWord(0b1100_0000, 6 << 11, stack);
    expect(tag).to.equal(0x0fff | (0 << 12) | (1 << 14));
    expect(abridgedTag(tag)).to.equal(0b1100_0000);
  });
});

/** A machine with two threads, registers in a map and 64 KiB of memory at 0x1000. */
class FakeTarget implements GdbTarget {
  readonly vcpus = 2;
  regs: RegisterValues[] = [0, 1].map((t) => Object.fromEntries(REGISTERS.map((r) => [r.name, leBytes(r.name === 'rip' ? 0x1000n + BigInt(t) : 0n, r.bits / 8)])));
  memory = Buffer.alloc(0x10000);
  breakpoints: string[] = [];
  resumed: Array<number | undefined> = [];
  interrupted = 0;
  detached = 0;
  killed = 0;
  stop?: (e: StopEvent) => void;
  exit?: (s: number) => void;

  halt(): Promise<StopEvent> {
    return Promise.resolve({ vcpu: 0, reason: { kind: 'attach' } });
  }
  readRegisters(vcpu: number): RegisterValues {
    return this.regs[vcpu]!;
  }
  writeRegisters(vcpu: number, values: RegisterValues): boolean {
    Object.assign(this.regs[vcpu]!, values);
    return true;
  }
  readMemory(_v: number, address: bigint, length: number): Uint8Array {
    const at = Number(address) - 0x1000;
    if (at < 0 || at >= this.memory.length) return new Uint8Array();
    return this.memory.subarray(at, Math.min(this.memory.length, at + length));
  }
  writeMemory(_v: number, address: bigint, data: Uint8Array): number {
    const at = Number(address) - 0x1000;
    if (at < 0 || at + data.length > this.memory.length) return 0;
    this.memory.set(data, at);
    return data.length;
  }
  insertBreakpoint(_v: number, type: BreakpointType, address: bigint, kind: number): boolean {
    this.breakpoints.push(`+${type}:${address.toString(16)}:${kind}`);
    return true;
  }
  removeBreakpoint(_v: number, type: BreakpointType, address: bigint): boolean {
    this.breakpoints.push(`-${type}:${address.toString(16)}`);
    return true;
  }
  resume(step?: number): void {
    this.resumed.push(step);
  }
  interrupt(): void {
    this.interrupted++;
    this.stop?.({ vcpu: 1, reason: { kind: 'interrupt' } });
  }
  onStop(h: (e: StopEvent) => void, exited: (s: number) => void): void {
    this.stop = h;
    this.exit = exited;
  }
  describe(vcpu: number): string {
    return `vCPU ${vcpu} (halted)`;
  }
  detach(): void {
    this.detached++;
  }
  kill(): void {
    this.killed++;
  }
}

/** Drives a session like gdb: sends packets, collects reply payloads. */
class FakeGdb {
  readonly target = new FakeTarget();
  private out = '';
  ended = 0;
  readonly session = new GdbSession(this.target, (b) => (this.out += b.toString('latin1')), { onEnd: () => this.ended++ });

  async send(payload: string | Buffer): Promise<string[]> {
    return this.sendRaw(frame(payload));
  }

  async sendRaw(bytes: Buffer): Promise<string[]> {
    this.out = '';
    this.session.feed(bytes);
    await new Promise((r) => setImmediate(r));
    return this.replies();
  }

  replies(): string[] {
    const d = new PacketDecoder(1 << 20);
    return d.push(Buffer.from(this.out, 'latin1')).flatMap((i) => (i.kind === 'packet' ? [i.payload.toString('latin1')] : []));
  }

  raw(): string {
    return this.out;
  }
}

describe('gdb session', () => {
  it('acknowledges packets until QStartNoAckMode, then stops', async () => {
    const g = new FakeGdb();
    await g.send('qSupported:swbreak+;hwbreak+');
    expect(g.raw().startsWith('+$')).to.equal(true);
    expect(await g.send('QStartNoAckMode')).to.deep.equal(['OK']);
    await g.send('?');
    expect(g.raw().startsWith('$')).to.equal(true);
  });

  it('announces its packet size, target.xml, no-ack mode and stop reasons in qSupported', async () => {
    const g = new FakeGdb();
    const [r] = await g.send('qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386');
    expect(r).to.equal(`PacketSize=${PACKET_SIZE.toString(16)};qXfer:features:read+;QStartNoAckMode+;swbreak+;hwbreak+;vContSupported+`);
  });

  it('serves target.xml in pieces, the last marked l', async () => {
    const g = new FakeGdb();
    const xml = targetXml();
    const [first] = await g.send('qXfer:features:read:target.xml:0,100');
    expect(first).to.equal(`m${xml.slice(0, 0x100)}`);
    const [last] = await g.send(`qXfer:features:read:target.xml:${(xml.length - 10).toString(16)},100`);
    expect(last).to.equal(`l${xml.slice(-10)}`);
    expect(await g.send('qXfer:features:read:other.xml:0,10')).to.deep.equal(['E00']);
  });

  it('reports the initial stop and lists one thread per vCPU', async () => {
    const g = new FakeGdb();
    expect(await g.send('?')).to.deep.equal(['T05thread:01;']);
    expect(await g.send('qfThreadInfo')).to.deep.equal(['m01,02']);
    expect(await g.send('qsThreadInfo')).to.deep.equal(['l']);
    expect(await g.send('qC')).to.deep.equal(['QC01']);
    expect(await g.send('qThreadExtraInfo,2')).to.deep.equal([Buffer.from('vCPU 1 (halted)').toString('hex')]);
    expect(await g.send('T02')).to.deep.equal(['OK']);
    expect(await g.send('T03')).to.deep.equal(['E01']);
  });

  it('reads and writes registers of the thread chosen with Hg, all at once or one by one', async () => {
    const g = new FakeGdb();
    const [all] = await g.send('g');
    const ripAt = 16 * 16;
    expect(all!.slice(ripAt, ripAt + 16)).to.equal('0010000000000000');
    expect(await g.send('Hg2')).to.deep.equal(['OK']);
    expect(await g.send('p10')).to.deep.equal(['0110000000000000']);
    expect(await g.send('P0=efcdab8967452301')).to.deep.equal(['OK']);
    expect(g.target.regs[1]!.rax).to.deep.equal(leBytes(0x0123456789abcdefn, 8));
    expect(await g.send('P0=12')).to.deep.equal(['E01']);
    expect(await g.send('p999')).to.deep.equal(['E01']);
    const [again] = await g.send('g');
    expect(await g.send(`G${again}`)).to.deep.equal(['OK']);
    expect(await g.send('G00')).to.deep.equal(['E01']);
  });

  it('reads and writes memory in hex and binary, with E14 where nothing is mapped', async () => {
    const g = new FakeGdb();
    expect(await g.send('M1000,4:deadbeef')).to.deep.equal(['OK']);
    expect(await g.send('m1000,4')).to.deep.equal(['deadbeef']);
    const payload = Buffer.concat([Buffer.from('X1004,2:'), escapeBinary(Buffer.from([0x23, 0x7d]))]);
    expect(await g.send(payload)).to.deep.equal(['OK']);
    expect([...g.target.memory.subarray(4, 6)]).to.deep.equal([0x23, 0x7d]);
    expect(await g.send('m0,4')).to.deep.equal(['E14']);
    expect(await g.send('mzz,4')).to.deep.equal(['E01']);
    expect(await g.send('M1000,4:dead')).to.deep.equal(['E01']);
  });

  it('places and removes software and hardware breakpoints and watchpoints, and declines read watchpoints', async () => {
    const g = new FakeGdb();
    expect(await g.send('Z0,1010,1')).to.deep.equal(['OK']);
    expect(await g.send('Z1,1020,1')).to.deep.equal(['OK']);
    expect(await g.send('Z2,1030,8')).to.deep.equal(['OK']);
    expect(await g.send('z0,1010,1')).to.deep.equal(['OK']);
    expect(await g.send('Z3,1030,8')).to.deep.equal(['']);
    expect(await g.send('Z9,1,1')).to.deep.equal(['E01']);
    expect(g.target.breakpoints).to.deep.equal(['+0:1010:1', '+1:1020:1', '+2:1030:8', '-0:1010']);
  });

  it('continues and replies only when the target stops, with the thread and why', async () => {
    const g = new FakeGdb();
    await g.send('qSupported:swbreak+;hwbreak+');
    expect(await g.send('c')).to.deep.equal([]);
    expect(g.target.resumed).to.deep.equal([undefined]);
    g.target.stop!({ vcpu: 1, reason: { kind: 'breakpoint' } });
    expect(g.replies()).to.deep.equal(['T05thread:02;swbreak:;']);
    expect(await g.send('qC')).to.deep.equal(['QC02']);
  });

  it('single-steps the thread vCont names, and with s the current thread', async () => {
    const g = new FakeGdb();
    expect(await g.send('vCont?')).to.deep.equal(['vCont;c;C;s;S']);
    await g.send('vCont;s:2;c');
    g.target.stop!({ vcpu: 1, reason: { kind: 'step' } });
    await g.send('Hg1');
    await g.send('s');
    expect(g.target.resumed).to.deep.equal([1, 0]);
    expect(await g.send('vCont;x')).to.deep.equal([]); // still running after `s`: only an interrupt is taken
  });

  it('resumes at a given address by writing RIP first', async () => {
    const g = new FakeGdb();
    await g.send('c2000');
    expect(g.target.regs[0]!.rip).to.deep.equal(leBytes(0x2000n, 8));
  });

  it('stops a running target on Ctrl-C and reports SIGINT', async () => {
    const g = new FakeGdb();
    await g.send('c');
    expect(await g.sendRaw(Buffer.from([3]))).to.deep.equal(['T02thread:02;']);
    expect(g.target.interrupted).to.equal(1);
  });

  it('tells gdb the process exited with the VM exit status when the VM ends', async () => {
    const g = new FakeGdb();
    await g.send('c');
    g.target.exit!(0x43);
    expect(g.replies()).to.deep.equal(['W43']);
    expect(g.ended).to.equal(1);
  });

  it('reports watchpoint and hardware-breakpoint stops in the stop reply', async () => {
    const g = new FakeGdb();
    await g.send('qSupported:swbreak+;hwbreak+');
    await g.send('c');
    g.target.stop!({ vcpu: 0, reason: { kind: 'watchpoint', access: 'write', address: 0x1030n } });
    await g.send('c');
    g.target.stop!({ vcpu: 0, reason: { kind: 'hw-breakpoint' } });
    expect(g.replies()).to.deep.equal(['T05thread:01;hwbreak:;']);
  });

  it('detaches on D and kills on k, ending the session', async () => {
    const g = new FakeGdb();
    expect(await g.send('D')).to.deep.equal(['OK']);
    expect(g.target.detached).to.equal(1);
    expect(g.ended).to.equal(1);
    const h = new FakeGdb();
    await h.send('k');
    expect(h.target.killed).to.equal(1);
  });

  it('detaches the target when gdb vanishes without a word', () => {
    const g = new FakeGdb();
    g.session.disconnected();
    expect(g.target.detached).to.equal(1);
  });

  it('answers unknown packets with the empty reply and garbage with errors, never throwing', async () => {
    const g = new FakeGdb();
    expect(await g.send('qTStatus')).to.deep.equal(['']);
    expect(await g.send('!')).to.deep.equal(['']);
    expect(await g.send('Hx1')).to.deep.equal(['E01']);
    expect(await g.send('m')).to.deep.equal(['E01']);
    expect(await g.send('p')).to.deep.equal(['E01']);
    expect(await g.send('Z')).to.deep.equal(['E01']);
    expect(await g.send('qThreadExtraInfo,99')).to.deep.equal(['E01']);
    await g.sendRaw(Buffer.from('$g#00'));
    expect(g.raw()).to.equal('-');
  });
});
