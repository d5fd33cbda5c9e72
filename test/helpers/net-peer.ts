import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { filePattern, payloadByte } from './net-patterns.js';

/**
 * The host side of the virtio-net tests, run inside the test's network
 * namespace (netns.ts): prints "ready" once listening, then a JSON line
 * per command it reads on stdin.
 *
 *   udp-echo ADDR PORT      checks each datagram against the test guest's
 *                           pattern (test/guests/virtio-net.c) byte for
 *                           byte and echoes it, except that datagrams
 *                           with seq 0 wait for "release"; "report"
 *                           prints the tally
 *   tcp-file ADDR PORT SIZE serves SIZE pattern bytes to every TCP client;
 *                           "report" prints their SHA-256 and byte count
 *   tcp-sink ADDR PORT      hashes what each TCP client sends; "report"
 *                           prints one {bytes, sha256} per finished client
 */

const [mode, addr = '', portText = '', sizeText = '0'] = process.argv.slice(2);
const port = Number(portText);

const report: Record<string, unknown>[] = [];
let tally: () => unknown = () => report;
const commands: Record<string, () => unknown> = { report: () => tally() };

function udpEcho(): void {
  const sock = createSocket('udp4');
  const perCpu: Record<number, number> = {};
  const bad: string[] = [];
  let datagrams = 0;
  let held: Array<() => void> | null = [];
  sock.on('message', (msg, rinfo) => {
    datagrams++;
    const why = checkDatagram(msg);
    if (why) bad.push(why);
    else {
      const cpu = msg.readUInt32LE(0);
      perCpu[cpu] = (perCpu[cpu] ?? 0) + 1;
    }
    const echo = (): void => sock.send(msg, rinfo.port, rinfo.address);
    if (held && msg.length >= 8 && msg.readUInt32LE(4) === 0) held.push(echo);
    else echo();
  });
  sock.bind(port, addr, () => console.log('ready'));
  commands.release = () => {
    const n = held?.length ?? 0;
    for (const echo of held ?? []) echo();
    held = null;
    return { released: n };
  };
  tally = () => ({ datagrams, perCpu, bad: bad.slice(0, 10) });
}

function checkDatagram(msg: Buffer): string | undefined {
  if (msg.length < 12) return `a ${msg.length}-byte datagram`;
  const cpu = msg.readUInt32LE(0);
  const seq = msg.readUInt32LE(4);
  if (msg.readUInt32LE(8) !== msg.length) return `cpu ${cpu} seq ${seq}: tag says ${msg.readUInt32LE(8)} bytes, got ${msg.length}`;
  for (let i = 12; i < msg.length; i++) if (msg[i] !== payloadByte(cpu, seq, i)) return `cpu ${cpu} seq ${seq}: byte ${i} is ${msg[i]}, expected ${payloadByte(cpu, seq, i)}`;
  return undefined;
}

function tcpFile(): void {
  const data = filePattern(Number(sizeText));
  const server = createServer((s: Socket) => {
    s.on('error', () => {});
    s.end(data);
  });
  server.listen(port, addr, () => console.log('ready'));
  tally = () => ({ bytes: data.length, sha256: createHash('sha256').update(data).digest('hex') });
}

function tcpSink(): void {
  const server = createServer((s: Socket) => {
    const hash = createHash('sha256');
    let bytes = 0;
    s.on('data', (b: Buffer) => {
      bytes += b.length;
      hash.update(b);
    });
    s.on('error', () => {});
    s.on('end', () => {
      report.push({ bytes, sha256: hash.digest('hex') });
      s.end();
    });
  });
  server.listen(port, addr, () => console.log('ready'));
}

switch (mode) {
  case 'udp-echo':
    udpEcho();
    break;
  case 'tcp-file':
    tcpFile();
    break;
  case 'tcp-sink':
    tcpSink();
    break;
  default:
    console.error(`unknown mode ${mode}`);
    process.exit(2);
}

createInterface({ input: process.stdin }).on('line', (l) => {
  const command = commands[l.trim()];
  if (command) console.log(JSON.stringify(command()));
});
