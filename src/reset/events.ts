/**
 * Every event the reset core publishes, declared once. Audit, metrics and logs subscribe through
 * `node:diagnostics_channel`; the core never imports them.
 */
import { channel } from 'node:diagnostics_channel';
import type { ResetOutcome } from './outcome.js';

/**
 * Every message carries `jobId`: the job of the pipeline that published it (undefined for a pipeline
 * made without one), so that the subscribers of two jobs in one process each see their own.
 */
export const CHANNELS = {
  /** `{ sessionId }` when a session's reset starts. */
  start: channel('cognigy-reset:reset:start'),
  /** `{ sessionId, attempt, requestId }` before each attempt (a SEND, or a target-style transport's requests). */
  attempt: channel('cognigy-reset:reset:attempt'),
  /** `{ sessionId, attempt, code, delayMs }` when an attempt failed and another follows. */
  retry: channel('cognigy-reset:reset:retry'),
  /** `{ sessionId, poll, flowState }` for each state check while verifying. */
  poll: channel('cognigy-reset:verify:poll'),
  /** `{ outcome: ResetOutcome, directiveText?: string }` when a session is finished (also for sessions the
   * bulk runner settles without the pipeline: skipped as done earlier, or a malformed input line). */
  done: channel('cognigy-reset:reset:done'),
  /** `{ sessionId, error }` when the analytics callback threw or its promise rejected; the reset is unaffected. */
  analyticsError: channel('cognigy-reset:analytics:error'),
  /** `{ sessionId, code, rate }` when a refusal made the adaptive rate slow down (`rate`: the new rate). */
  paceCut: channel('cognigy-reset:flow:cut'),
  /**
   * `{ sessionId, from, to, latencyMs, targetMs, floorMs }` when the adaptive depth cut the in-flight
   * limit: a round of answers took `latencyMs` (its median), past `targetMs` (set by the floor `floorMs`).
   */
  depthCut: channel('cognigy-reset:flow:depth-cut'),
} as const;

export interface DepthCutMessage {
  sessionId: string;
  jobId?: string | undefined;
  from: number;
  to: number;
  latencyMs: number;
  targetMs: number;
  floorMs: number;
}

export interface PaceCutMessage {
  sessionId: string;
  jobId?: string | undefined;
  code: string;
  rate: number;
}

export interface AnalyticsErrorMessage {
  sessionId: string;
  jobId?: string | undefined;
  error: unknown;
}

export interface DoneMessage {
  outcome: ResetOutcome;
  /** The frame that was sent (absent when nothing was). */
  directiveText?: string | undefined;
  /** `pipeline` for a session that went through `reset()` (and published `start`), `runner` otherwise. */
  settledBy: 'pipeline' | 'runner';
  jobId?: string | undefined;
}
