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

const listJson = new WeakMap<readonly string[], string>();

/** The JSON text of a layer list, made once per list (the plan's lists are shared by every outcome). */
function layersJson(list: readonly string[]): string {
  let text = listJson.get(list);
  if (text === undefined) {
    text = JSON.stringify(list);
    listJson.set(list, text);
  }
  return text;
}

const NONE: readonly string[] = [];

export function auditInput(outcome: ResetOutcome, ctx: AuditContext): AuditInput {
  const cleared = outcome.outcome === 'failed' && outcome.attempts === 0 ? NONE : outcome.cleared;
  return [
    new Date().toISOString(),
    ctx.actor,
    ctx.reason,
    ctx.jobId,
    ctx.tenant,
    ctx.botId,
    outcome.sessionId,
    ctx.transport,
    layersJson(cleared),
    layersJson(ctx.notCleared),
    outcome.outcome,
    outcome.verified,
    outcome.error?.code ?? null,
    outcome.attempts,
    Math.round(outcome.latencyMs * 1000) / 1000,
    outcome.requestId ?? null,
    outcome.directiveText ?? null,
  ];
}
