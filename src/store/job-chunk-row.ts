/**
 * A service job's chunk as both backends keep it (table `job_chunks`), and what both make of its rows: a
 * claimed chunk, a summary's failure, a ledger's counts. The SQL differs; what the rows mean does not.
 */
import type { ClaimedJobChunk, JobChunkSummary, LedgerCounts } from './port.js';

/** What a claim returns: the chunk after the claim, its `claims` counting this one. */
export interface ClaimedChunkRow {
  job_id: string;
  chunk_no: number;
  /** PostgreSQL returns a `bigint` as text. */
  first_index: number | string;
  count: number;
  targets: string;
  claims: number;
  previous_owner: string | null;
  outcomes: string;
}

export const claimedFromRow = (r: ClaimedChunkRow): ClaimedJobChunk => ({
  jobId: r.job_id,
  chunkNo: r.chunk_no,
  firstIndex: Number(r.first_index),
  count: r.count,
  targets: r.targets,
  claims: r.claims - 1,
  previousOwner: r.previous_owner,
  outcomes: r.outcomes,
});

/** Chunks read at a time when their outcomes are streamed: each may hold a long text. */
export const OUTCOME_PAGE = 4;

/** How a chunk's failure is stored: JSON text, or null. */
export const errorText = (error: { code: string; message: string } | null): string | null =>
  error === null ? null : JSON.stringify({ code: error.code, message: error.message });

/** A stored failure as the summary gives it; text that is not one reads as an unknown failure. */
export function errorFromText(text: string | null): JobChunkSummary['error'] {
  if (text === null) return null;
  try {
    const value = JSON.parse(text) as { code?: unknown; message?: unknown };
    if (typeof value.code === 'string' && typeof value.message === 'string')
      return { code: value.code, message: value.message };
  } catch {
    // Not JSON: the row was written by something else.
  }
  return { code: 'CR_ERR_STATE_CORRUPT', message: 'the failure recorded for a chunk is not readable' };
}

/** A summary from the counts, the owners of live claims and the first failure. */
export const summaryOf = (
  counts: { chunks: number; done: number; leased: number },
  owners: readonly string[],
  error: string | null,
  doneChunks: readonly number[],
): JobChunkSummary => ({
  chunks: counts.chunks,
  done: counts.done,
  doneChunks: [...doneChunks].sort((a, b) => a - b),
  leased: counts.leased,
  // Sorted here, not by SQL: PostgreSQL's collation would order them another way than SQLite's.
  owners: [...owners].sort(),
  error: errorFromText(error),
});

/** Ledger rows grouped by outcome and error code, with how many of each group are verified. */
export function ledgerCountsOf(
  groups: readonly { outcome: string; error_code: string | null; n: number; verified: number }[],
): LedgerCounts {
  const counts: LedgerCounts = { outcomes: {}, verified: 0, errors: {} };
  for (const g of groups) {
    counts.outcomes[g.outcome] = (counts.outcomes[g.outcome] ?? 0) + g.n;
    counts.verified += g.verified;
    if (g.error_code !== null) counts.errors[g.error_code] = (counts.errors[g.error_code] ?? 0) + g.n;
  }
  return counts;
}
