/**
 * Typed layouts of the shared-memory state that devices, interrupt
 * controllers and queues keep in SharedArrayBuffers.
 *
 * A layout is declared once, by field name, with a version:
 *
 *   const L = defineLayout('uart16550', 1, {
 *     lock: mutex(),
 *     ier: i32(),
 *     counter: repeat(3, { mode: i32(), loadedAt: f64() }),
 *     rx: bytes(4096),
 *   });
 *
 * and gives back what code used to number by hand: `L.at.ier` is the index
 * of `ier` in an Int32Array over the buffer, `L.at.counter.base`,
 * `.stride` and `.fields.loadedAt` locate an element of a repeated group
 * (in the units of the field's own array type), `L.byteLength` sizes the
 * buffer. Int32 fields come first, then Float64 fields (8-byte aligned),
 * then byte arrays, in declaration order.
 *
 * Snapshots read and write the state by name (`saveState` / `loadState`),
 * never by offset: a change of layout is a new version with a migration
 * from the old record, so an old snapshot can never be read at the wrong
 * offsets. Mutex words are not saved: a snapshot is taken of a quiesced VM,
 * and they are restored unlocked.
 */

export type ScalarKind = 'i32' | 'f64' | 'mutex';

export interface ScalarField {
  readonly kind: ScalarKind;
  /** Elements (1 for a scalar). */
  readonly count: number;
}

export interface BytesField {
  readonly kind: 'bytes';
  readonly count: number;
}

export interface RepeatField<F extends FieldSpecs = FieldSpecs> {
  readonly kind: 'repeat';
  readonly count: number;
  readonly fields: F;
}

/**
 * `count` blocks of mixed Int32 and Float64 fields, each block contiguous
 * (its Int32 fields in order, then its Float64 fields 8-aligned) and
 * `align`-aligned: per-thread-owned state that must not share cache lines
 * with its neighbours. Offsets are in bytes.
 */
export interface BlockField<F extends FieldSpecs = FieldSpecs> {
  readonly kind: 'block';
  readonly count: number;
  readonly fields: F;
  readonly align: number;
}

export type FieldSpec = ScalarField | BytesField | RepeatField | BlockField;
export type FieldSpecs = { readonly [name: string]: FieldSpec };

export const i32 = (count = 1): ScalarField => ({ kind: 'i32', count });
export const f64 = (count = 1): ScalarField => ({ kind: 'f64', count });
/** An Int32 word used as a lock (sync/mutex.ts); never saved, restored unlocked. */
export const mutex = (): ScalarField => ({ kind: 'mutex', count: 1 });
export const bytes = (count: number): BytesField => ({ kind: 'bytes', count });
export const repeat = <F extends FieldSpecs>(count: number, fields: F): RepeatField<F> => ({ kind: 'repeat', count, fields });
export const block = <F extends FieldSpecs>(count: number, fields: F, align = 64): BlockField<F> => ({ kind: 'block', count, fields, align });

/** Where a repeated group lives: element e's field f is at `base + e * stride + fields[f]`. */
export interface GroupAt<F extends FieldSpecs> {
  readonly base: number;
  readonly stride: number;
  readonly count: number;
  readonly fields: { readonly [K in keyof F]: number };
}

/** Index of each field in its own typed array over the buffer (bytes: byte offset; blocks: byte offsets). */
export type LayoutAt<F extends FieldSpecs> = {
  readonly [K in keyof F]: F[K] extends RepeatField<infer G> ? GroupAt<G> : F[K] extends BlockField<infer B> ? GroupAt<B> : number;
};

export interface StateLayout<F extends FieldSpecs = FieldSpecs> {
  readonly name: string;
  readonly version: number;
  readonly fields: F;
  readonly at: LayoutAt<F>;
  readonly byteLength: number;
  /** Byte offset of the Float64 area (a multiple of 8). */
  readonly f64ByteOffset: number;
  /** Byte offset of the byte-array area. */
  readonly bytesByteOffset: number;
  /** A zeroed buffer of the layout's size. */
  allocate(): SharedArrayBuffer;
}

/**
 * A saved value: numbers for scalars (Float64 infinities and NaN as the
 * strings "Infinity", "-Infinity", "NaN", which JSON cannot hold as
 * numbers), arrays for counts > 1, base64 for bytes, records for groups.
 */
export type SavedValue = number | string | (number | string)[] | SavedRecord[] | SavedRecord;
export interface SavedRecord {
  [field: string]: SavedValue;
}

/** What a snapshot holds for one layout instance. */
export interface SavedState {
  layout: string;
  version: number;
  fields: SavedRecord;
}

export class StateLayoutError extends Error {}

type Kind = 'i32' | 'f64' | 'bytes';
const kindOf = (s: ScalarField | BytesField): Kind => (s.kind === 'mutex' ? 'i32' : s.kind);

/** Lays out `fields` for one kind at a time, counting units from `start`. */
function place(fields: FieldSpecs, kind: Kind, start: number, at: Record<string, unknown>): number {
  let next = start;
  for (const [name, spec] of Object.entries(fields)) {
    if (spec.kind === 'block') continue;
    if (spec.kind === 'repeat') {
      // Each kind's share of a group is its own strided block.
      const inner: Record<string, unknown> = {};
      const stride = place(spec.fields, kind, 0, inner);
      if (stride === 0) continue;
      const group = (at[name] as { fields: Record<string, unknown> } | undefined) ?? { base: 0, stride: 0, count: spec.count, fields: {} };
      Object.assign(group, { base: next, stride, count: spec.count });
      Object.assign(group.fields, inner);
      at[name] = group;
      next += stride * spec.count;
    } else if (kindOf(spec) === kind) {
      at[name] = next;
      next += spec.count;
    }
  }
  return next;
}

/** Places block fields after everything else; returns the end in bytes. */
function placeBlocks(fields: FieldSpecs, start: number, at: Record<string, unknown>): number {
  let next = start;
  for (const [name, spec] of Object.entries(fields)) {
    if (spec.kind !== 'block') continue;
    const inner: Record<string, number> = {};
    let offset = 0;
    for (const kind of ['i32', 'f64'] as const) {
      if (kind === 'f64') offset = Math.ceil(offset / 8) * 8;
      for (const [f, fs] of Object.entries(spec.fields)) {
        if (fs.kind === 'repeat' || fs.kind === 'block' || fs.kind === 'bytes' || kindOf(fs) !== kind) continue;
        inner[f] = offset;
        offset += fs.count * (kind === 'i32' ? 4 : 8);
      }
    }
    const stride = Math.ceil(offset / spec.align) * spec.align;
    const base = Math.ceil(next / spec.align) * spec.align;
    at[name] = { base, stride, count: spec.count, fields: inner };
    next = base + stride * spec.count;
  }
  return next;
}

function checkSpecs(fields: FieldSpecs, where: string): void {
  for (const [name, spec] of Object.entries(fields)) {
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) throw new StateLayoutError(`${where}: field name "${name}" must be alphanumeric`);
    if (!Number.isInteger(spec.count) || spec.count < 1) throw new StateLayoutError(`${where}.${name}: count must be a positive integer`);
    if (spec.kind === 'block') {
      if (Object.values(spec.fields).some((f) => f.kind === 'repeat' || f.kind === 'block' || f.kind === 'bytes')) throw new StateLayoutError(`${where}.${name}: a block holds Int32 and Float64 fields only`);
      if (!Number.isInteger(spec.align) || spec.align < 8 || (spec.align & (spec.align - 1)) !== 0) throw new StateLayoutError(`${where}.${name}: align must be a power of two of at least 8`);
      checkSpecs(spec.fields, `${where}.${name}`);
      continue;
    }
    if (spec.kind === 'repeat') {
      const kinds = new Set(Object.values(spec.fields).map((f) => (f.kind === 'repeat' || f.kind === 'block' ? f.kind : kindOf(f))));
      if (kinds.has('repeat') || kinds.has('block')) throw new StateLayoutError(`${where}.${name}: groups do not nest`);
      if (kinds.size > 1) throw new StateLayoutError(`${where}.${name}: a group holds one kind of field (split Int32 and Float64 fields into two groups)`);
      checkSpecs(spec.fields, `${where}.${name}`);
    }
  }
}

export function defineLayout<F extends FieldSpecs>(name: string, version: number, fields: F): StateLayout<F> {
  if (!Number.isInteger(version) || version < 1) throw new StateLayoutError(`${name}: version must be a positive integer`);
  checkSpecs(fields, name);
  const at: Record<string, unknown> = {};
  const i32Units = place(fields, 'i32', 0, at);
  const f64ByteOffset = Math.ceil((i32Units * 4) / 8) * 8;
  const f64Units = place(fields, 'f64', 0, at);
  const bytesByteOffset = f64ByteOffset + f64Units * 8;
  const byteUnits = place(fields, 'bytes', bytesByteOffset, at);
  const byteLength = Math.max(4, placeBlocks(fields, byteUnits, at));
  return {
    name,
    version,
    fields,
    at: at as LayoutAt<F>,
    byteLength,
    f64ByteOffset,
    bytesByteOffset,
    allocate: () => new SharedArrayBuffer(byteLength),
  };
}

interface Views {
  i32: Int32Array;
  f64: Float64Array;
  u8: Uint8Array;
  /** Whole-buffer views for blocks (indices from byte offsets). */
  all?: { i32: Int32Array; f64: Float64Array };
}

function wholeViews(v: Views): { i32: Int32Array; f64: Float64Array } {
  const b = v.u8.buffer as SharedArrayBuffer;
  v.all ??= { i32: new Int32Array(b, 0, Math.floor(b.byteLength / 4)), f64: new Float64Array(b, 0, Math.floor(b.byteLength / 8)) };
  return v.all;
}

/** Views whose index 0 is the byte offset of a block field, for readScalar/writeScalar. */
function blockViews(v: Views, kind: Kind, byteOffset: number): { views: Views; index: number } {
  const all = wholeViews(v);
  return { views: { ...v, i32: all.i32, f64: all.f64 }, index: byteOffset / (kind === 'f64' ? 8 : 4) };
}

function viewsOf(layout: StateLayout, buffer: SharedArrayBuffer): Views {
  if (buffer.byteLength < layout.byteLength) throw new StateLayoutError(`${layout.name}: buffer of ${buffer.byteLength} bytes is smaller than the layout's ${layout.byteLength}`);
  return {
    i32: new Int32Array(buffer, 0, layout.f64ByteOffset / 4),
    f64: new Float64Array(buffer, layout.f64ByteOffset, (layout.bytesByteOffset - layout.f64ByteOffset) / 8),
    u8: new Uint8Array(buffer),
  };
}

function readScalar(v: Views, spec: ScalarField | BytesField, index: number): SavedValue {
  if (spec.kind === 'bytes') return Buffer.from(v.u8.subarray(index, index + spec.count)).toString('base64');
  const read = (i: number): number | string => {
    if (spec.kind !== 'f64') return Atomics.load(v.i32, i);
    const x = v.f64[i]!;
    return Number.isFinite(x) ? x : String(x);
  };
  if (spec.count === 1) return read(index);
  return Array.from({ length: spec.count }, (_, k) => read(index + k));
}

/** The state in `buffer`, by field name (mutexes left out). */
export function saveState(layout: StateLayout, buffer: SharedArrayBuffer): SavedState {
  const v = viewsOf(layout, buffer);
  const fields: SavedRecord = {};
  const at = layout.at as Record<string, number | GroupAt<FieldSpecs>>;
  for (const [name, spec] of Object.entries(layout.fields)) {
    if (spec.kind === 'mutex') continue;
    if (spec.kind === 'block') {
      const g = at[name] as GroupAt<FieldSpecs>;
      fields[name] = Array.from({ length: spec.count }, (_, e) => {
        const rec: SavedRecord = {};
        for (const [f, fs] of Object.entries(spec.fields)) {
          if (fs.kind !== 'i32' && fs.kind !== 'f64') continue;
          const { views, index } = blockViews(v, fs.kind, g.base + e * g.stride + g.fields[f]!);
          rec[f] = readScalar(views, fs, index);
        }
        return rec;
      });
      continue;
    }
    if (spec.kind === 'repeat') {
      const g = at[name] as GroupAt<FieldSpecs>;
      fields[name] = Array.from({ length: spec.count }, (_, e) => {
        const rec: SavedRecord = {};
        for (const [f, fs] of Object.entries(spec.fields)) {
          if (fs.kind === 'repeat' || fs.kind === 'block' || fs.kind === 'mutex') continue;
          rec[f] = readScalar(v, fs, g.base + e * g.stride + g.fields[f]!);
        }
        return rec;
      });
    } else fields[name] = readScalar(v, spec, at[name] as number);
  }
  return { layout: layout.name, version: layout.version, fields };
}

function writeScalar(v: Views, spec: ScalarField | BytesField, index: number, value: SavedValue | undefined, where: string): void {
  if (spec.kind === 'mutex') {
    Atomics.store(v.i32, index, 0);
    return;
  }
  if (spec.kind === 'bytes') {
    if (typeof value !== 'string') throw new StateLayoutError(`${where}: expected base64 bytes`);
    const b = Buffer.from(value, 'base64');
    if (b.length !== spec.count) throw new StateLayoutError(`${where}: expected ${spec.count} bytes, got ${b.length}`);
    v.u8.set(b, index);
    return;
  }
  const raw = spec.count === 1 ? [value] : value;
  const values = Array.isArray(raw) ? raw.map((x) => (spec.kind === 'f64' && (x === 'Infinity' || x === '-Infinity' || x === 'NaN') ? Number(x) : x)) : raw;
  if (!Array.isArray(values) || values.length !== spec.count || values.some((x) => typeof x !== 'number' || (Number.isNaN(x) && spec.kind !== 'f64'))) {
    throw new StateLayoutError(`${where}: expected ${spec.count === 1 ? 'a number' : `${spec.count} numbers`}`);
  }
  (values as number[]).forEach((x, k) => {
    if (spec.kind === 'f64') v.f64[index + k] = x;
    else {
      if (!Number.isInteger(x) || x < -0x80000000 || x > 0xffffffff) throw new StateLayoutError(`${where}: ${x} is not a 32-bit integer`);
      Atomics.store(v.i32, index + k, x | 0);
    }
  });
}

function checkKeys(record: SavedRecord, fields: FieldSpecs, where: string): void {
  const expected = Object.entries(fields).filter(([, s]) => s.kind !== 'mutex').map(([n]) => n);
  const missing = expected.filter((n) => !(n in record));
  const extra = Object.keys(record).filter((n) => !expected.includes(n));
  if (missing.length || extra.length) {
    throw new StateLayoutError(`${where}: ${missing.length ? `missing ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `unknown ${extra.join(', ')}` : ''}`);
  }
}

/** Writes a repeat's or a block's saved records (one per element) into their words. */
function loadRecords(v: Views, spec: RepeatField | BlockField, g: GroupAt<FieldSpecs>, value: SavedValue | undefined, where: string): void {
  if (!Array.isArray(value) || value.length !== spec.count || value.some((r) => typeof r !== 'object' || r === null || Array.isArray(r))) {
    throw new StateLayoutError(`${where}: expected ${spec.count} records`);
  }
  const block = spec.kind === 'block';
  (value as SavedRecord[]).forEach((rec, e) => {
    checkKeys(rec, spec.fields, `${where}[${e}]`);
    for (const [f, fs] of Object.entries(spec.fields)) {
      // Nested groups are not saved inside records, and a block holds no bytes.
      if (fs.kind === 'repeat' || fs.kind === 'block' || (block && fs.kind === 'bytes')) continue;
      const at = g.base + e * g.stride + g.fields[f]!;
      const { views, index } = block ? blockViews(v, kindOf(fs), at) : { views: v, index: at };
      writeScalar(views, fs, index, rec[f], `${where}[${e}].${f}`);
    }
  });
}

/** A migration from version n to n + 1 of a layout's saved fields. */
export type Migration = (fields: SavedRecord) => SavedRecord;

/**
 * Writes a saved state into `buffer`, by field name. `migrations[n]` turns
 * version n's fields into version n + 1's; a state from another layout, a
 * newer version, or an older one without a migration path is refused, as
 * are missing, unknown or ill-typed fields.
 */
export function loadState(layout: StateLayout, buffer: SharedArrayBuffer, saved: SavedState, migrations: Readonly<Record<number, Migration>> = {}): void {
  if (saved.layout !== layout.name) throw new StateLayoutError(`state of "${saved.layout}" given for "${layout.name}"`);
  let { version, fields } = saved;
  if (version > layout.version) throw new StateLayoutError(`${layout.name}: saved by a newer nodevisor (layout version ${version}, this one reads up to ${layout.version})`);
  while (version < layout.version) {
    const m = migrations[version];
    if (!m) throw new StateLayoutError(`${layout.name}: no migration from layout version ${version} to ${version + 1}`);
    fields = m(fields);
    version++;
  }
  checkKeys(fields, layout.fields, layout.name);
  const v = viewsOf(layout, buffer);
  const at = layout.at as Record<string, number | GroupAt<FieldSpecs>>;
  for (const [name, spec] of Object.entries(layout.fields)) {
    const where = `${layout.name}.${name}`;
    if (spec.kind === 'block' || spec.kind === 'repeat') loadRecords(v, spec, at[name] as GroupAt<FieldSpecs>, fields[name], where);
    else writeScalar(v, spec, at[name] as number, fields[name], where);
  }
}

/** The part `key` of a device's saved states; a clear error when the snapshot lacks it. */
export function required(saved: Readonly<Record<string, SavedState>>, key: string): SavedState {
  const s = saved[key];
  if (!s || typeof s !== 'object' || typeof s.layout !== 'string' || typeof s.version !== 'number' || typeof s.fields !== 'object') {
    throw new StateLayoutError(`the snapshot has no valid "${key}" state`);
  }
  return s;
}
