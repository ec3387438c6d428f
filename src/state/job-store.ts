/**
 * A named bulk job in the state file: its settings, and each session's last outcome (written through the
 * `StateWriter`, in the same transaction as the session's audit record).
 *
 * Crash safety: before input item `i` is sent, `reserve(i)` makes durable that items up to a mark (in
 * steps of RESERVE_STEP) may have been sent. On resume, a session below the old mark that has no
 * recorded outcome is "unsure": its state is checked before anything is sent, so a session that was reset
 * just before a SIGKILL is found reset and not reset a second time.
 *
 * One run at a time: the constructor claims the job for this process (table `job_runs`) and refuses it
 * while another process on this host holds the claim and still runs; `release()` gives it up. A claim
 * left by a run that crashed is taken over, as is one from another host, which cannot be checked.
 */
import type { Statement } from 'better-sqlite3';
import { CognigyResetError } from '../errors.js';
import type { JobLedger } from '../reset/bulk.js';
import type { StateDb } from './state-file.js';
import { isRunning, type ProcessIdentity, thisProcess } from '../util/process-identity.js';

const RESERVE_STEP = 8192;

/** Who holds a job: a run's host and pid, and since when. */
export interface JobClaim {
  host: string;
  pid: number;
  since: string;
}

export class JobStore implements JobLedger {
  readonly jobId: string;
  readonly resumed: boolean;
  readonly #db: StateDb;
  /** The reservation mark left by earlier runs. */
  readonly #previousMark: number;
  #mark: number;
  readonly #lookup: Statement<[string, string], { done: number }>;
  readonly #setMark: Statement;
  readonly #owner: ProcessIdentity = thisProcess();
  /** The claim of a run on another host that this one took over (it cannot tell whether that one runs). */
  readonly takenOver: JobClaim | undefined;

  constructor(db: StateDb, jobId: string, settings: Record<string, unknown>) {
    this.#db = db;
    this.jobId = jobId;
    const text = JSON.stringify(settings);
    const now = new Date().toISOString();
    // One write transaction: two runs starting at the same moment cannot both claim the job.
    const opened = db
      .transaction(() => {
        const existing = db
          .prepare('SELECT settings, reserved_upto FROM jobs WHERE job_id = ?')
          .get(jobId) as { settings: string; reserved_upto: number } | undefined;
        if (existing !== undefined && existing.settings !== text) {
          throw new CognigyResetError(
            'CR_ERR_STATE_JOB_MISMATCH',
            `job ${JSON.stringify(jobId)} exists with other settings (${describeDiff(existing.settings, settings)}); use another --job name`,
          );
        }
        const takenOver = this.#claim(now);
        if (existing === undefined) {
          db.prepare(
            'INSERT INTO jobs (job_id, settings, created_at, updated_at, runs) VALUES (?, ?, ?, ?, 1)',
          ).run(jobId, text, now, now);
        } else {
          db.prepare('UPDATE jobs SET runs = runs + 1, updated_at = ? WHERE job_id = ?').run(now, jobId);
        }
        return { existing, takenOver };
      })
      .immediate();
    const existing = opened.existing;
    this.takenOver = opened.takenOver;
    this.resumed = existing !== undefined;
    this.#previousMark = existing?.reserved_upto ?? 0;
    this.#mark = this.#previousMark;
    this.#lookup = db.prepare('SELECT done FROM job_sessions WHERE job_id = ? AND session_id = ?');
    this.#setMark = db.prepare('UPDATE jobs SET reserved_upto = ?, updated_at = ? WHERE job_id = ?');
  }

  /** Claims the job for this process; refuses it while another process on this host runs it. */
  #claim(now: string): JobClaim | undefined {
    const held = this.#db
      .prepare('SELECT host, pid, process_start, started_at FROM job_runs WHERE job_id = ?')
      .get(this.jobId) as
      { host: string; pid: number; process_start: string | null; started_at: string } | undefined;
    let takenOver: JobClaim | undefined;
    if (held !== undefined) {
      const holder = { host: held.host, pid: held.pid, start: held.process_start };
      const running = isRunning(holder);
      if (running === true && !(held.pid === this.#owner.pid && held.host === this.#owner.host)) {
        throw new CognigyResetError(
          'CR_ERR_STATE_JOB_RUNNING',
          `job ${JSON.stringify(this.jobId)} is being run by process ${held.pid} (since ${held.started_at}); wait for it to end, or stop it`,
        );
      }
      if (running === undefined) takenOver = { host: held.host, pid: held.pid, since: held.started_at };
    }
    this.#db
      .prepare(
        `INSERT INTO job_runs (job_id, host, pid, process_start, started_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (job_id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
           process_start = excluded.process_start, started_at = excluded.started_at`,
      )
      .run(this.jobId, this.#owner.host, this.#owner.pid, this.#owner.start, now);
    return takenOver;
  }

  /** Gives up this process's claim on the job (a later run may take it). */
  release(): void {
    written('the job claim', () =>
      this.#db
        .prepare('DELETE FROM job_runs WHERE job_id = ? AND host = ? AND pid = ?')
        .run(this.jobId, this.#owner.host, this.#owner.pid),
    );
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
    const mark = index + RESERVE_STEP;
    written('the reservation mark', () => this.#setMark.run(mark, new Date().toISOString(), this.jobId));
    this.#mark = mark;
  }

  /** Marks the job finished when every session has an outcome (call after the writer committed). */
  finish(complete: boolean): void {
    written('the job', () =>
      this.#db
        .prepare('UPDATE jobs SET finished = ?, updated_at = ? WHERE job_id = ?')
        .run(complete ? 1 : 0, new Date().toISOString(), this.jobId),
    );
  }

  /** Counts by outcome of what is recorded for this job. */
  counts(): Record<string, number> {
    const rows = this.#db
      .prepare('SELECT outcome, count(*) AS n FROM job_sessions WHERE job_id = ? GROUP BY outcome')
      .all(this.jobId) as { outcome: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.outcome, r.n]));
  }
}

/** Runs a write of the state file; a failure (a full disk, a lock held too long) is `CR_ERR_STATE_WRITE`. */
function written(what: string, write: () => unknown): void {
  try {
    write();
  } catch (err) {
    throw new CognigyResetError(
      'CR_ERR_STATE_WRITE',
      `state file write failed (${what}): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
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
