import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeBlock, decodeLz4Legacy, isLz4Legacy, Lz4Error } from '../src/boot/lz4.js';

function hasLz4(): boolean {
  try {
    execFileSync('lz4', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('LZ4 legacy decoding', () => {
  it('decodes literal-only and overlapping-match blocks', () => {
    // "abc" literals, then a match of length 9 at offset 3 (overlapping), then literal "Z".
    const block = Uint8Array.from([0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x5a]);
    const out = new Uint8Array(64);
    const n = decodeBlock(block, out);
    expect(Buffer.from(out.subarray(0, n)).toString()).to.equal('abcabcabcabcZ');
  });

  it('rejects offsets before the start and truncated input', () => {
    expect(() => decodeBlock(Uint8Array.from([0x10, 0x61, 0x05, 0x00]), new Uint8Array(32))).to.throw(Lz4Error, /points before the output/);
    expect(() => decodeBlock(Uint8Array.from([0xf0]), new Uint8Array(32))).to.throw(Lz4Error, /truncated/);
    expect(() => decodeLz4Legacy(Uint8Array.from([1, 2, 3, 4]))).to.throw(Lz4Error, /bad magic/);
  });

  it('round-trips what the lz4 tool writes in legacy mode, with the kernel-style size trailer', function () {
    if (!hasLz4()) this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'nv-lz4-'));
    const text = Buffer.from('nodevisor '.repeat(300000));
    const data = Buffer.concat([text, randomBytes(3 << 20), text]);
    writeFileSync(join(dir, 'in'), data);
    execFileSync('lz4', ['-l', '-9', '-f', join(dir, 'in'), join(dir, 'out.lz4')], { stdio: 'ignore' });
    const size = Buffer.alloc(4);
    size.writeUInt32LE(data.length);
    const packed = Buffer.concat([readFileSync(join(dir, 'out.lz4')), size]);
    expect(isLz4Legacy(packed)).to.equal(true);
    const out = decodeLz4Legacy(packed, data.length);
    expect(Buffer.from(out).equals(data)).to.equal(true);
  });
});
