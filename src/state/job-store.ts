/**
 * A named bulk job in the state file: its settings, and each session's last outcome (written through the
 * `StateWriter`, in the same transaction as the session's audit record).
 *
 * Crash safety: before input item `i` is sent, `reserve(i)` makes durable that items up to a mark (in
 * steps of RESERVE_STEP) may have been sent. On resume, a session below the old mark that has no
 * recorded outcome is "unsure": its state is checked before anything is sent, so a session that was reset
 * just before a SIGKILL is found reset and not reset a second time.
 */
import type { Statement } from 'better-sqlite3';
import { CognigyResetError } from '../errors.js';
import type { JobLedger } from '../reset/bulk.js';
import type { StateDb } from './state-file.js';

const RESERVE_STEP = 8192;

export class JobStore implements JobLedger {
  readonly jobId: string;
  readonly resumed: boolean;
  readonly #db: StateDb;
  /** The reservation mark left by earlier runs. */
  readonly #previousMark: number;
  #mark: number;
  readonly #lookup: Statement<[string, string], { done: number }>;
  readonly #setMark: Statement;

  constructor(db: StateDb, jobId: string, settings: Record<string, unknown>) {
    this.#db = db;
    this.jobId = jobId;
    const text = JSON.stringify(settings);
    const now = new Date().toISOString();
    const existing = db.prepare('SELECT settings, reserved_upto FROM jobs WHERE job_id = ?').get(jobId) as
      { settings: string; reserved_upto: number } | undefined;
    if (existing !== undefined && existing.settings !== text) {
      throw new CognigyResetError(
        'CR_ERR_STATE_JOB_MISMATCH',
        `job ${JSON.stringify(jobId)} exists with other settings (${describeDiff(existing.settings, settings)}); use another --job name`,
      );
    }
    if (existing === undefined) {
      db.prepare(
        'INSERT INTO jobs (job_id, settings, created_at, updated_at, runs) VALUES (?, ?, ?, ?, 1)',
      ).run(jobId, text, now, now);
    } else {
      db.prepare('UPDATE jobs SET runs = runs + 1, updated_at = ? WHERE job_id = ?').run(now, jobId);
    }
    this.resumed = existing !== undefined;
    this.#previousMark = existing?.reserved_upto ?? 0;
    this.#mark = this.#previousMark;
    this.#lookup = db.prepare('SELECT done FROM job_sessions WHERE job_id = ? AND session_id = ?');
    this.#setMark = db.prepare('UPDATE jobs SET reserved_upto = ?, updated_at = ? WHERE job_id = ?');
  }

  lookup(sessionId: string, index: number): 'done' | 'unsure' | 'new' {
    // A job's first run has nothing recorded from before (a duplicate id is simply reset again).
    if (!this.resumed) return 'new';
    const row = this.#lookup.get(this.jobId, sessionId);
    if (row?.done === 1) return 'done';
    // Below the old mark it may have been sent; a recorded failure was sent too, and may have landed.
    if (row !== undefined || index < this.#previousMark) return 'unsure';
    return 'new';
  }

  reserve(index: number): void {
    if (index < this.#mark) return;
    this.#mark = index + RESERVE_STEP;
    this.#setMark.run(this.#mark, new Date().toISOString(), this.jobId);
  }

  /** Marks the job finished when every session has an outcome (call after the writer committed). */
  finish(complete: boolean): void {
    this.#db
      .prepare('UPDATE jobs SET finished = ?, updated_at = ? WHERE job_id = ?')
      .run(complete ? 1 : 0, new Date().toISOString(), this.jobId);
  }

  /** Counts by outcome of what is recorded for this job. */
  counts(): Record<string, number> {
    const rows = this.#db
      .prepare('SELECT outcome, count(*) AS n FROM job_sessions WHERE job_id = ? GROUP BY outcome')
      .all(this.jobId) as { outcome: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.outcome, r.n]));
  }
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
