/**
 * What every backend decides the same way about a job: whether another run's lease still holds, what a
 * settings mismatch says, and the ledger's reservation step. The backends keep the rows; this module
 * judges them.
 */
import { CognigyResetError } from '../errors.js';
import { isRunning } from '../util/process-identity.js';
import type { JobLease } from './port.js';

/**
 * Input items reserved at a time: before item `i` is sent, items up to `i + RESERVE_STEP` are marked
 * "may have been sent", so a resumed run checks those it has no outcome for instead of sending them again.
 */
export const RESERVE_STEP = 8192;

/** Another run's claim on a job, as the backend read it. */
export interface HeldClaim {
  /** Null for a claim written before leases. */
  owner: string | null;
  host: string;
  pid: number;
  processStart: string | null;
  /** ISO date-times. */
  startedAt: string;
  /** Null for a claim written before leases. */
  expiresAt: string | null;
  /** The expiry has passed, by the clock the backend keeps leases by. */
  expired: boolean;
}

/**
 * Judges another run's claim: throws `CR_ERR_STATE_JOB_RUNNING` while it holds; otherwise returns the
 * lease taken over from a run whose end could not be seen (another host, or an expired lease of a
 * process that still runs), or undefined when its process on this host is gone.
 *
 * It holds while it has not expired and, on this host, while its process still runs. A claim from before
 * leases has no expiry: on this host it holds while its process runs; from another host it is taken over.
 */
export function judgeClaim(jobId: string, held: HeldClaim): JobLease | undefined {
  const running = isRunning({ host: held.host, pid: held.pid, start: held.processStart });
  const expired = held.expiresAt === null ? running === undefined : held.expired;
  if (running !== false && !expired) {
    const where = running === undefined ? ` on host ${held.host}, its lease until ${held.expiresAt}` : '';
    throw new CognigyResetError(
      'CR_ERR_STATE_JOB_RUNNING',
      `job ${JSON.stringify(jobId)} is being run by process ${held.pid}${where} (since ${held.startedAt}); wait for it to end, or stop it`,
    );
  }
  if (running === false) return undefined;
  return {
    owner: held.owner ?? `${held.host}/${held.pid}`,
    host: held.host,
    pid: held.pid,
    since: held.startedAt,
    expiresAt: held.expiresAt ?? held.startedAt,
  };
}

/** A job of that name exists with other settings (`previous`: its stored JSON text). */
export function settingsMismatch(
  jobId: string,
  previous: string,
  next: Record<string, unknown>,
): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_STATE_JOB_MISMATCH',
    `job ${JSON.stringify(jobId)} exists with other settings (${describeDiff(previous, next)}); use another --job name`,
  );
}

export function jobLost(jobId: string): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_STATE_JOB_LOST',
    `job ${JSON.stringify(jobId)} was taken over by another run while this one held it: its lease had expired`,
  );
}

function describeDiff(previous: string, next: Record<string, unknown>): string {
  let old: Record<string, unknown>;
  try {
    old = JSON.parse(previous) as Record<string, unknown>;
  } catch {
    return 'unreadable settings';
  }
  const keys = new Set([...Object.keys(old), ...Object.keys(next)]);
  const changed = [...keys].filter((k) => JSON.stringify(old[k]) !== JSON.stringify(next[k]));
  return changed.length === 0 ? 'same keys, different order' : `changed: ${changed.join(', ')}`;
}
