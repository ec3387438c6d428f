/**
 * The codec: raw frames in, typed messages or coded errors out. It never throws on input and never walks
 * more of a frame than the schemas name, so garbage of any size or depth costs one JSON.parse at most.
 */
import { CognigyResetError, type ErrorCode } from '../errors.js';
import { MAX_FRAME_BYTES } from './constraints.js';
import type { ClientFrame, EngineAnswer, ResetDirective, StateCheckRequest } from './messages.js';
import {
  type SchemaError,
  validateResetDirective,
  validateStateAnswer,
  validateStateCheck,
  validateStatusAnswer,
} from './schemas.js';

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: CognigyResetError };

/** Largest answer frame the client accepts; answers carry state and may exceed the directive limit. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

const fail = (code: ErrorCode, message: string, field?: string): { ok: false; error: CognigyResetError } => ({
  ok: false,
  error: new CognigyResetError(code, message, field === undefined ? {} : { field }),
});

function byteLength(raw: string | Buffer): number {
  return typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.byteLength;
}

function parseObject(raw: string | Buffer, limit: number): Decoded<Record<string, unknown>> {
  const size = byteLength(raw);
  if (size > limit) {
    return fail('CR_ERR_PROTO_FRAME_TOO_BIG', `frame is ${size} bytes; the limit is ${limit}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    return fail('CR_ERR_PROTO_NOT_JSON', 'frame is not valid JSON');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    return fail('CR_ERR_PROTO_NOT_OBJECT', `frame is not a JSON object (got ${describeType(parsed)})`);
  }
  return { ok: true, value: parsed as Record<string, unknown> };
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  if (typeof value === 'string') text = JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  else if (typeof value === 'object' && value !== null)
    text = Array.isArray(value) ? 'an array' : 'an object';
  // Values come from JSON.parse: numbers, booleans and null are all that is left.
  else text = JSON.stringify(value) ?? typeof value;
  return `${text} (${describeType(value)})`;
}

/** `/contextWipeDirective/clearHistory` → `contextWipeDirective.clearHistory`. */
function pointerToField(pointer: string): string {
  return pointer
    .split('/')
    .slice(1)
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
}

function valueAt(root: unknown, pointer: string): unknown {
  let node: unknown = root;
  for (const part of pointer.split('/').slice(1)) {
    if (node === null || typeof node !== 'object') return undefined;
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    node = Object.hasOwn(node, key) ? (node as Record<string, unknown>)[key] : undefined;
  }
  return node;
}

/** Turns the first schema error into a coded error that names the offending field. */
export function schemaErrorToError(root: unknown, error: SchemaError | undefined): CognigyResetError {
  if (error === undefined) return new CognigyResetError('CR_ERR_PROTO_INVALID_FIELD', 'frame is invalid');
  const base = pointerToField(error.instancePath);
  const join = (name: string): string => (base === '' ? name : `${base}.${name}`);
  switch (error.keyword) {
    case 'required': {
      const field = join(String(error.params['missingProperty']));
      return new CognigyResetError('CR_ERR_PROTO_MISSING_FIELD', `\`${field}\` is required`, { field });
    }
    case 'additionalProperties': {
      const field = join(String(error.params['additionalProperty']));
      return new CognigyResetError(
        'CR_ERR_PROTO_UNKNOWN_FIELD',
        `\`${field}\` is not accepted by the engine`,
        {
          field,
        },
      );
    }
    default: {
      const field = base === '' ? '(frame)' : base;
      const got = describeValue(valueAt(root, error.instancePath));
      const allowed = error.keyword === 'const' ? ` ${JSON.stringify(error.params['allowedValue'])}` : '';
      return new CognigyResetError(
        'CR_ERR_PROTO_INVALID_FIELD',
        `Expected \`${field}\` to ${(error.message ?? 'be valid').replace(/^must /, '')}${allowed}, got ${got}`,
        { field },
      );
    }
  }
}

/** Validates a reset directive object (already parsed), the check made before anything is sent. */
export function checkResetDirective(directive: unknown): CognigyResetError | undefined {
  if (validateResetDirective(directive)) return undefined;
  return schemaErrorToError(directive, validateResetDirective.errors?.[0]);
}

export function checkStateCheck(request: unknown): CognigyResetError | undefined {
  if (validateStateCheck(request)) return undefined;
  return schemaErrorToError(request, validateStateCheck.errors?.[0]);
}

/** Decodes a frame a client sent: what the engine (our emulator) reads. */
export function decodeClientFrame(raw: string | Buffer): Decoded<ClientFrame> {
  const parsed = parseObject(raw, MAX_FRAME_BYTES);
  if (!parsed.ok) return parsed;
  const frame = parsed.value;
  const type = Object.hasOwn(frame, 'type') ? frame['type'] : undefined;
  if (type === 'SEND') {
    const error = checkResetDirective(frame);
    return error ? { ok: false, error } : { ok: true, value: frame as unknown as ResetDirective };
  }
  if (type === 'QUERY') {
    const error = checkStateCheck(frame);
    return error ? { ok: false, error } : { ok: true, value: frame as unknown as StateCheckRequest };
  }
  if (type === undefined) return fail('CR_ERR_PROTO_MISSING_FIELD', '`type` is required', 'type');
  return fail(
    'CR_ERR_PROTO_UNKNOWN_TYPE',
    `Expected \`type\` to be "SEND" or "QUERY", got ${describeValue(type)}`,
    'type',
  );
}

function pickString(frame: Record<string, unknown>, key: string): string | undefined {
  const value = frame[key];
  return typeof value === 'string' ? value : undefined;
}

/**
 * Decodes an engine answer. Only the fields the protocol names are copied out, so extra fields (or
 * `__proto__` keys) in an answer never reach our objects.
 */
export function decodeAnswer(raw: string | Buffer): Decoded<EngineAnswer> {
  const parsed = parseObject(raw, MAX_ANSWER_BYTES);
  if (!parsed.ok) return { ok: false, error: badAnswer(parsed.error.message, parsed.error) };
  const frame = parsed.value;
  if (Object.hasOwn(frame, 'status')) {
    if (!validateStatusAnswer(frame)) {
      return {
        ok: false,
        error: badAnswer(schemaErrorToError(frame, validateStatusAnswer.errors?.[0]).message),
      };
    }
    const answer: EngineAnswer = { kind: 'status', status: frame['status'] as string };
    if (typeof frame['retryAfterMs'] === 'number') answer.retryAfterMs = frame['retryAfterMs'];
    const sessionId = pickString(frame, 'sessionId');
    if (sessionId !== undefined) answer.sessionId = sessionId;
    const requestId = pickString(frame, 'requestId');
    if (requestId !== undefined) answer.requestId = requestId;
    const reason = pickString(frame, 'reason');
    if (reason !== undefined) answer.reason = reason;
    return { ok: true, value: answer };
  }
  if (Object.hasOwn(frame, 'flowState')) {
    if (!validateStateAnswer(frame)) {
      return {
        ok: false,
        error: badAnswer(schemaErrorToError(frame, validateStateAnswer.errors?.[0]).message),
      };
    }
    const answer: EngineAnswer = {
      kind: 'state',
      flowState: frame['flowState'] as string,
      variables: frame['variables'] as Record<string, unknown>,
    };
    const dialogState = pickString(frame, 'dialogState');
    if (dialogState !== undefined) answer.dialogState = dialogState;
    const engineState = pickString(frame, 'engineState');
    if (engineState !== undefined) answer.engineState = engineState;
    if (typeof frame['historyLength'] === 'number') answer.historyLength = frame['historyLength'];
    if (Object.hasOwn(frame, 'nluContext'))
      answer.nluContext = frame['nluContext'] as Record<string, unknown> | null;
    const sessionId = pickString(frame, 'sessionId');
    if (sessionId !== undefined) answer.sessionId = sessionId;
    const requestId = pickString(frame, 'requestId');
    if (requestId !== undefined) answer.requestId = requestId;
    return { ok: true, value: answer };
  }
  return { ok: false, error: badAnswer('answer has neither `status` nor `flowState`') };
}

function badAnswer(message: string, cause?: unknown): CognigyResetError {
  return new CognigyResetError('CR_ERR_PROTO_BAD_ANSWER', `engine answer rejected: ${message}`, { cause });
}
