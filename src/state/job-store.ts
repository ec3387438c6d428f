/**
 * A named bulk job in the state file: its settings, and each session's last outcome. Writes are batched
 * into one transaction per few milliseconds; `record()` resolves only after its batch committed, so an
 * outcome is never reported before it is durable.
 *
 * Crash safety: before input item `i` is sent, `reserve(i)` makes durable that items up to a mark (in
 * steps of RESERVE_STEP) may have been sent. On resume, a session below the old mark that has no
 * recorded outcome is "unsure": its state is checked before anything is sent, so a session that was reset
 * just before a SIGKILL is found reset and not reset a second time.
 */
import type { Statement } from 'better-sqlite3';
import { CognigyResetError } from '../errors.js';
import type { JobLedger } from '../reset/bulk.js';
import type { ResetOutcome } from '../reset/outcome.js';
import type { StateDb } from './state-file.js';

const RESERVE_STEP = 1024;
const FLUSH_MS = 10;
const FLUSH_ROWS = 512;

interface Row {
  outcome: ResetOutcome;
  index: number;
}

export class JobStore implements JobLedger {
  readonly jobId: string;
  readonly resumed: boolean;
  readonly #db: StateDb;
  /** The reservation mark left by earlier runs. */
  readonly #previousMark: number;
  #mark: number;
  readonly #lookup: Statement<[string, string], { done: number }>;
  readonly #upsert: Statement;
  readonly #upsertMany: Statement;
  readonly #setMark: Statement;
  #batch: Row[] = [];
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #timer: NodeJS.Timeout | undefined;

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
    this.#upsert = db.prepare(upsertSql(1));
    this.#upsertMany = db.prepare(upsertSql(ROWS_PER_STATEMENT));
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

  record(outcome: ResetOutcome, index: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#batch.push({ outcome, index });
      this.#waiters.push({ resolve, reject });
      if (this.#batch.length >= FLUSH_ROWS) this.flush();
      else this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    });
  }

  /** Commits the pending batch in one transaction and releases its waiters. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    const waiters = this.#waiters;
    this.#batch = [];
    this.#waiters = [];
    if (batch.length === 0) return;
    const now = new Date().toISOString();
    try {
      this.#db.transaction(() => {
        let i = 0;
        for (; i + ROWS_PER_STATEMENT <= batch.length; i += ROWS_PER_STATEMENT) {
          this.#upsertMany.run(
            batch.slice(i, i + ROWS_PER_STATEMENT).flatMap((row) => rowValues(this.jobId, row, now)),
          );
        }
        for (; i < batch.length; i++) this.#upsert.run(rowValues(this.jobId, batch[i]!, now));
      })();
    } catch (err) {
      for (const waiter of waiters) waiter.reject(err);
      return;
    }
    for (const waiter of waiters) waiter.resolve();
  }

  /** Marks the job finished when every session of its input has an outcome. */
  finish(complete: boolean): void {
    this.flush();
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

/** One multi-row upsert binds this many rows: far fewer statement runs per batch. */
const ROWS_PER_STATEMENT = 64;

function upsertSql(rows: number): string {
  const tuple = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  return `INSERT INTO job_sessions (job_id, session_id, input_index, outcome, verified, done, error_code, attempts, latency_ms, updated_at)
    VALUES ${Array.from({ length: rows }, () => tuple).join(', ')}
    ON CONFLICT (job_id, session_id) DO UPDATE SET
      input_index = excluded.input_index, outcome = excluded.outcome, verified = excluded.verified,
      done = excluded.done, error_code = excluded.error_code, attempts = excluded.attempts,
      latency_ms = excluded.latency_ms, updated_at = excluded.updated_at
    WHERE job_sessions.done = 0`;
}

function rowValues(jobId: string, { outcome, index }: Row, now: string): unknown[] {
  return [
    jobId,
    outcome.sessionId,
    index,
    outcome.outcome,
    outcome.verified ? 1 : 0,
    outcome.outcome !== 'failed' ? 1 : 0,
    outcome.error?.code ?? null,
    outcome.attempts,
    outcome.latencyMs,
    now,
  ];
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
