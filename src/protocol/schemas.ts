/**
 * The JSON Schemas: the single source of truth for the engine's constraints on each frame. They are
 * compiled once, when this module loads; the client and the emulator validate with the same functions.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import {
  MAX_DURATION_MAX_SEC,
  MAX_DURATION_MIN_SEC,
  SESSION_ID_MAX_LENGTH,
  SESSION_ID_PATTERN,
  STATE_RESET_VALUES,
} from './constraints.js';
import type { ResetDirective, StateCheckRequest } from './messages.js';

const sessionId = {
  type: 'string',
  minLength: 1,
  maxLength: SESSION_ID_MAX_LENGTH,
  pattern: SESSION_ID_PATTERN,
} as const;
const requestId = { type: 'string', minLength: 1, maxLength: 128 } as const;

export const resetDirectiveSchema = {
  $id: 'https://cognigy-reset.dev/schemas/reset-directive.json',
  type: 'object',
  required: ['type', 'sessionId', 'stateClearMatrix', 'contextWipeDirective', 'timestamp'],
  additionalProperties: false,
  properties: {
    type: { const: 'SEND' },
    sessionId,
    stateClearMatrix: {
      type: 'object',
      minProperties: 1,
      additionalProperties: false,
      properties: {
        flowState: { const: STATE_RESET_VALUES.flowState },
        dialogState: { const: STATE_RESET_VALUES.dialogState },
        engineState: { const: STATE_RESET_VALUES.engineState },
      },
    },
    contextWipeDirective: {
      type: 'object',
      required: ['clearVariables', 'clearHistory'],
      additionalProperties: false,
      properties: {
        clearVariables: { type: 'boolean' },
        clearHistory: { type: 'boolean' },
        clearNLUContext: { type: 'boolean' },
      },
    },
    maxDurationSec: { type: 'integer', minimum: MAX_DURATION_MIN_SEC, maximum: MAX_DURATION_MAX_SEC },
    timestamp: { type: 'string', format: 'date-time' },
    requestId,
  },
} as const;

export const stateCheckSchema = {
  $id: 'https://cognigy-reset.dev/schemas/state-check.json',
  type: 'object',
  required: ['type', 'sessionId', 'request'],
  additionalProperties: false,
  properties: {
    type: { const: 'QUERY' },
    sessionId,
    request: { const: 'STATE_CHECK' },
    requestId,
  },
} as const;

/** An engine may answer with more fields than these (a client must work with the bare shapes); only these are read. */
export const statusAnswerSchema = {
  $id: 'https://cognigy-reset.dev/schemas/status-answer.json',
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string', minLength: 1, maxLength: 64 },
    retryAfterMs: { type: 'integer', minimum: 0 },
    sessionId: { type: 'string' },
    requestId: { type: 'string' },
    reason: { type: 'string' },
  },
} as const;

export const stateAnswerSchema = {
  $id: 'https://cognigy-reset.dev/schemas/state-answer.json',
  type: 'object',
  required: ['flowState', 'variables'],
  properties: {
    flowState: { type: 'string', minLength: 1, maxLength: 64 },
    variables: { type: 'object' },
    dialogState: { type: 'string' },
    engineState: { type: 'string' },
    historyLength: { type: 'integer', minimum: 0 },
    nluContext: { type: ['object', 'null'] },
    sessionId: { type: 'string' },
    requestId: { type: 'string' },
  },
} as const;

/** ajv-formats' full RFC 3339 check of `format` (`date-time` requires a time zone). */
function formatCheck(name: 'date-time' | 'date'): (value: string) => boolean {
  const format = addFormats.default.get(name, 'full');
  if (typeof format === 'object' && 'validate' in format && typeof format.validate === 'function') {
    const validate = format.validate as (value: string) => boolean;
    return (value) => validate(value);
  }
  throw new Error(`ajv-formats has no ${name} check`);
}

/** An RFC 3339 date-time with its time zone: `2026-11-25T08:00:00Z`, `2026-11-25T09:00:00.5+01:00`. */
export const isDateTime = formatCheck('date-time');
/** An RFC 3339 full date: `2026-11-25`. */
export const isDate = formatCheck('date');

const ajv = new Ajv({ strict: true, allErrors: false, unicodeRegExp: true });
ajv.addFormat('date-time', { type: 'string', validate: recentlyValid(isDateTime) });

/**
 * Remembers the last few values a check accepted. A bulk run stamps every frame of a millisecond with
 * the same time, and the engine its answers likewise: the regular expression runs once per value, not
 * once per frame. The check is a pure function of the value, so the answer is the same.
 */
export function recentlyValid(check: (value: string) => boolean, size = 16): (value: string) => boolean {
  const valid = new Set<string>();
  return (value) => {
    if (valid.has(value)) return true;
    if (!check(value)) return false;
    if (valid.size >= size) valid.clear();
    valid.add(value);
    return true;
  };
}

export const validateResetDirective: ValidateFunction<ResetDirective> = ajv.compile(resetDirectiveSchema);
export const validateStateCheck: ValidateFunction<StateCheckRequest> = ajv.compile(stateCheckSchema);
export const validateStatusAnswer: ValidateFunction = ajv.compile(statusAnswerSchema);
export const validateStateAnswer: ValidateFunction = ajv.compile(stateAnswerSchema);

export type SchemaError = ErrorObject;
