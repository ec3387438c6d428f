/** Compile, then validate: a directive that breaks an engine constraint is never sent. */
import { isoTime } from '../util/iso-time.js';
import { CognigyResetError } from '../errors.js';
import {
  checkResetDirective,
  DEFAULT_MAX_DURATION_SEC,
  type ResetDirective,
  sessionIdProblem,
} from '../protocol/index.js';
import type { ResetPlan } from './plan.js';

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

/** Throws `CR_ERR_OPT_SESSION_ID` or a `CR_ERR_PROTO_*` code; nothing is sent for an invalid directive. */
export function compileDirective(
  sessionId: string,
  plan: ResetPlan,
  options: CompileOptions = {},
): CompiledDirective {
  const problem = sessionIdProblem(sessionId);
  if (problem !== undefined) {
    throw new CognigyResetError(
      'CR_ERR_OPT_SESSION_ID',
      `session id ${JSON.stringify(sessionId.slice(0, 80))} ${problem}`,
      {
        field: 'sessionId',
      },
    );
  }
  const directive: ResetDirective = {
    type: 'SEND',
    sessionId,
    stateClearMatrix: plan.stateClearMatrix,
    contextWipeDirective: plan.contextWipeDirective,
    maxDurationSec: options.maxDurationSec ?? DEFAULT_MAX_DURATION_SEC,
    timestamp: options.now === undefined ? isoTime() : options.now.toISOString(),
  };
  if (options.requestId !== undefined) directive.requestId = options.requestId;
  const error = checkResetDirective(directive);
  if (error !== undefined) throw error;
  return { directive, text: frameText(directive) };
}

/**
 * The frame text of a validated directive: the same as `JSON.stringify(directive)` (same keys, same
 * order), with the matrix and wipe directive serialised once per plan instead of once per session. A
 * session id of at most 256 characters keeps the frame far below 64 KiB, so no size check is needed.
 */
const planJson = new WeakMap<object, string>();

function cachedJson(value: object): string {
  let text = planJson.get(value);
  if (text === undefined) {
    text = JSON.stringify(value);
    planJson.set(value, text);
  }
  return text;
}

function frameText(d: ResetDirective): string {
  return (
    `{"type":"SEND","sessionId":${JSON.stringify(d.sessionId)},` +
    `"stateClearMatrix":${cachedJson(d.stateClearMatrix)},"contextWipeDirective":${cachedJson(d.contextWipeDirective)}` +
    (d.maxDurationSec === undefined ? '' : `,"maxDurationSec":${d.maxDurationSec}`) +
    `,"timestamp":"${d.timestamp}"` +
    (d.requestId === undefined ? '' : `,"requestId":${JSON.stringify(d.requestId)}`) +
    '}'
  );
}
