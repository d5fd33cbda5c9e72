import { expect } from 'chai';
import { block, bytes, defineLayout, f64, i32, loadState, mutex, repeat, saveState, StateLayoutError } from '../src/sync/state-layout.js';

const L = defineLayout('demo', 2, {
  lock: mutex(),
  mode: i32(),
  regs: i32(3),
  counter: repeat(2, { value: i32(), lock: mutex() }),
  loadedAt: f64(),
  times: repeat(2, { start: f64(), end: f64() }),
  ring: bytes(5),
});

describe('typed state layouts', () => {
  it('places Int32 fields first, then Float64 (8-aligned), then bytes, in declaration order', () => {
    expect(L.at.lock).to.equal(0);
    expect(L.at.mode).to.equal(1);
    expect(L.at.regs).to.equal(2);
    expect(L.at.counter).to.deep.equal({ base: 5, stride: 2, count: 2, fields: { value: 0, lock: 1 } });
    expect(L.f64ByteOffset).to.equal(40); // 9 words = 36 bytes, rounded up to 8
    expect(L.at.loadedAt).to.equal(0);
    expect(L.at.times).to.deep.equal({ base: 1, stride: 2, count: 2, fields: { start: 0, end: 1 } });
    expect(L.bytesByteOffset).to.equal(40 + 5 * 8);
    expect(L.at.ring).to.equal(80);
    expect(L.byteLength).to.equal(85);
  });

  it('saves by field name, leaving mutexes out, and loads back into a fresh buffer', () => {
    const buf = L.allocate();
    const w = new Int32Array(buf, 0, L.f64ByteOffset / 4);
    const f = new Float64Array(buf, L.f64ByteOffset, 5);
    w[L.at.lock] = 1;
    w[L.at.mode] = 7;
    w[L.at.regs + 2] = -5;
    w[L.at.counter.base + L.at.counter.stride + L.at.counter.fields.value] = 42;
    w[L.at.counter.base + L.at.counter.fields.lock] = 1;
    f[L.at.loadedAt] = 1.5;
    f[L.at.times.base + L.at.times.stride + L.at.times.fields.end] = -Infinity;
    new Uint8Array(buf).set([1, 2, 3, 4, 5], L.at.ring);
    const saved = saveState(L, buf);
    expect(saved).to.deep.equal({
      layout: 'demo',
      version: 2,
      fields: {
        mode: 7,
        regs: [0, 0, -5],
        counter: [{ value: 0 }, { value: 42 }],
        loadedAt: 1.5,
        times: [{ start: 0, end: 0 }, { start: 0, end: '-Infinity' }],
        ring: Buffer.from([1, 2, 3, 4, 5]).toString('base64'),
      },
    });
    const copy = L.allocate();
    new Int32Array(copy, 0, 1)[0] = 1; // a held lock in the target is released by the load
    loadState(L, copy, JSON.parse(JSON.stringify(saved)));
    expect(new Float64Array(copy, L.f64ByteOffset, 5)[L.at.times.base + L.at.times.stride + L.at.times.fields.end]).to.equal(-Infinity);
    const w2 = new Int32Array(copy, 0, L.f64ByteOffset / 4);
    expect(w2[L.at.lock]).to.equal(0);
    expect(w2[L.at.mode]).to.equal(7);
    expect(w2[L.at.counter.base + L.at.counter.stride]).to.equal(42);
    expect(new Uint8Array(copy, L.at.ring, 5)).to.deep.equal(Uint8Array.from([1, 2, 3, 4, 5]));
  });

  it('migrates older versions step by step and refuses what it cannot read', () => {
    const buf = L.allocate();
    const v2 = saveState(L, buf);
    const { mode, ...v1fields } = v2.fields;
    const v1 = { layout: 'demo', version: 1, fields: { ...v1fields, oldMode: 3 } };
    loadState(L, buf, v1, { 1: ({ oldMode, ...rest }) => ({ ...rest, mode: oldMode! }) });
    expect(new Int32Array(buf, 0, 9)[L.at.mode]).to.equal(3);
    void mode;
    expect(() => loadState(L, buf, v1)).to.throw(StateLayoutError, /no migration from layout version 1 to 2/);
    expect(() => loadState(L, buf, { ...v2, version: 3 })).to.throw(StateLayoutError, /newer nodevisor/);
    expect(() => loadState(L, buf, { ...v2, layout: 'other' })).to.throw(StateLayoutError, /state of "other" given for "demo"/);
  });

  it('refuses missing, unknown and ill-typed fields, naming them', () => {
    const buf = L.allocate();
    const good = saveState(L, buf);
    const { mode: _m, ...noMode } = good.fields;
    expect(() => loadState(L, buf, { ...good, fields: noMode })).to.throw(StateLayoutError, /missing mode/);
    expect(() => loadState(L, buf, { ...good, fields: { ...good.fields, extra: 1 } })).to.throw(StateLayoutError, /unknown extra/);
    expect(() => loadState(L, buf, { ...good, fields: { ...good.fields, regs: [1, 2] } })).to.throw(StateLayoutError, /demo\.regs: expected 3 numbers/);
    expect(() => loadState(L, buf, { ...good, fields: { ...good.fields, mode: 2 ** 40 } })).to.throw(StateLayoutError, /not a 32-bit integer/);
    expect(() => loadState(L, buf, { ...good, fields: { ...good.fields, ring: 'AAAA' } })).to.throw(StateLayoutError, /expected 5 bytes/);
    expect(() => loadState(L, buf, { ...good, fields: { ...good.fields, counter: [{ value: 1 }] } })).to.throw(StateLayoutError, /counter: expected 2 records/);
  });

  it('lays blocks of mixed fields out contiguously and aligned, after everything else, and saves them by name', () => {
    const B = defineLayout('blocks', 1, { count: i32(), cpu: block(2, { irr: i32(8), lock: mutex(), deadline: f64(), id: i32() }, 64) });
    // Int32 fields in order (irr 0-31, lock 32, id 36), then Float64 8-aligned (40); 48 bytes round up to 64.
    expect(B.at.cpu).to.deep.equal({ base: 64, stride: 64, count: 2, fields: { irr: 0, lock: 32, id: 36, deadline: 40 } });
    expect(B.byteLength).to.equal(192);
    const buf = B.allocate();
    new Int32Array(buf)[(64 + 64 + 36) / 4] = 9;
    new Float64Array(buf)[(64 + 40) / 8] = Infinity;
    new Int32Array(buf)[(64 + 32) / 4] = 2;
    const saved = saveState(B, buf);
    expect((saved.fields.cpu as { id: number; deadline: unknown }[]).map((c) => [c.id, c.deadline])).to.deep.equal([[0, 'Infinity'], [9, 0]]);
    const copy = B.allocate();
    new Int32Array(copy)[(64 + 32) / 4] = 2;
    loadState(B, copy, JSON.parse(JSON.stringify(saved)));
    expect(new Int32Array(copy)[(64 + 64 + 36) / 4]).to.equal(9);
    expect(new Float64Array(copy)[(64 + 40) / 8]).to.equal(Infinity);
    expect(new Int32Array(copy)[(64 + 32) / 4]).to.equal(0);
  });

  it('refuses groups that mix kinds or nest, and bad names', () => {
    expect(() => defineLayout('x', 1, { g: repeat(2, { a: i32(), b: f64() }) })).to.throw(StateLayoutError, /one kind of field/);
    expect(() => defineLayout('x', 1, { g: repeat(2, { a: repeat(2, { b: i32() }) }) })).to.throw(StateLayoutError, /do not nest/);
    expect(() => defineLayout('x', 1, { 'a-b': i32() })).to.throw(StateLayoutError, /alphanumeric/);
    expect(() => defineLayout('x', 0, {})).to.throw(StateLayoutError, /version/);
  });
});
