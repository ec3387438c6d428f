/**
 * A service job's chunks on PostgreSQL (table `job_chunks`, migration 3): replicas claim a chunk at a time
 * with a lease on the server's clock, append its outcomes as they heartbeat, and finish it. A claim picks
 * and locks in one statement, skipping rows another claim is locking, so replicas claiming together never
 * wait on one another and never get the same chunk.
 */
import type { Pool } from 'pg';
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
import type { Run } from './pg-job.js';

/** Chunks sent in one statement: a bound on its rows and on the bytes of their targets. */
const INSERT_ROWS = 500;
const INSERT_BYTES = 4 * 1024 * 1024;

function* batches(chunks: readonly JobChunkInput[]): Generator<JobChunkInput[]> {
  let batch: JobChunkInput[] = [];
  let bytes = 0;
  for (const chunk of chunks) {
    if (batch.length > 0 && (batch.length >= INSERT_ROWS || bytes + chunk.targets.length > INSERT_BYTES)) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(chunk);
    bytes += chunk.targets.length;
  }
  if (batch.length > 0) yield batch;
}

export async function addJobChunks(run: Run, jobId: string, chunks: readonly JobChunkInput[]): Promise<void> {
  await run('writing the chunks of a job to', true, async (pool: Pool) => {
    const client = await pool.connect();
    let failed = true;
    try {
      // One transaction: a replica never sees part of a job's chunks.
      await client.query('BEGIN');
      for (const batch of batches(chunks)) {
        await client.query(
          `INSERT INTO job_chunks (job_id, chunk_no, first_index, count, targets)
           SELECT $1::text, * FROM unnest($2::int[], $3::bigint[], $4::int[], $5::text[])
           ON CONFLICT (job_id, chunk_no) DO NOTHING`,
          [
            jobId,
            batch.map((c) => c.chunkNo),
            batch.map((c) => c.firstIndex),
            batch.map((c) => c.count),
            batch.map((c) => c.targets),
          ],
        );
      }
      await client.query('COMMIT');
      failed = false;
    } finally {
      let broken = false;
      if (failed) await client.query('ROLLBACK').catch(() => (broken = true));
      client.release(broken);
    }
  });
}

export async function claimJobChunk(
  run: Run,
  options: ChunkClaimOptions,
): Promise<ClaimedJobChunk | undefined> {
  // `previous_owner = c.owner` reads the row before the update: the owner whose claim expired, or null.
  // Only the chunk is locked, not its job: a job's update does not hide its chunks from a claim.
  const result = await run('claiming a job chunk in', true, (pool) =>
    pool.query<ClaimedChunkRow>(
      `WITH picked AS (
         SELECT c.job_id, c.chunk_no FROM job_chunks c JOIN service_jobs s ON s.id = c.job_id
         WHERE s.state IN ('queued', 'running') AND NOT c.done
           AND (c.owner IS NULL OR c.claimed_until <= clock_timestamp())
           AND ($3::text[] IS NULL OR c.job_id = ANY($3))
           AND ($4::text[] IS NULL OR s.tenant = ANY($4))
         ORDER BY s.seq, c.chunk_no LIMIT 1
         FOR UPDATE OF c SKIP LOCKED)
       UPDATE job_chunks c SET owner = $1, claimed_until = clock_timestamp() + $2::float8 * interval '1 millisecond', claims = c.claims + 1,
         previous_owner = c.owner
       FROM picked WHERE c.job_id = picked.job_id AND c.chunk_no = picked.chunk_no
       RETURNING c.job_id, c.chunk_no, c.first_index, c.count, c.targets, c.claims, c.previous_owner,
         (SELECT coalesce(string_agg(o.outcomes, '' ORDER BY o.seq), '') FROM job_chunk_outcomes o
          WHERE o.job_id = c.job_id AND o.chunk_no = c.chunk_no) AS outcomes`,
      [
        options.owner,
        Math.max(0, options.leaseMs),
        options.jobs === undefined ? null : [...options.jobs],
        options.tenants === undefined ? null : [...options.tenants],
      ],
    ),
  );
  const row = result.rows[0];
  return row === undefined ? undefined : claimedFromRow(row);
}

/** Appends `$5`, a chunk's new outcome lines, as a row of their own when `held` names the chunk. */
const APPEND_OUTCOMES = `INSERT INTO job_chunk_outcomes (job_id, chunk_no, outcomes)
  SELECT job_id, chunk_no, $5 FROM held WHERE $5 <> '' RETURNING 1`;

export async function heartbeatJobChunk(
  run: Run,
  jobId: string,
  chunkNo: number,
  options: { owner: string; leaseMs: number; outcomes: string },
): Promise<boolean> {
  // A claim that expired but that nobody took is still this owner's.
  // One statement: the lines are appended as a row of their own only when the claim held.
  const result = await run('extending a chunk claim in', true, (pool) =>
    pool.query<{ held: number }>(
      `WITH held AS (
         UPDATE job_chunks SET claimed_until = clock_timestamp() + $4::float8 * interval '1 millisecond'
         WHERE job_id = $1 AND chunk_no = $2 AND owner = $3 AND NOT done RETURNING job_id, chunk_no),
       added AS (${APPEND_OUTCOMES})
       SELECT count(*)::int AS held FROM held`,
      [jobId, chunkNo, options.owner, Math.max(0, options.leaseMs), options.outcomes],
    ),
  );
  return result.rows[0]!.held > 0;
}

export async function finishJobChunk(
  run: Run,
  jobId: string,
  chunkNo: number,
  options: { owner: string; outcomes: string; error: { code: string; message: string } | null },
): Promise<boolean> {
  const result = await run('finishing a job chunk in', true, (pool) =>
    pool.query<{ held: number }>(
      `WITH held AS (
         UPDATE job_chunks SET done = true, error = $4, owner = NULL, claimed_until = NULL
         WHERE job_id = $1 AND chunk_no = $2 AND owner = $3 AND NOT done RETURNING job_id, chunk_no),
       added AS (${APPEND_OUTCOMES})
       SELECT count(*)::int AS held FROM held`,
      [jobId, chunkNo, options.owner, errorText(options.error), options.outcomes],
    ),
  );
  return result.rows[0]!.held > 0;
}

export async function releaseJobChunks(run: Run, owner: string): Promise<void> {
  // `claims` is kept: the next owner learns that the chunk was started.
  await run('releasing chunk claims in', true, (pool) =>
    pool.query('UPDATE job_chunks SET owner = NULL, claimed_until = NULL WHERE owner = $1', [owner]),
  );
}

export async function giveBackJobChunk(
  run: Run,
  jobId: string,
  chunkNo: number,
  owner: string,
): Promise<boolean> {
  const result = await run('giving a chunk back in', true, (pool) =>
    pool.query(
      `UPDATE job_chunks SET owner = NULL, claimed_until = NULL, claims = GREATEST(claims - 1, 0)
       WHERE job_id = $1 AND chunk_no = $2 AND owner = $3 AND NOT done`,
      [jobId, chunkNo, owner],
    ),
  );
  return (result.rowCount ?? 0) > 0;
}

export async function reopenJobChunks(run: Run, jobId: string): Promise<void> {
  await run('reopening the chunks of a job in', true, (pool) =>
    pool.query(
      'UPDATE job_chunks SET done = false, error = NULL, owner = NULL, claimed_until = NULL WHERE job_id = $1',
      [jobId],
    ),
  );
}

export async function jobChunkSummary(run: Run, jobId: string): Promise<JobChunkSummary> {
  // One statement, one snapshot and one clock reading for the counts, the owners and the failure.
  const result = await run('reading the chunks of a job in', false, (pool) =>
    pool.query<{
      chunks: number;
      done: number;
      leased: number;
      owners: string[] | null;
      error: string | null;
      done_chunks: number[] | null;
    }>(
      `WITH c AS (
         SELECT *, NOT done AND owner IS NOT NULL AND claimed_until > clock_timestamp() AS live
         FROM job_chunks WHERE job_id = $1)
       SELECT count(*)::int AS chunks, count(*) FILTER (WHERE done)::int AS done,
         count(*) FILTER (WHERE live)::int AS leased,
         array_agg(DISTINCT owner) FILTER (WHERE live) AS owners,
         array_agg(chunk_no) FILTER (WHERE done) AS done_chunks,
         (SELECT error FROM c WHERE error IS NOT NULL ORDER BY chunk_no LIMIT 1) AS error
       FROM c`,
      [jobId],
    ),
  );
  const row = result.rows[0]!;
  return summaryOf(row, row.owners ?? [], row.error, row.done_chunks ?? []);
}

/** The outcomes, a few chunks a query: a job's outcomes are never all in memory. */
export async function* jobChunkOutcomes(run: Run, jobId: string): AsyncGenerator<string> {
  for (let after: number | null = null; ;) {
    const page = await run('reading the outcomes of a job in', false, (pool) =>
      pool.query<{ chunk_no: number; outcomes: string }>(
        `SELECT chunk_no, string_agg(outcomes, '' ORDER BY seq) AS outcomes FROM job_chunk_outcomes
         WHERE job_id = $1 AND ($2::int IS NULL OR chunk_no > $2)
         GROUP BY chunk_no ORDER BY chunk_no LIMIT ${OUTCOME_PAGE}`,
        [jobId, after],
      ),
    );
    for (const row of page.rows) yield row.outcomes;
    if (page.rows.length < OUTCOME_PAGE) return;
    after = page.rows.at(-1)!.chunk_no;
  }
}

export async function ledgerCounts(run: Run, jobIds: readonly string[]): Promise<LedgerCounts> {
  const result = await run('counting the ledgers of', false, (pool) =>
    pool.query<{ outcome: string; error_code: string | null; n: number; verified: number }>(
      `SELECT outcome, error_code, count(*)::int AS n, count(*) FILTER (WHERE verified)::int AS verified
       FROM job_sessions WHERE job_id = ANY($1::text[]) GROUP BY outcome, error_code`,
      [[...jobIds]],
    ),
  );
  return ledgerCountsOf(result.rows);
}
