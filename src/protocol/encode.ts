/**
 * The one encoder of client frames, SEND and QUERY alike, and the compiler of a reset directive (build,
 * validate, encode). The text is what `JSON.stringify` gives for the frame's fields in the protocol's
 * order; the matrix and the wipe directive, the same objects for every session of a plan, are
 * serialised once per object instead of once per frame. It runs once or twice per session.
 */
import { CognigyResetError } from '../errors.js';
import { isoTime } from '../util/iso-time.js';
import { checkResetDirective } from './codec.js';
import { DEFAULT_MAX_DURATION_SEC, MAX_FRAME_BYTES, sessionIdProblem } from './constraints.js';
import type {
  ClientFrame,
  ContextWipeDirective,
  ResetDirective,
  StateCheckRequest,
  StateClearMatrix,
} from './messages.js';

const objectJson = new WeakMap<object, string>();

function cachedJson(value: object): string {
  let text = objectJson.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    objectJson.set(value, text);
  }
  return text;
}

function sendText(d: ResetDirective): string {
  return (
    `{"type":"SEND","sessionId":${JSON.stringify(d.sessionId)},` +
    `"stateClearMatrix":${cachedJson(d.stateClearMatrix)},"contextWipeDirective":${cachedJson(d.contextWipeDirective)}` +
    (d.maxDurationSec === undefined ? '' : `,"maxDurationSec":${JSON.stringify(d.maxDurationSec)}`) +
    `,"timestamp":${JSON.stringify(d.timestamp)}` +
    (d.requestId === undefined ? '' : `,"requestId":${JSON.stringify(d.requestId)}`) +
    '}'
  );
}

function queryText(q: StateCheckRequest): string {
  const id = JSON.stringify(q.sessionId);
  return q.requestId === undefined
    ? `{"type":"QUERY","sessionId":${id},"request":"STATE_CHECK"}`
    : `{"type":"QUERY","sessionId":${id},"request":"STATE_CHECK","requestId":${JSON.stringify(q.requestId)}}`;
}

/**
 * The text of a frame, sent as one text frame; throws `CR_ERR_PROTO_FRAME_TOO_BIG` past 64 KiB. Only the
 * fields the protocol names are written, in its order.
 */
export function encodeFrame(frame: ClientFrame): string {
  const text = frame.type === 'SEND' ? sendText(frame) : queryText(frame);
  // A UTF-16 unit is at most 3 bytes of UTF-8: a short text cannot be too big, and is not measured.
  if (text.length * 3 > MAX_FRAME_BYTES) {
    const size = Buffer.byteLength(text, 'utf8');
    if (size > MAX_FRAME_BYTES) {
      throw new CognigyResetError(
        'CR_ERR_PROTO_FRAME_TOO_BIG',
        `frame is ${size} bytes; the limit is ${MAX_FRAME_BYTES}`,
      );
    }
  }
  return text;
}

/** The state check of a session. */
export function stateCheck(sessionId: string, requestId: string | undefined): StateCheckRequest {
  const frame: StateCheckRequest = { type: 'QUERY', sessionId, request: 'STATE_CHECK' };
  if (requestId !== undefined) frame.requestId = requestId;
  return frame;
}

/** What a directive clears: a reset plan carries both (the same objects for every session). */
export interface DirectiveParts {
  stateClearMatrix: StateClearMatrix;
  contextWipeDirective: ContextWipeDirective;
}

export interface CompileOptions {
  /** @default 900 */
  maxDurationSec?: number | undefined;
  requestId?: string | undefined;
  /** @default new Date() */
  now?: Date;
}

export interface CompiledDirective {
  directive: ResetDirective;
  /** The exact text sent as one frame. */
  text: string;
}

/**
 * Compile, then validate: a directive that breaks an engine constraint is never sent. Throws
 * `CR_ERR_OPT_SESSION_ID` or a `CR_ERR_PROTO_*` code.
 */
export function compileDirective(
  sessionId: string,
  parts: DirectiveParts,
  options: CompileOptions = {},
): CompiledDirective {
  const problem = sessionIdProblem(sessionId);
  if (problem !== undefined) {
    throw new CognigyResetError(
      'CR_ERR_OPT_SESSION_ID',
      `session id ${JSON.stringify(sessionId.slice(0, 80))} ${problem}`,
      { field: 'sessionId' },
    );
  }
  const directive: ResetDirective = {
    type: 'SEND',
    sessionId,
    stateClearMatrix: parts.stateClearMatrix,
    contextWipeDirective: parts.contextWipeDirective,
    maxDurationSec: options.maxDurationSec ?? DEFAULT_MAX_DURATION_SEC,
    timestamp: options.now === undefined ? isoTime() : options.now.toISOString(),
  };
  if (options.requestId !== undefined) directive.requestId = options.requestId;
  const error = checkResetDirective(directive);
  if (error !== undefined) throw error;
  return { directive, text: encodeFrame(directive) };
}
