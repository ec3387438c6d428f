/** The result of one session's reset, as the CLI prints it and the audit log records it. */
import type { CognigyResetError, ErrorCode } from '../errors.js';
import type { Layer } from '../model/plan.js';

export type OutcomeKind = 'reset' | 'failed' | 'skipped';

export interface ResetOutcome {
  sessionId: string;
  outcome: OutcomeKind;
  verified: boolean;
  latencyMs: number;
  /** SEND attempts made (0 when nothing was sent). */
  attempts: number;
  error: { code: ErrorCode; message: string } | null;
  /** State checks made while verifying. */
  polls: number;
  /** The requestId of the last directive sent. */
  requestId: string | undefined;
  /** Why a session was skipped: done in an earlier run of the job, or found already reset. */
  skipReason?: 'done-earlier' | 'already-reset' | 'dry-run';
  /** The layers this reset cleared (per the plan and the transport). */
  cleared: readonly Layer[];
  /** Layers asked for that the transport cannot clear (REST: the flow position, history, ...). */
  notCleared: readonly Layer[];
  /** Layers cleared but not read back (REST: the NLU state). */
  notVerified?: readonly Layer[];
  /** Whether an attempt after the first was needed. */
  retried: boolean;
  /**
   * SHA-256 (hex) of the frame last sent, or of a target-style transport's requests: what the audit log
   * records. Absent when nothing was sent. The text itself is in the `done` diagnostics message.
   */
  directiveHash?: string | undefined;
  /** `false` when the state file could not record this outcome (its audit record, its job row). */
  audited?: boolean | undefined;
}

/**
 * The contract's per-session JSON line (`--json`): sessionId, outcome, verified, latencyMs, attempts and
 * error. A transport that cannot clear every layer adds `cleared`, `notCleared` and `notVerified`, so each
 * outcome says plainly what it did not cover.
 */
export function outcomeLine(outcome: ResetOutcome): Record<string, unknown> {
  const line: Record<string, unknown> = {
    sessionId: outcome.sessionId,
    outcome: outcome.outcome,
    verified: outcome.verified,
    latencyMs: Math.round(outcome.latencyMs * 10) / 10,
    attempts: outcome.attempts,
    error: outcome.error,
  };
  // The contract's fields stay as they are; an outcome the state file could not record says so.
  if (outcome.audited === false) line['audited'] = false;
  if (outcome.notCleared.length > 0) {
    line['cleared'] = outcome.cleared;
    line['notCleared'] = outcome.notCleared;
    line['notVerified'] = outcome.notVerified ?? [];
  }
  return line;
}

export function errorOf(err: CognigyResetError): { code: ErrorCode; message: string } {
  return { code: err.code, message: err.message };
}

/** An outcome before anything happened: nothing sent, nothing verified. */
export function blankOutcome(
  sessionId: string,
  kind: OutcomeKind,
  cleared: readonly Layer[],
  notCleared: readonly Layer[] = [],
): ResetOutcome {
  return {
    notCleared,
    sessionId,
    outcome: kind,
    verified: false,
    latencyMs: 0,
    attempts: 0,
    error: null,
    polls: 0,
    requestId: undefined,
    cleared,
    retried: false,
  };
}
