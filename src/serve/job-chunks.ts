/**
 * A service job's sessions as chunks in the store: written once when the job is made, claimed by the
 * replicas, each run as a ledger job of its own (`<jobId>.c<chunkNo>`). A chunk is JSON Lines of the
 * target objects the service's row parser produced, one a line; a session the input listed before carries
 * `duplicateOf` (the input index it was first listed at), so that it is skipped as a duplicate whichever
 * chunk holds the first listing.
 */
import type { BulkTarget } from '../reset/bulk.js';
import type { JobTargets } from '../runner/types.js';
import { createSeenIds, type ClaimedJobChunk, type JobChunkInput, type Store } from '../store/index.js';
import type { TargetField } from '../transports/transport.js';
import { fileSource } from './targets.js';

/** Sessions a chunk holds, at least (a job's last chunk holds what is left). */
export const CHUNK_SIZE = 1000;
/** Sessions a chunk holds, at most. */
const CHUNK_SIZE_MAX = 5000;
/** Chunks a large job is cut into, about: each costs its claim, its ledger and their writes. */
const CHUNKS_PER_JOB = 20;

/**
 * The size of a job's chunks: 1,000 sessions, or a twentieth of a larger job (5,000 at most), so that a
 * job's chunks stay enough for replicas to share it while each chunk's own writes weigh less.
 */
export const chunkSizeFor = (total: number): number =>
  Math.min(CHUNK_SIZE_MAX, Math.max(CHUNK_SIZE, Math.ceil(total / CHUNKS_PER_JOB)));
/** Chunks written to the store in one call when a job is made. */
const WRITE_BATCH = 32;

const FIELDS = ['userId', 'flowReferenceId', 'entrypoint'] as const;

/** The ledger job a chunk runs as: its own, so that a chunk taken over resumes as a job does. */
export const ledgerIdOf = (jobId: string, chunkNo: number): string => `${jobId}.c${chunkNo}`;

/** The ledger ids of a job's chunks. */
export const ledgerIdsOf = (jobId: string, chunks: number): string[] =>
  Array.from({ length: chunks }, (_, n) => ledgerIdOf(jobId, n));

/**
 * Reads a job's spooled sessions (checked already) and writes them to the store as chunks, in input
 * order. Resolves with the number of chunks and of sessions listed more than once.
 */
export async function writeChunks(
  store: Store,
  jobId: string,
  spool: { path: string; total: number; required: readonly TargetField[] },
  size = chunkSizeFor(spool.total),
): Promise<{ chunks: number; duplicates: number }> {
  const seen = createSeenIds();
  const pending: JobChunkInput[] = [];
  let lines: string[] = [];
  let firstIndex = 0;
  let chunkNo = 0;
  let duplicates = 0;
  const cut = (): void => {
    if (lines.length === 0) return;
    pending.push({ chunkNo, firstIndex, count: lines.length, targets: lines.join('') });
    chunkNo++;
    firstIndex += lines.length;
    lines = [];
  };
  const flush = async (): Promise<void> => {
    if (pending.length > 0) await store.addJobChunks(jobId, pending.splice(0));
  };
  try {
    const source = fileSource(spool.path, spool.total, spool.required);
    for await (const batch of source.batches(new AbortController().signal)) {
      for (const target of batch) {
        const line: Record<string, unknown> = { sessionId: target.sessionId };
        for (const field of FIELDS) if (target[field] !== undefined) line[field] = target[field];
        const first = seen.firstIndex(target.sessionId, target.index);
        if (first !== undefined) {
          line['duplicateOf'] = first;
          duplicates++;
        }
        lines.push(`${JSON.stringify(line)}\n`);
        if (lines.length === size) cut();
      }
      if (pending.length >= WRITE_BATCH) await flush();
    }
    cut();
    await flush();
  } finally {
    seen.close();
  }
  return { chunks: chunkNo, duplicates };
}

/**
 * A claimed chunk's sessions for `startJob`, indexed by their place in the job's whole input (what an
 * outcome's `index` and a duplicate's message name), and where each repeat was first listed (known from
 * the chunk itself).
 */
export function chunkTargets(chunk: ClaimedJobChunk): {
  targets: JobTargets;
  /** Input index → the index the same session was first listed at, for each repeat. */
  duplicateOf: ReadonlyMap<number, number>;
} {
  const targets: BulkTarget[] = [];
  const duplicateOf = new Map<number, number>();
  let index = chunk.firstIndex;
  for (const text of chunk.targets.split('\n')) {
    if (text === '') continue;
    const row = JSON.parse(text) as Record<string, unknown>;
    const target: BulkTarget = { sessionId: String(row['sessionId']), index };
    for (const field of FIELDS) if (typeof row[field] === 'string') target[field] = row[field];
    if (typeof row['duplicateOf'] === 'number') duplicateOf.set(index, row['duplicateOf']);
    targets.push(target);
    index++;
  }
  return {
    targets: {
      total: targets.length,
      batches: function* () {
        for (let i = 0; i < targets.length; i += 256) yield targets.slice(i, i + 256);
      },
    },
    duplicateOf,
  };
}

/** What an outcome line says that its readers use. */
export interface OutcomeLine {
  sessionId: string;
  outcome: 'reset' | 'failed' | 'skipped';
  verified: boolean;
  error: { code: string } | null;
}

/** What tells a chunk's outcome lines apart: the session, and whether the line is a repeat's. */
export function lineKey(line: Pick<OutcomeLine, 'sessionId' | 'error'>): string {
  return line.error?.code === 'CR_ERR_RESET_DUPLICATE' ? `${line.sessionId}\u0000dup` : line.sessionId;
}

/**
 * A chunk's outcome lines, each session's last (a later run tried it again: a failed session after a
 * resume, every session of a dry run resumed) in the place of its first, with what each says.
 */
export function lastLines(text: string): Iterable<{ line: string; parsed: OutcomeLine }> {
  const last = new Map<string, { line: string; parsed: OutcomeLine }>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const parsed = JSON.parse(line) as OutcomeLine;
    const key = lineKey(parsed);
    // A later run that found the session reset (skipped, verified) says only that: the line of the reset
    // it found stands.
    const found = parsed.outcome === 'skipped' && parsed.verified && parsed.error === null;
    if (found && last.get(key)?.parsed.outcome === 'reset') continue;
    last.set(key, { line, parsed });
  }
  return last.values();
}

/** The line keys of outcome lines (JSON Lines); a line that is not readable lists nothing. */
export function lineKeys(text: string): ReadonlySet<string> {
  const keys = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      keys.add(lineKey(JSON.parse(line) as OutcomeLine));
    } catch {
      // Not a line this service wrote: it hides nothing.
    }
  }
  return keys;
}
