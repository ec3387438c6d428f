/**
 * A named bulk job in the state file: its settings, and each session's last outcome (written through the
 * state file's writer, in the same transaction as the session's audit record).
 *
 * Crash safety: before input item `i` is sent, `reserve(i)` makes durable that items up to a mark (in
 * steps of RESERVE_STEP) may have been sent. On resume, a session below the old mark that has no
 * recorded outcome is "unsure": its state is checked before anything is sent, so a session that was reset
 * just before a SIGKILL is found reset and not reset a second time.
 *
 * One run at a time: opening a job claims a lease on it (table `job_runs`: owner, host, pid, process
 * start, expiry). Another run's lease holds while it has not expired and, on this host, while its process
 * still runs: a run on this host whose process is gone is taken over at once, any other once its lease
 * expired. A claim written before leases (no expiry) holds while its process runs on this host; one from
 * another host is taken over. `heartbeat()` extends the lease; `release()` gives it up.
 */
import { prepared } from './statements.js';
import { randomUUID } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { CognigyResetError } from '../../errors.js';
import { judgeClaim, jobLost, RESERVE_STEP, settingsMismatch } from '../job-lease.js';
import type { JobClaimHandle, JobLease, LedgerVerdict, OpenJobOptions } from '../port.js';
import type { StateDb } from './state-file.js';
import { type ProcessIdentity, thisProcess } from '../../util/process-identity.js';
const DONE = Promise.resolve();

interface HeldRow {
  owner: string | null;
  host: string;
  pid: number;
  process_start: string | null;
  started_at: string;
  expires_at: string | null;
}

/** Runs a write of the state file without stopping the thread while another connection holds the lock. */
export type YieldingWrite = <T>(write: () => T) => Promise<T>;

export class SqliteJob implements JobClaimHandle {
  readonly jobId: string;
  readonly #db: StateDb;
  readonly #write: YieldingWrite;
  readonly #leaseMs: number;
  #resumed = false;
  #takenOver: JobLease | undefined;
  /** The reservation mark left by earlier runs. */
  #previousMark = 0;
  #mark = 0;
  /** Released (or being released): a heartbeat still on its way then has no lease to keep. */
  #released = false;
  readonly #lookup: Statement<[string, string], { session_id: string; done: number }>;
  readonly #setMark: Statement;
  readonly #process: ProcessIdentity = thisProcess();
  /** This claim's owner id: the process, and this claim among others of the same process. */
  readonly #owner: string;

  /** Opens the job `options.jobId`, claiming its lease; see the class for what refuses it. */
  static async open(db: StateDb, options: OpenJobOptions, write: YieldingWrite): Promise<SqliteJob> {
    const job = new SqliteJob(db, options, write);
    await job.#open(options.settings);
    return job;
  }

  private constructor(db: StateDb, options: OpenJobOptions, write: YieldingWrite) {
    this.#db = db;
    this.#write = write;
    this.jobId = options.jobId;
    this.#leaseMs = Math.max(0, options.leaseMs);
    this.#owner = `${this.#process.host}/${this.#process.pid}/${this.#process.start ?? '-'}/${randomUUID()}`;
    this.#lookup = db.prepare(
      'SELECT session_id, done FROM job_sessions WHERE job_id = ? AND session_id IN (SELECT value FROM json_each(?))',
    );
    this.#setMark = db.prepare('UPDATE jobs SET reserved_upto = ?, updated_at = ? WHERE job_id = ?');
  }

  get resumed(): boolean {
    return this.#resumed;
  }

  get takenOver(): JobLease | undefined {
    return this.#takenOver;
  }

  async #open(settings: Record<string, unknown>): Promise<void> {
    const db = this.#db;
    const text = JSON.stringify(settings);
    // One write transaction: two runs starting at the same moment cannot both claim the job.
    const opened = await this.#write(() =>
      written('the job claim', () =>
        db
          .transaction(() => {
            const now = new Date();
            const existing = prepared(db, 'SELECT settings, reserved_upto FROM jobs WHERE job_id = ?').get(
              this.jobId,
            ) as { settings: string; reserved_upto: number } | undefined;
            if (existing !== undefined && existing.settings !== text)
              throw settingsMismatch(this.jobId, existing.settings, settings);
            const takenOver = this.#claim(now);
            const iso = now.toISOString();
            if (existing === undefined) {
              prepared(
                db,
                'INSERT INTO jobs (job_id, settings, created_at, updated_at, runs) VALUES (?, ?, ?, ?, 1)',
              ).run(this.jobId, text, iso, iso);
            } else {
              prepared(db, 'UPDATE jobs SET runs = runs + 1, updated_at = ? WHERE job_id = ?').run(
                iso,
                this.jobId,
              );
            }
            return { existing, takenOver };
          })
          .immediate(),
      ),
    );
    this.#takenOver = opened.takenOver;
    this.#resumed = opened.existing !== undefined;
    this.#previousMark = opened.existing?.reserved_upto ?? 0;
    this.#mark = this.#previousMark;
  }

  /**
   * Claims the job's lease for this run; refuses it while another run's lease holds. Returns the lease
   * taken over from a run whose end could not be seen (another host, or an expired lease of a process
   * that still runs); a run on this host whose process is gone is taken over without a word.
   */
  #claim(now: Date): JobLease | undefined {
    const held = prepared(
      this.#db,
      'SELECT owner, host, pid, process_start, started_at, expires_at FROM job_runs WHERE job_id = ?',
    ).get(this.jobId) as HeldRow | undefined;
    const takenOver =
      held === undefined || this.#isMine(held)
        ? undefined
        : judgeClaim(this.jobId, {
            owner: held.owner,
            host: held.host,
            pid: held.pid,
            processStart: held.process_start,
            startedAt: held.started_at,
            expiresAt: held.expires_at,
            expired: held.expires_at !== null && held.expires_at <= now.toISOString(),
          });
    const p = this.#process;
    prepared(
      this.#db,
      `INSERT INTO job_runs (job_id, host, pid, process_start, started_at, owner, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (job_id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
           process_start = excluded.process_start, started_at = excluded.started_at,
           owner = excluded.owner, expires_at = excluded.expires_at`,
    ).run(this.jobId, p.host, p.pid, p.start, now.toISOString(), this.#owner, this.#expiry(now));
    return takenOver;
  }

  /** A claim of this process written before leases (no owner id) is this process's own. */
  #isMine(held: HeldRow): boolean {
    if (held.owner !== null) return held.owner === this.#owner;
    return held.pid === this.#process.pid && held.host === this.#process.host;
  }

  #expiry(now: Date): string {
    return new Date(now.getTime() + this.#leaseMs).toISOString();
  }

  async heartbeat(): Promise<void> {
    const { changes } = await this.#write(() =>
      written('the job lease', () =>
        prepared(this.#db, 'UPDATE job_runs SET expires_at = ? WHERE job_id = ? AND owner = ?').run(
          this.#expiry(new Date()),
          this.jobId,
          this.#owner,
        ),
      ),
    );
    // A beat that lands after this run's own release found no lease of its own to extend: not lost.
    if (changes === 0 && !this.#released) throw jobLost(this.jobId);
  }

  async release(): Promise<void> {
    this.#released = true;
    await this.#write(() =>
      written('the job claim', () =>
        prepared(this.#db, 'DELETE FROM job_runs WHERE job_id = ? AND owner = ?').run(
          this.jobId,
          this.#owner,
        ),
      ),
    );
  }

  lookup(targets: readonly { sessionId: string; index: number }[]): Promise<LedgerVerdict[]> {
    // A job's first run has nothing recorded from before (a duplicate id is simply reset again).
    if (!this.resumed) return Promise.resolve(targets.map(() => 'new'));
    const rows = this.#lookup.all(this.jobId, JSON.stringify(targets.map((t) => t.sessionId)));
    const done = new Map<string, number>();
    for (const row of rows) done.set(row.session_id, row.done);
    return Promise.resolve(
      targets.map((t): LedgerVerdict => {
        const row = done.get(t.sessionId);
        if (row === 1) return 'done';
        // Below the old mark it may have been sent; a recorded failure was sent too, and may have landed.
        if (row !== undefined || t.index < this.#previousMark) return 'unsure';
        return 'new';
      }),
    );
  }

  reserve(index: number): Promise<void> {
    if (index < this.#mark) return DONE;
    const mark = index + RESERVE_STEP;
    try {
      written('the reservation mark', () => this.#setMark.run(mark, new Date().toISOString(), this.jobId));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.#mark = mark;
    return DONE;
  }

  async finish(complete: boolean): Promise<void> {
    await this.#write(() =>
      written('the job', () =>
        prepared(this.#db, 'UPDATE jobs SET finished = ?, updated_at = ? WHERE job_id = ?').run(
          complete ? 1 : 0,
          new Date().toISOString(),
          this.jobId,
        ),
      ),
    );
  }

  counts(): Promise<Record<string, number>> {
    const rows = prepared(
      this.#db,
      'SELECT outcome, count(*) AS n FROM job_sessions WHERE job_id = ? GROUP BY outcome',
    ).all(this.jobId) as { outcome: string; n: number }[];
    return Promise.resolve(Object.fromEntries(rows.map((r) => [r.outcome, r.n])));
  }
}

/** Runs a write of the state file; a failure (a full disk, a lock held too long) is `CR_ERR_STATE_WRITE`. */
export function written<T>(what: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    if (err instanceof CognigyResetError) throw err;
    throw new CognigyResetError(
      'CR_ERR_STATE_WRITE',
      `state file write failed (${what}): ${(err as Error).message}`,
      { cause: err },
    );
  }
}
