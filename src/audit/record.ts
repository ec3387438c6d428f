/** From a reset outcome to the audit record's fields (the writer thread sequences, links and hashes them). */
import { userInfo } from 'node:os';
import type { ResetOutcome } from '../reset/outcome.js';
import type { AuditInput } from '../state/batch-sql.js';

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

export function auditInput(outcome: ResetOutcome, ctx: AuditContext): AuditInput {
  return {
    ts: new Date().toISOString(),
    actor: ctx.actor,
    reason: ctx.reason,
    jobId: ctx.jobId,
    tenant: ctx.tenant,
    botId: ctx.botId,
    sessionId: outcome.sessionId,
    transport: ctx.transport,
    cleared: outcome.outcome === 'failed' && outcome.attempts === 0 ? [] : [...outcome.cleared],
    notCleared: [...ctx.notCleared],
    outcome: outcome.outcome,
    verified: outcome.verified,
    errorCode: outcome.error?.code ?? null,
    attempts: outcome.attempts,
    latencyMs: Math.round(outcome.latencyMs * 1000) / 1000,
    requestId: outcome.requestId ?? null,
    directiveText: outcome.directiveText ?? null,
  };
}
