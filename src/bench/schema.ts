/**
 * JSON Schema (draft 2020-12) of the benchmark report that `nodevisor bench
 * --json` writes and `--baseline` reads (types in report-types.ts). It uses
 * only the keywords json-schema.ts implements, so `validateReport` checks
 * everything the schema says.
 */
import { NodevisorError } from '../kvm/errors.js';
import { validate, type JsonSchema, type SchemaError } from './json-schema.js';
import { REPORT_FORMAT, VERDICTS, type BenchReport } from './report-types.js';

const num: JsonSchema = { type: 'number' };
const count: JsonSchema = { type: 'integer', minimum: 0 };
const text: JsonSchema = { type: 'string' };
const ref = (name: string): JsonSchema => ({ $ref: `#/$defs/${name}` });

export const reportSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:nodevisor:bench-report:1',
  title: 'nodevisor benchmark report',
  description: 'Written by `nodevisor bench --json`: every raw sample, a summary per metric, the machine, the settings and, with --baseline, the comparison.',
  type: 'object',
  required: ['format', 'metadata', 'settings', 'suites'],
  additionalProperties: false,
  properties: {
    format: { const: REPORT_FORMAT, description: 'Report format and version; readers refuse others.' },
    metadata: ref('metadata'),
    settings: ref('settings'),
    suites: { type: 'array', items: ref('suite') },
    comparison: ref('comparison'),
    ab: {
      type: 'object',
      description: "An A/B run: `suites` are B's results, `ab.baseline` A's, measured alternately; `comparison` is B against A.",
      required: ['a', 'b', 'baseline'],
      additionalProperties: false,
      properties: { a: text, b: text, baseline: { type: 'array', items: ref('suite') } },
    },
  },
  $defs: {
    metricId: {
      type: 'string',
      pattern: '^[A-Za-z0-9_-]+(\\.[A-Za-z0-9_-]+)*$',
      description: 'Dotted: <suite>.<benchmark>[.<variant>].',
    },
    better: { enum: ['higher', 'lower'] },
    verdict: { enum: [...VERDICTS] },
    metadata: {
      type: 'object',
      required: ['date', 'nodevisorVersion', 'nodeVersion', 'hostKernel', 'cpuModel', 'hostCores', 'kvm', 'platform'],
      additionalProperties: false,
      properties: {
        date: { type: 'string', format: 'date-time' },
        nodevisorVersion: text,
        nodeVersion: text,
        hostKernel: text,
        cpuModel: text,
        hostCores: { type: 'integer', minimum: 1 },
        kvm: { enum: ['hardware', 'software (kvm_pvm)'] },
        platform: text,
      },
    },
    testKnobs: {
      type: 'object',
      description: 'Deliberate slow-downs used by tests; a report with any is not a real measurement.',
      additionalProperties: { type: ['number', 'boolean', 'string'] },
      properties: { ipiDelayUs: { type: 'number', minimum: 0 } },
    },
    settings: {
      type: 'object',
      required: ['suites', 'repetitions', 'maxVcpus'],
      additionalProperties: false,
      properties: {
        suites: { type: 'array', items: { type: 'string', minLength: 1 } },
        repetitions: { type: 'integer', minimum: 1 },
        maxVcpus: { type: 'integer', minimum: 1 },
        only: { type: 'array', items: text },
        testKnobs: ref('testKnobs'),
      },
    },
    summary: {
      type: 'object',
      description: 'Derived from samples. low/high: p10/p90 from 10 samples on, else min/max; spread = (high - low) / |median|.',
      required: ['n', 'median', 'min', 'max', 'low', 'high', 'spreadKind', 'spread'],
      additionalProperties: false,
      properties: {
        n: { type: 'integer', minimum: 1 },
        median: num,
        min: num,
        max: num,
        p10: num,
        p90: num,
        low: num,
        high: num,
        spreadKind: { enum: ['p10-p90', 'min-max'] },
        spread: { type: ['number', 'null'], minimum: 0 },
      },
    },
    metric: {
      type: 'object',
      required: ['id', 'description', 'unit', 'better', 'samples', 'tolerance', 'summary'],
      additionalProperties: false,
      properties: {
        id: ref('metricId'),
        description: text,
        unit: { type: 'string', minLength: 1 },
        better: ref('better'),
        samples: { type: 'array', minItems: 1, items: num, description: 'One per repetition, in the order measured.' },
        tolerance: { type: 'number', minimum: 0 },
        params: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
        distribution: { type: 'array', items: num, description: 'Individual observations behind the samples (charts only).' },
        summary: ref('summary'),
      },
    },
    suite: {
      type: 'object',
      required: ['suite', 'description', 'notes', 'metrics', 'seconds'],
      additionalProperties: false,
      properties: {
        suite: { type: 'string', minLength: 1 },
        description: text,
        notes: { type: 'array', items: text },
        metrics: { type: 'array', items: ref('metric') },
        seconds: { type: 'number', minimum: 0 },
        error: text,
      },
    },
    comparedSide: {
      type: 'object',
      required: ['median', 'n', 'low', 'high', 'noise'],
      additionalProperties: false,
      properties: {
        median: num,
        n: { type: 'integer', minimum: 1 },
        low: num,
        high: num,
        noise: { type: ['number', 'null'], minimum: 0 },
      },
    },
    metricComparison: {
      type: 'object',
      required: ['id', 'verdict', 'unit', 'better', 'tolerance', 'reason'],
      additionalProperties: false,
      properties: {
        id: ref('metricId'),
        verdict: ref('verdict'),
        unit: text,
        better: ref('better'),
        tolerance: { type: 'number', minimum: 0 },
        current: ref('comparedSide'),
        baseline: ref('comparedSide'),
        ratio: num,
        noise: { type: ['number', 'null'], minimum: 0 },
        reason: text,
      },
    },
    comparison: {
      type: 'object',
      required: ['baseline', 'strict', 'metrics', 'counts', 'noiseFloor', 'exitStatus'],
      additionalProperties: false,
      properties: {
        baseline: {
          type: 'object',
          required: ['date', 'nodevisorVersion'],
          additionalProperties: false,
          properties: { date: { type: 'string', format: 'date-time' }, nodevisorVersion: text, source: text },
        },
        strict: { type: 'boolean' },
        metrics: { type: 'array', items: ref('metricComparison') },
        counts: {
          type: 'object',
          required: [...VERDICTS],
          additionalProperties: false,
          properties: Object.fromEntries(VERDICTS.map((v) => [v, count])),
        },
        noiseFloor: {
          type: ['object', 'null'],
          required: ['median', 'worst'],
          additionalProperties: false,
          properties: {
            median: { type: 'number', minimum: 0 },
            worst: {
              type: 'object',
              required: ['id', 'noise'],
              additionalProperties: false,
              properties: { id: ref('metricId'), noise: { type: 'number', minimum: 0 } },
            },
          },
        },
        exitStatus: { enum: [0, 1, 2] },
      },
    },
  },
};

/** Errors of `doc` against the report schema (empty when valid). */
export function validateReport(doc: unknown): SchemaError[] {
  return validate(reportSchema, doc);
}

/** Parses and validates a report (e.g. a baseline file's text); throws a NodevisorError saying what is wrong. */
export function parseReport(json: string, source = 'report'): BenchReport {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch (e) {
    throw new NodevisorError('EBENCH', `${source} is not JSON: ${(e as Error).message}`);
  }
  const format = (doc as { format?: unknown } | null)?.format;
  if (format !== REPORT_FORMAT) {
    throw new NodevisorError('EBENCH', `${source} is not a nodevisor benchmark report in format ${REPORT_FORMAT} (format: ${JSON.stringify(format)}); write one with nodevisor bench --json`);
  }
  const errors = validateReport(doc);
  if (errors.length) {
    const shown = errors.slice(0, 5).map((e) => `  ${e.path || '/'}: ${e.message}`).join('\n');
    throw new NodevisorError('EBENCH', `${source} does not match the report schema (${errors.length} error${errors.length > 1 ? 's' : ''}):\n${shown}`);
  }
  return doc as BenchReport;
}
