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
import { JOB_SESSION_COLUMNS, jobSessionWriter } from './batch-sql.js';
import type { WriterThread } from './writer-thread.js';
import { CognigyResetError } from '../errors.js';
import type { JobLedger } from '../reset/bulk.js';
import type { ResetOutcome } from '../reset/outcome.js';
import type { StateDb } from './state-file.js';

const RESERVE_STEP = 8192;
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
  /** Commits on this thread when there is no writer thread. */
  readonly #writeHere: (values: unknown[]) => void;
  readonly #writer: WriterThread | undefined;
  readonly #inflight = new Set<Promise<void>>();
  readonly #setMark: Statement;
  #batch: Row[] = [];
  #waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(db: StateDb, jobId: string, settings: Record<string, unknown>, writer?: WriterThread) {
    this.#writer = writer;
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
    this.#writeHere = jobSessionWriter(db);
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

  /** Commits the pending batch in one transaction (on the writer thread, if any) and releases its waiters. */
  flush(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#batch;
    const waiters = this.#waiters;
    this.#batch = [];
    this.#waiters = [];
    if (batch.length === 0) return;
    const now = new Date().toISOString();
    const values: unknown[] = new Array(batch.length * JOB_SESSION_COLUMNS);
    let k = 0;
    for (const row of batch) k = rowValues(values, k, this.jobId, row, now);
    const release = (err?: unknown): void => {
      for (const waiter of waiters) {
        if (err === undefined) waiter.resolve();
        else waiter.reject(err);
      }
    };
    if (this.#writer === undefined) {
      try {
        this.#writeHere(values);
      } catch (err) {
        release(err);
        return;
      }
      release();
      return;
    }
    const written = this.#writer.write('job-sessions', values).then(() => release(), release);
    this.#inflight.add(written);
    void written.then(() => this.#inflight.delete(written));
  }

  /** Commits everything recorded, then marks the job finished when every session has an outcome. */
  async finish(complete: boolean): Promise<void> {
    this.flush();
    await Promise.all(this.#inflight);
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

/** Writes one row's values into `values` from position `k`; returns the next position. */
function rowValues(
  values: unknown[],
  k: number,
  jobId: string,
  { outcome, index }: Row,
  now: string,
): number {
  values[k++] = jobId;
  values[k++] = outcome.sessionId;
  values[k++] = index;
  values[k++] = outcome.outcome;
  values[k++] = outcome.verified ? 1 : 0;
  values[k++] = outcome.outcome !== 'failed' ? 1 : 0;
  values[k++] = outcome.error?.code ?? null;
  values[k++] = outcome.attempts;
  values[k++] = outcome.latencyMs;
  values[k++] = now;
  return k;
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
