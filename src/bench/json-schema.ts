/**
 * A small JSON Schema (draft 2020-12) validator for the subset of keywords
 * the benchmark report schema uses. Keywords outside the subset are refused
 * (`assertSupported`) rather than silently ignored, so the schema cannot
 * promise a check this validator does not make.
 */

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';
type Scalar = string | number | boolean | null;

export interface JsonSchema {
  $schema?: string;
  $id?: string;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  title?: string;
  description?: string;
  type?: JsonType | JsonType[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  minItems?: number;
  enum?: Scalar[];
  const?: Scalar;
  minimum?: number;
  exclusiveMinimum?: number;
  maximum?: number;
  minLength?: number;
  pattern?: string;
  /** Only "date-time" (RFC 3339), checked as an assertion. */
  format?: 'date-time';
}

export interface SchemaError {
  /** JSON Pointer to the offending value ("" is the document). */
  path: string;
  message: string;
}

const SUPPORTED = new Set<string>([
  '$schema', '$id', '$ref', '$defs', 'title', 'description', 'type', 'properties', 'required', 'additionalProperties',
  'items', 'minItems', 'enum', 'const', 'minimum', 'exclusiveMinimum', 'maximum', 'minLength', 'pattern', 'format',
]);

/** Throws if `schema` (or any subschema) uses a keyword this validator does not implement. */
export function assertSupported(schema: JsonSchema, at = '#'): void {
  for (const key of Object.keys(schema)) if (!SUPPORTED.has(key)) throw new Error(`schema keyword "${key}" at ${at} is not supported by this validator`);
  if (schema.format !== undefined && schema.format !== 'date-time') throw new Error(`format "${String(schema.format)}" at ${at} is not supported`);
  for (const [k, s] of Object.entries(schema.$defs ?? {})) assertSupported(s, `${at}/$defs/${k}`);
  for (const [k, s] of Object.entries(schema.properties ?? {})) assertSupported(s, `${at}/properties/${k}`);
  if (schema.items) assertSupported(schema.items, `${at}/items`);
  if (typeof schema.additionalProperties === 'object') assertSupported(schema.additionalProperties, `${at}/additionalProperties`);
}

function typeOf(v: unknown): JsonType | 'undefined' | 'other' {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  switch (typeof v) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      // JSON has no NaN or Infinity: a value that cannot be written is invalid.
      return Number.isFinite(v) ? 'number' : 'other';
    case 'object':
      return 'object';
    case 'undefined':
      return 'undefined';
    default:
      return 'other';
  }
}

function matchesType(v: unknown, t: JsonType): boolean {
  const actual = typeOf(v);
  if (t === 'integer') return actual === 'number' && Number.isInteger(v);
  return actual === t;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const pointer = (path: string, key: string | number): string => `${path}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;

function resolveRef(root: JsonSchema, ref: string): JsonSchema {
  const m = /^#\/\$defs\/([^/]+)$/.exec(ref);
  const target = m ? root.$defs?.[m[1]!] : ref === '#' ? root : undefined;
  if (!target) throw new Error(`unresolvable $ref "${ref}" (only "#" and "#/$defs/NAME" are supported)`);
  return target;
}

/** Validates `value` against `schema`; returns every error found (empty when valid). */
export function validate(schema: JsonSchema, value: unknown, root: JsonSchema = schema, path = ''): SchemaError[] {
  const errors: SchemaError[] = [];
  const fail = (message: string, at = path): void => void errors.push({ path: at, message });
  if (schema.$ref) errors.push(...validate(resolveRef(root, schema.$ref), value, root, path));
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => matchesType(value, t))) {
      fail(`expected ${types.join(' or ')}, got ${typeOf(value) === 'other' ? String(value) : typeOf(value)}`);
      return errors;
    }
  }
  if (schema.const !== undefined && value !== schema.const) fail(`expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  if (schema.enum && !schema.enum.some((e) => e === value)) fail(`expected one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}, got ${JSON.stringify(value)}`);
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) fail(`${value} is below the minimum ${schema.minimum}`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) fail(`${value} is not above ${schema.exclusiveMinimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) fail(`${value} is above the maximum ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && [...value].length < schema.minLength) fail(`shorter than ${schema.minLength} characters`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) fail(`${JSON.stringify(value)} does not match ${schema.pattern}`);
    if (schema.format === 'date-time' && (!DATE_TIME.test(value) || Number.isNaN(Date.parse(value)))) fail(`${JSON.stringify(value)} is not an RFC 3339 date-time`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) fail(`fewer than ${schema.minItems} items`);
    if (schema.items) value.forEach((item, i) => errors.push(...validate(schema.items!, item, root, pointer(path, i))));
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const key of schema.required ?? []) if (!(key in obj) || obj[key] === undefined) fail(`missing required property "${key}"`);
    for (const [key, v] of Object.entries(obj)) {
      if (v === undefined) continue;
      const sub = schema.properties?.[key];
      if (sub) errors.push(...validate(sub, v, root, pointer(path, key)));
      else if (schema.additionalProperties === false) fail(`unexpected property "${key}"`, pointer(path, key));
      else if (typeof schema.additionalProperties === 'object') errors.push(...validate(schema.additionalProperties, v, root, pointer(path, key)));
    }
  }
  return errors;
}
