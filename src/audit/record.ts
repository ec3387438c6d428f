/** From a reset outcome to the audit record's fields (the writer thread sequences, links and hashes them). */
import { userInfo } from 'node:os';
import { CognigyResetError } from '../errors.js';
import { printableProblem } from '../util/printable.js';

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
