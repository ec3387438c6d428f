/** From a reset outcome to the audit record's fields (the writer thread sequences, links and hashes them). */
import { userInfo } from 'node:os';
import type { ResetOutcome } from '../reset/outcome.js';

export interface AuditContext {
  actor: string;
  reason: string | null;
  jobId: string | null;
  tenant: string;
  botId: string;
  transport: string;
  notCleared: readonly string[];
}

/** The OS user, or the service principal named by `COGNIGY_RESET_ACTOR`; never a token. */
export function resolveActor(env: NodeJS.ProcessEnv): string {
  const principal = env['COGNIGY_RESET_ACTOR'];
  if (principal !== undefined && principal.trim() !== '')
    return `principal:${principal.trim().slice(0, 200)}`;
  try {
    return `os:${userInfo().username}`;
  } catch {
    return `os:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

const NONE: readonly string[] = [];

/** Values `pushAudit` adds per record. */
export const AUDIT_VALUES = 11;

/**
 * Appends one record's values to a batch, flat: references only (the context and the layer list are
 * the same objects for a whole run, which the thread hand-off sends once), no encoding on this thread.
 * The writer (`batch-sql`) turns them into the record's fields, sequences, links and hashes them.
 */
export function pushAudit(values: unknown[], outcome: ResetOutcome, ctx: AuditContext): void {
  values.push(
    Date.now(),
    ctx,
    outcome.sessionId,
    outcome.outcome === 'failed' && outcome.attempts === 0 ? NONE : outcome.cleared,
    outcome.outcome,
    outcome.verified,
    outcome.error?.code ?? null,
    outcome.attempts,
    outcome.latencyMs,
    outcome.requestId ?? null,
    outcome.directiveHash ?? null,
  );
}
