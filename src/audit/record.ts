/** From a reset outcome to the audit record's fields (the writer thread sequences, links and hashes them). */
import { userInfo } from 'node:os';

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
