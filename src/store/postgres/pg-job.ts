/**
 * A named job in the PostgreSQL store: its settings, its ledger (written by the writer, with the audit
 * records) and its lease. As in the SQLite store (`sqlite/job-store.ts`): one run at a time, claimed in
 * one transaction that locks the job's row, so two runs opening the same job at once, from any process
 * or host, cannot both claim it. Leases are timed by the server's clock, the one clock every replica
 * shares; another run's lease holds until it expires and, on this host, while its process runs.
 */
import { randomUUID } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import { judgeClaim, jobLost, RESERVE_STEP, settingsMismatch } from '../job-lease.js';
import type { JobClaimHandle, JobLease, LedgerVerdict, OpenJobOptions } from '../port.js';
import { thisProcess } from '../../util/process-identity.js';

/** Runs a query on the store's pool, or fails as the store says (closed; a coded error). */
export type Run = <T>(doing: string, write: boolean, query: (pool: Pool) => Promise<T>) => Promise<T>;

interface HeldRow {
  owner: string;
  host: string;
  pid: number;
  process_start: string | null;
  started_at: Date;
  expires_at: Date;
  expired: boolean;
}

/** A lease's expiry, `$3` milliseconds from now by the server's clock. */
const DONE = Promise.resolve();

const LEASE_EXPIRY = "clock_timestamp() + $3::float8 * interval '1 millisecond'";

export class PgJob implements JobClaimHandle {
  readonly jobId: string;
  readonly resumed: boolean;
  readonly takenOver: JobLease | undefined;
  readonly #run: Run;
  readonly #owner: string;
  readonly #leaseMs: number;
  /** Released (or being released): a heartbeat still on its way then has no lease to keep. */
  #released = false;
  readonly #previousMark: number;
  /** The reservation mark known durable. */
  #mark: number;
  /** The mark being written, if one is. */
  #reserving: { mark: number; written: Promise<void> } | undefined;

  private constructor(
    run: Run,
    jobId: string,
    owner: string,
    leaseMs: number,
    opened: { resumed: boolean; mark: number; takenOver: JobLease | undefined },
  ) {
    this.#run = run;
    this.jobId = jobId;
    this.#owner = owner;
    this.#leaseMs = leaseMs;
    this.resumed = opened.resumed;
    this.takenOver = opened.takenOver;
    this.#previousMark = opened.mark;
    this.#mark = opened.mark;
  }

  static async open(run: Run, options: OpenJobOptions): Promise<PgJob> {
    const p = thisProcess();
    const owner = `${p.host}/${p.pid}/${p.start ?? '-'}/${randomUUID()}`;
    const leaseMs = Math.max(0, options.leaseMs);
    const text = JSON.stringify(options.settings);
    const { jobId } = options;
    const opened = await run('claiming a job in', true, async (pool) => {
      const client = await pool.connect();
      let failed = true;
      try {
        await client.query('BEGIN');
        const result = await claim(client, { jobId, owner, leaseMs, text, options });
        await client.query('COMMIT');
        failed = false;
        return result;
      } finally {
        if (failed) await client.query('ROLLBACK').catch(() => undefined);
        client.release();
      }
    });
    return new PgJob(run, jobId, owner, leaseMs, opened);
  }

  async heartbeat(): Promise<void> {
    const result = await this.#run('extending a job lease in', true, (pool) =>
      pool.query(`UPDATE job_runs SET expires_at = ${LEASE_EXPIRY} WHERE job_id = $1 AND owner = $2`, [
        this.jobId,
        this.#owner,
        this.#leaseMs,
      ]),
    );
    // A beat that lands after this run's own release found no lease of its own to extend: not lost.
    if (result.rowCount === 0 && !this.#released) throw jobLost(this.jobId);
  }

  async release(): Promise<void> {
    this.#released = true;
    await this.#run('releasing a job in', true, (pool) =>
      pool.query('DELETE FROM job_runs WHERE job_id = $1 AND owner = $2', [this.jobId, this.#owner]),
    );
  }

  async lookup(targets: readonly { sessionId: string; index: number }[]): Promise<LedgerVerdict[]> {
    // A job's first run has nothing recorded from before (a duplicate id is simply reset again).
    if (!this.resumed) return targets.map(() => 'new');
    const rows = await this.#run('reading a job ledger in', false, (pool) =>
      pool.query<{ session_id: string; done: boolean }>(
        'SELECT session_id, done FROM job_sessions WHERE job_id = $1 AND session_id = ANY($2::text[])',
        [this.jobId, targets.map((t) => t.sessionId)],
      ),
    );
    const done = new Map(rows.rows.map((r) => [r.session_id, r.done]));
    return targets.map((t): LedgerVerdict => {
      const row = done.get(t.sessionId);
      if (row === true) return 'done';
      // Below the old mark it may have been sent; a recorded failure was sent too, and may have landed.
      if (row !== undefined || t.index < this.#previousMark) return 'unsure';
      return 'new';
    });
  }

  reserve(index: number): Promise<void> {
    if (index < this.#mark) return DONE;
    // Calls come concurrently (one per session sent): one write covers every index below its mark, and
    // a call inside a mark still being written waits for that write.
    const pending = this.#reserving;
    if (pending !== undefined && index < pending.mark) return pending.written;
    const mark = index + RESERVE_STEP;
    const written = this.#run('writing a reservation mark to', true, (pool) =>
      pool.query(
        'UPDATE jobs SET reserved_upto = GREATEST(reserved_upto, $1), updated_at = clock_timestamp() WHERE job_id = $2',
        [mark, this.jobId],
      ),
    ).then(() => {
      this.#mark = Math.max(this.#mark, mark);
    });
    const reserving = { mark, written };
    this.#reserving = reserving;
    written.then(
      () => undefined,
      () => {
        // Not durable: the next call writes again.
        if (this.#reserving === reserving) this.#reserving = undefined;
      },
    );
    return written;
  }

  async finish(complete: boolean): Promise<void> {
    await this.#run('finishing a job in', true, (pool) =>
      pool.query('UPDATE jobs SET finished = $1, updated_at = clock_timestamp() WHERE job_id = $2', [
        complete,
        this.jobId,
      ]),
    );
  }

  async counts(): Promise<Record<string, number>> {
    const rows = await this.#run('counting a job in', false, (pool) =>
      pool.query<{ outcome: string; n: number }>(
        'SELECT outcome, count(*)::int AS n FROM job_sessions WHERE job_id = $1 GROUP BY outcome',
        [this.jobId],
      ),
    );
    return Object.fromEntries(rows.rows.map((r) => [r.outcome, r.n]));
  }
}

/** The claim, inside the caller's transaction. */
async function claim(
  client: PoolClient,
  c: { jobId: string; owner: string; leaseMs: number; text: string; options: OpenJobOptions },
): Promise<{ resumed: boolean; mark: number; takenOver: JobLease | undefined }> {
  // The row is made if missing, then locked: a second opener waits here until the first commits.
  await client.query(
    `INSERT INTO jobs (job_id, settings, created_at, updated_at, runs)
     VALUES ($1, $2, clock_timestamp(), clock_timestamp(), 0) ON CONFLICT (job_id) DO NOTHING`,
    [c.jobId, c.text],
  );
  const job = await client.query<{ settings: string; reserved_upto: string; runs: number }>(
    'SELECT settings, reserved_upto, runs FROM jobs WHERE job_id = $1 FOR UPDATE',
    [c.jobId],
  );
  const existing = job.rows[0]!;
  if (existing.settings !== c.text) throw settingsMismatch(c.jobId, existing.settings, c.options.settings);
  const held = await client.query<HeldRow>(
    `SELECT owner, host, pid, process_start, started_at, expires_at, expires_at <= clock_timestamp() AS expired
     FROM job_runs WHERE job_id = $1`,
    [c.jobId],
  );
  const row = held.rows[0];
  const takenOver =
    row === undefined
      ? undefined
      : judgeClaim(c.jobId, {
          owner: row.owner,
          host: row.host,
          pid: row.pid,
          processStart: row.process_start,
          startedAt: row.started_at.toISOString(),
          expiresAt: row.expires_at.toISOString(),
          expired: row.expired,
        });
  const p = thisProcess();
  await client.query(
    `INSERT INTO job_runs (job_id, owner, host, pid, process_start, started_at, expires_at)
     VALUES ($1, $2, $4, $5, $6, clock_timestamp(), ${LEASE_EXPIRY})
     ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, host = excluded.host, pid = excluded.pid,
       process_start = excluded.process_start, started_at = excluded.started_at, expires_at = excluded.expires_at`,
    [c.jobId, c.owner, c.leaseMs, p.host, p.pid, p.start],
  );
  await client.query('UPDATE jobs SET runs = runs + 1, updated_at = clock_timestamp() WHERE job_id = $1', [
    c.jobId,
  ]);
  return { resumed: existing.runs > 0, mark: Number(existing.reserved_upto), takenOver };
}
