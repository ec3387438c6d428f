/**
 * A service job's chunks in the state file (table `job_chunks`, schema version 8): replicas claim a chunk
 * at a time with a lease, append its outcomes as they heartbeat, and finish it. Times are this process's
 * clock, as ISO text.
 */
import { prepared } from './statements.js';
import { CognigyResetError } from '../../errors.js';
import {
  type ClaimedChunkRow,
  claimedFromRow,
  errorText,
  ledgerCountsOf,
  OUTCOME_PAGE,
  summaryOf,
} from '../job-chunk-row.js';
import type {
  ChunkClaimOptions,
  ClaimedJobChunk,
  LedgerCounts,
  JobChunkInput,
  JobChunkSummary,
} from '../port.js';
import type { StateDb } from './state-file.js';

/** A write of the chunks; a failure is `CR_ERR_STATE_WRITE` with SQLite's code, never its text. */
function chunkWrite<T>(what: string, write: () => T): T {
  try {
    return write();
  } catch (err) {
    if (err instanceof CognigyResetError) throw err;
    const code = (err as { code?: unknown }).code;
    throw new CognigyResetError(
      'CR_ERR_STATE_WRITE',
      `state file write failed (${what}): ${typeof code === 'string' ? code : 'the write was refused'}`,
      { cause: err },
    );
  }
}

const expiry = (leaseMs: number): string => new Date(Date.now() + Math.max(0, leaseMs)).toISOString();

export function addJobChunks(db: StateDb, jobId: string, chunks: readonly JobChunkInput[]): void {
  chunkWrite('the chunks of a job', () => {
    const insert = prepared(
      db,
      `INSERT INTO job_chunks (job_id, chunk_no, first_index, count, targets) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (job_id, chunk_no) DO NOTHING`,
    );
    // One transaction: a replica never sees part of a job's chunks.
    db.transaction(() => {
      for (const c of chunks) insert.run(jobId, c.chunkNo, c.firstIndex, c.count, c.targets);
    }).immediate();
  });
}

/** The first free chunk, oldest job first: its key, or undefined. */
export function freeChunk(
  db: StateDb,
  { jobs, tenants }: Pick<ChunkClaimOptions, 'jobs' | 'tenants'>,
): { job_id: string; chunk_no: number } | undefined {
  return prepared(
    db,
    `SELECT c.job_id, c.chunk_no FROM job_chunks c JOIN service_jobs s ON s.id = c.job_id
       WHERE s.state IN ('queued', 'running') AND c.done = 0
         AND (c.owner IS NULL OR c.claimed_until <= ?)
         AND (? IS NULL OR c.job_id IN (SELECT value FROM json_each(?)))
         AND (? IS NULL OR s.tenant IN (SELECT value FROM json_each(?)))
       ORDER BY s.seq, c.chunk_no LIMIT 1`,
  ).get(
    new Date().toISOString(),
    jobs === undefined ? null : 1,
    JSON.stringify(jobs ?? []),
    tenants === undefined ? null : 1,
    JSON.stringify(tenants ?? []),
  ) as { job_id: string; chunk_no: number } | undefined;
}

/** Claims the first free chunk (the caller read first that one looks free: see `freeChunk`). */
export function claimJobChunk(db: StateDb, options: ChunkClaimOptions): ClaimedJobChunk | undefined {
  return chunkWrite('a chunk claim', () =>
    db
      .transaction(() => {
        // Again under the write lock: another process may have taken it meanwhile.
        const free = freeChunk(db, options);
        if (free === undefined) return undefined;
        // The owner whose claim expired becomes the previous owner; a free chunk has none.
        const row = prepared(
          db,
          `UPDATE job_chunks SET owner = ?, claimed_until = ?, claims = claims + 1, previous_owner = owner
             WHERE job_id = ? AND chunk_no = ?
             RETURNING job_id, chunk_no, first_index, count, targets, claims, previous_owner`,
        ).get(options.owner, expiry(options.leaseMs), free.job_id, free.chunk_no) as ClaimedChunkRow;
        return claimedFromRow({ ...row, outcomes: chunkOutcomes(db, free.job_id, free.chunk_no) });
      })
      .immediate(),
  );
}

export function heartbeatJobChunk(
  db: StateDb,
  jobId: string,
  chunkNo: number,
  options: { owner: string; leaseMs: number; outcomes: string },
): boolean {
  // A claim that expired but that nobody took is still this owner's.
  return chunkWrite('a chunk heartbeat', () =>
    db
      .transaction(() => {
        const held =
          prepared(
            db,
            `UPDATE job_chunks SET claimed_until = ?
               WHERE job_id = ? AND chunk_no = ? AND owner = ? AND done = 0`,
          ).run(expiry(options.leaseMs), jobId, chunkNo, options.owner).changes > 0;
        if (held) appendOutcomes(db, jobId, chunkNo, options.outcomes);
        return held;
      })
      .immediate(),
  );
}

/** Appends a chunk's outcome lines as a row of their own (nothing for none). */
function appendOutcomes(db: StateDb, jobId: string, chunkNo: number, outcomes: string): void {
  if (outcomes === '') return;
  prepared(db, 'INSERT INTO job_chunk_outcomes (job_id, chunk_no, outcomes) VALUES (?, ?, ?)').run(
    jobId,
    chunkNo,
    outcomes,
  );
}

/** A chunk's outcome lines, in the order they were written. */
function chunkOutcomes(db: StateDb, jobId: string, chunkNo: number): string {
  const rows = prepared(
    db,
    'SELECT outcomes FROM job_chunk_outcomes WHERE job_id = ? AND chunk_no = ? ORDER BY seq',
  ).all(jobId, chunkNo) as { outcomes: string }[];
  return rows.map((r) => r.outcomes).join('');
}

export function finishJobChunk(
  db: StateDb,
  jobId: string,
  chunkNo: number,
  options: { owner: string; outcomes: string; error: { code: string; message: string } | null },
): boolean {
  return chunkWrite('a finished chunk', () =>
    db
      .transaction(() => {
        const held =
          prepared(
            db,
            `UPDATE job_chunks SET done = 1, error = ?, owner = NULL, claimed_until = NULL
               WHERE job_id = ? AND chunk_no = ? AND owner = ? AND done = 0`,
          ).run(errorText(options.error), jobId, chunkNo, options.owner).changes > 0;
        if (held) appendOutcomes(db, jobId, chunkNo, options.outcomes);
        return held;
      })
      .immediate(),
  );
}

export function releaseJobChunks(db: StateDb, owner: string): void {
  // `claims` is kept: the next owner learns that the chunk was started.
  chunkWrite('the chunk claims', () =>
    prepared(db, 'UPDATE job_chunks SET owner = NULL, claimed_until = NULL WHERE owner = ?').run(owner),
  );
}

export function giveBackJobChunk(db: StateDb, jobId: string, chunkNo: number, owner: string): boolean {
  return chunkWrite(
    'a chunk given back',
    () =>
      prepared(
        db,
        `UPDATE job_chunks SET owner = NULL, claimed_until = NULL, claims = max(claims - 1, 0)
         WHERE job_id = ? AND chunk_no = ? AND owner = ? AND done = 0`,
      ).run(jobId, chunkNo, owner).changes > 0,
  );
}

export function reopenJobChunks(db: StateDb, jobId: string): void {
  chunkWrite('the chunks of a job', () =>
    prepared(
      db,
      'UPDATE job_chunks SET done = 0, error = NULL, owner = NULL, claimed_until = NULL WHERE job_id = ?',
    ).run(jobId),
  );
}

export function jobChunkSummary(db: StateDb, jobId: string): JobChunkSummary {
  const now = new Date().toISOString();
  const counts = prepared(
    db,
    `SELECT count(*) AS chunks, count(*) FILTER (WHERE done = 1) AS done,
         count(*) FILTER (WHERE done = 0 AND owner IS NOT NULL AND claimed_until > ?) AS leased
       FROM job_chunks WHERE job_id = ?`,
  ).get(now, jobId) as { chunks: number; done: number; leased: number };
  const owners = prepared(
    db,
    `SELECT DISTINCT owner FROM job_chunks
       WHERE job_id = ? AND done = 0 AND owner IS NOT NULL AND claimed_until > ?`,
  ).all(jobId, now) as { owner: string }[];
  const error = prepared(
    db,
    'SELECT error FROM job_chunks WHERE job_id = ? AND error IS NOT NULL ORDER BY chunk_no LIMIT 1',
  ).get(jobId) as { error: string } | undefined;
  const done = prepared(
    db,
    'SELECT chunk_no FROM job_chunks WHERE job_id = ? AND done = 1 ORDER BY chunk_no',
  ).all(jobId) as { chunk_no: number }[];
  return summaryOf(
    counts,
    owners.map((o) => o.owner),
    error?.error ?? null,
    done.map((d) => d.chunk_no),
  );
}

/** The chunks after `after` whose outcomes are not empty, a page of them, in order. */
export function outcomePage(
  db: StateDb,
  jobId: string,
  after: number,
): { chunk_no: number; outcomes: string }[] {
  const chunks = prepared(
    db,
    `SELECT DISTINCT chunk_no FROM job_chunk_outcomes WHERE job_id = ? AND chunk_no > ?
       ORDER BY chunk_no LIMIT ${OUTCOME_PAGE}`,
  ).all(jobId, after) as { chunk_no: number }[];
  return chunks.map(({ chunk_no }) => ({ chunk_no, outcomes: chunkOutcomes(db, jobId, chunk_no) }));
}

export function ledgerCounts(db: StateDb, jobIds: readonly string[]): LedgerCounts {
  const groups = prepared(
    db,
    `SELECT outcome, error_code, count(*) AS n, sum(verified) AS verified FROM job_sessions
       WHERE job_id IN (SELECT value FROM json_each(?)) GROUP BY outcome, error_code`,
  ).all(JSON.stringify(jobIds)) as {
    outcome: string;
    error_code: string | null;
    n: number;
    verified: number;
  }[];
  return ledgerCountsOf(groups);
}
