/**
 * One batch of what a bulk run makes durable, as every backend's writer receives it: flat value lists
 * that a writer thread gets cheaply (a structured clone of a few arrays of primitives and shared
 * references is cheap; thousands of small objects are not). The backend encodes, sequences, links and
 * hashes.
 */
import type { AuditContext } from '../audit/record.js';
import type { ResetOutcome } from '../reset/outcome.js';
import type { OutboxInput } from './port.js';

export interface BatchMessage {
  /** `OUTCOME_VALUES` values per outcome, as `pushOutcome` lays them out. */
  outcomes: unknown[];
  outbox: OutboxInput[];
  /**
   * Outbox ids the tracker accepted: deleted by the writer, so the deliverer never waits for it; in a
   * transaction of their own, after the batch, so that failing to delete them cannot fail the batch.
   */
  delivered: number[];
}

/** Values `pushOutcome` adds per outcome. */
export const OUTCOME_VALUES = 13;

/**
 * Appends what one outcome makes durable — its job-ledger row, its audit record, or both — to a batch:
 * values and references only (the audit context and the layer list are the same objects for a whole run,
 * which the thread hand-off sends once).
 */
export function pushOutcome(
  values: unknown[],
  outcome: ResetOutcome,
  job: { jobId: string; index: number } | undefined,
  audit: AuditContext | undefined,
): void {
  values.push(
    Date.now(),
    outcome.sessionId,
    outcome.outcome,
    outcome.verified,
    outcome.error?.code ?? null,
    outcome.attempts,
    outcome.latencyMs,
    outcome.requestId ?? null,
    outcome.directiveHash ?? null,
    // What the engine acknowledged and no check contradicted: a failed reset lists none, or those it did.
    outcome.cleared,
    job?.jobId ?? null,
    job?.index ?? null,
    audit ?? null,
  );
}

/** One outcome of a batch read back from its values (`i`: its first value's index). */
export interface BatchOutcome {
  /** Epoch ms of the append. */
  at: number;
  sessionId: string;
  outcome: string;
  verified: boolean;
  errorCode: string | null;
  attempts: number;
  latencyMs: number;
  requestId: string | null;
  directiveHash: string | null;
  cleared: string[];
  jobId: string | null;
  index: number | null;
  audit: AuditContext | null;
}

export function batchOutcome(o: unknown[], i: number): BatchOutcome {
  return {
    at: o[i] as number,
    sessionId: o[i + 1] as string,
    outcome: o[i + 2] as string,
    verified: o[i + 3] as boolean,
    errorCode: o[i + 4] as string | null,
    attempts: o[i + 5] as number,
    latencyMs: o[i + 6] as number,
    requestId: o[i + 7] as string | null,
    directiveHash: o[i + 8] as string | null,
    cleared: o[i + 9] as string[],
    jobId: o[i + 10] as string | null,
    index: o[i + 11] as number | null,
    audit: o[i + 12] as AuditContext | null,
  };
}
