/** Compile, then validate: a directive that breaks an engine constraint is never sent. */
import { CognigyResetError } from '../errors.js';
import {
  checkResetDirective,
  DEFAULT_MAX_DURATION_SEC,
  encodeFrame,
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
    timestamp: (options.now ?? new Date()).toISOString(),
  };
  if (options.requestId !== undefined) directive.requestId = options.requestId;
  const error = checkResetDirective(directive);
  if (error !== undefined) throw error;
  return { directive, text: encodeFrame(directive) };
}
