/** From a reset outcome to the audit record: its context, and its canonical text linked into the chain. */
import { userInfo } from 'node:os';
import { CognigyResetError } from '../errors.js';
import { printableProblem } from '../util/printable.js';
import { type AuditRecord, canonical, sha256 } from './chain.js';

export interface AuditContext {
  actor: string;
  reason: string | null;
  jobId: string | null;
  tenant: string;
  botId: string;
  transport: string;
  notCleared: readonly string[];
}

const PRINCIPAL_MAX = 200;

/**
 * The OS user, or the service principal named by `COGNIGY_RESET_ACTOR`; never a token. A principal that is
 * not printable, or longer than 200 characters, is refused (`CR_ERR_OPT_INVALID`), not cut: the record
 * names the actor exactly or not at all.
 */
export function resolveActor(env: NodeJS.ProcessEnv): string {
  const principal = env['COGNIGY_RESET_ACTOR']?.trim();
  if (principal !== undefined && principal !== '') {
    const problem = printableProblem(principal, PRINCIPAL_MAX);
    if (problem !== undefined) {
      throw new CognigyResetError('CR_ERR_OPT_INVALID', `COGNIGY_RESET_ACTOR: ${problem}`, {
        field: 'COGNIGY_RESET_ACTOR',
      });
    }
    return `principal:${principal}`;
  }
  try {
    return `os:${userInfo().username}`;
  } catch {
    return `os:uid-${process.getuid?.() ?? 'unknown'}`;
  }
}

/** What the store knows of one outcome when it links its audit record into the chain. */
export type AuditOutcomeFields = Pick<
  AuditRecord,
  | 'sessionId'
  | 'outcome'
  | 'verified'
  | 'errorCode'
  | 'attempts'
  | 'latencyMs'
  | 'requestId'
  | 'directiveHash'
  | 'cleared'
>;

/**
 * The audit record of one outcome, as the store appends it after `prevHash` under `seq`: its canonical
 * text (what the hash covers, and what `audit verify` re-derives from the stored fields) and its hash.
 */
export function linkAuditRecord(
  ctx: AuditContext,
  fields: AuditOutcomeFields,
  at: { seq: number; ts: string; prevHash: string },
): { record: string; hash: string } {
  const record = canonical({
    seq: at.seq,
    ts: at.ts,
    actor: ctx.actor,
    reason: ctx.reason,
    jobId: ctx.jobId,
    tenant: ctx.tenant,
    botId: ctx.botId,
    sessionId: fields.sessionId,
    transport: ctx.transport,
    cleared: fields.cleared,
    notCleared: ctx.notCleared as string[],
    outcome: fields.outcome,
    verified: fields.verified,
    errorCode: fields.errorCode,
    attempts: fields.attempts,
    latencyMs: Math.round(fields.latencyMs * 1000) / 1000,
    requestId: fields.requestId,
    directiveHash: fields.directiveHash,
    prevHash: at.prevHash,
  });
  return { record, hash: sha256(record) };
}
