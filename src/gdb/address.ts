import { NodevisorError } from '../kvm/errors.js';

export type GdbAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** `tcp:HOST:PORT`, `tcp::PORT` or `:PORT` (loopback), `HOST:PORT`, `unix:PATH` or a path with a slash. */
export function parseGdbAddress(text: string): GdbAddress {
  if (text.startsWith('unix:') || (!text.startsWith('tcp:') && text.includes('/'))) {
    const path = text.startsWith('unix:') ? text.slice(5) : text;
    if (path) return { kind: 'unix', path };
  }
  const m = /^(?:tcp:)?(\[[0-9a-fA-F:.]*\]|[\w.-]*):(\d{1,5})$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new NodevisorError('EGDB', `--gdb takes tcp:HOST:PORT, tcp::PORT or unix:PATH (got "${text}")`);
  return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(m[2]) };
}
