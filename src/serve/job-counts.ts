/**
 * A job's counts as the store has them, whichever replica ran its chunks: each chunk's ledger holds its
 * sessions' latest outcomes (one row a session, so a chunk taken over or a job resumed is not counted
 * twice). A dry run keeps no ledger: its counts are read from the outcomes its chunks hold. A succeeded
 * job keeps its counts in its record, read there.
 */
import type { JobChunkSummary, LedgerCounts, Store } from '../store/index.js';
import { lastLines, ledgerIdOf, ledgerIdsOf } from './job-chunks.js';
import { FINISHED, LIVE, zeroCounts, type JobCounts, type ServiceJob } from './job-model.js';

const DUPLICATE = 'CR_ERR_RESET_DUPLICATE';

export interface LiveCounts {
  counts: JobCounts;
  errors: Record<string, number>;
}

/** How long the counts of a job that runs are served again before the store is read anew. */
const FRESH_MS = 1000;
/** Running jobs whose finished chunks' counts are kept; past this, they are read again. */
const KEPT_JOBS = 64;

/**
 * Reads a job's live counts and chunk summary: while the job is queued or running, at most once per
 * `FRESH_MS` however many clients poll or follow it (concurrent reads share one); a job that has ended is
 * read anew each time, so that its final counts are exact at once.
 */
export class LiveCountsReader {
  readonly #recent = new Map<string, { at: number; read: Promise<ChunkedCounts> }>();
  /**
   * The ledger counts of a running job's finished chunks, added up, and which they are: a finished chunk's
   * ledger does not change until the job is resumed (which starts it anew: `epoch`, its `startedAt`). A poll
   * then counts the rows of the chunks still running, and of those finished since, not of the whole job,
   * which grows with it.
   */
  readonly #finished = new Map<string, FinishedChunks>();

  constructor(readonly store: Store) {}

  /** The job as read, with its live counts and where its chunks stand. */
  async withCounts(job: ServiceJob): Promise<ServiceJob> {
    if (job.chunks === undefined) return job;
    const { summary, live } = await this.#read(job);
    job.chunkView = {
      total: summary.chunks,
      done: summary.done,
      leased: summary.leased,
      owners: summary.owners,
    };
    if (live !== undefined) {
      job.counts = live.counts;
      job.errors = live.errors;
    }
    return job;
  }

  #read(job: ServiceJob): Promise<ChunkedCounts> {
    const now = performance.now();
    for (const [id, entry] of this.#recent) if (now - entry.at > FRESH_MS) this.#recent.delete(id);
    const running = LIVE.has(job.state);
    const recent = running ? this.#recent.get(job.id) : undefined;
    if (recent !== undefined) return recent.read;
    if (!running) this.#finished.delete(job.id);
    const read = this.#readCounts(job, running);
    if (running) {
      this.#recent.set(job.id, { at: now, read });
      read.catch(() => this.#recent.delete(job.id));
    }
    return read;
  }

  async #readCounts(job: ServiceJob, running: boolean): Promise<ChunkedCounts> {
    const { store } = this;
    const summary = await store.jobChunkSummary(job.id);
    if (job.state === 'succeeded' && job.record.progress['counts'] !== undefined)
      return { summary, live: undefined };
    if (!running || job.fields.dryRun === true) return { summary, live: await liveCounts(store, job) };
    let kept = this.#finished.get(job.id);
    if (kept === undefined || kept.epoch !== job.startedAt) {
      if (this.#finished.size >= KEPT_JOBS) this.#finished.clear();
      kept = {
        epoch: job.startedAt,
        chunks: new Set(),
        counts: mergeLedgerCounts([]),
        adding: Promise.resolve(),
      };
      this.#finished.set(job.id, kept);
    }
    const done = new Set(summary.doneChunks);
    // One read at a time adds a job's newly finished chunks: two would count them twice.
    const finished = kept;
    const adding = finished.adding.then(async () => {
      const newly = [...done].filter((chunkNo) => !finished.chunks.has(chunkNo));
      if (newly.length === 0) return;
      const counts = await store.ledgerCounts(newly.map((chunkNo) => ledgerIdOf(job.id, chunkNo)));
      finished.counts = mergeLedgerCounts([finished.counts, counts]);
      for (const chunkNo of newly) finished.chunks.add(chunkNo);
    });
    finished.adding = adding.catch(() => undefined);
    await adding;
    const parts: LedgerCounts[] = [finished.counts];
    const open = ledgerIdsOf(job.id, job.chunks ?? 0).filter((_, chunkNo) => !done.has(chunkNo));
    if (open.length > 0) parts.push(await store.ledgerCounts(open));
    return { summary, live: countsOf(job, mergeLedgerCounts(parts)) };
  }
}

/** A running job's finished chunks and their ledger counts, added up. */
interface FinishedChunks {
  /** The job's `startedAt` when they were read: a resume starts anew. */
  epoch: string | null;
  chunks: Set<number>;
  counts: LedgerCounts;
  /** The last read that adds chunks, done or on its way. */
  adding: Promise<void>;
}

/** Ledger counts added up. */
function mergeLedgerCounts(parts: readonly LedgerCounts[]): LedgerCounts {
  const sum: LedgerCounts = { outcomes: {}, verified: 0, errors: {} };
  for (const part of parts) {
    sum.verified += part.verified;
    for (const [outcome, n] of Object.entries(part.outcomes))
      sum.outcomes[outcome] = (sum.outcomes[outcome] ?? 0) + n;
    for (const [code, n] of Object.entries(part.errors)) sum.errors[code] = (sum.errors[code] ?? 0) + n;
  }
  return sum;
}

interface ChunkedCounts {
  summary: JobChunkSummary;
  /** Undefined when the job's record holds its final counts. */
  live: LiveCounts | undefined;
}

/** Counts over the job's ledgers (or its outcomes, for a dry run). */
export async function liveCounts(store: Store, job: ServiceJob): Promise<LiveCounts> {
  const counts = zeroCounts(job.total);
  const errors: Record<string, number> = {};
  if (job.fields.dryRun === true) {
    // A session a later run listed again (a dry run resumed keeps no ledger: it runs each again) counts
    // once, as its last line, as the outcomes route lists it.
    for await (const text of store.jobChunkOutcomes(job.id))
      for (const { parsed: outcome } of lastLines(text)) {
        counts[outcome.outcome]++;
        if (outcome.verified) counts.verified++;
        if (outcome.error !== null) errors[outcome.error.code] = (errors[outcome.error.code] ?? 0) + 1;
      }
    return { counts, errors };
  }
  return countsOf(job, await store.ledgerCounts(ledgerIdsOf(job.id, job.chunks ?? 0)));
}

/** A job's counts from its ledgers' (a second listing of a session counted once the job has ended). */
function countsOf(job: ServiceJob, ledger: LedgerCounts): LiveCounts {
  const counts = zeroCounts(job.total);
  counts.reset = ledger.outcomes['reset'] ?? 0;
  counts.failed = ledger.outcomes['failed'] ?? 0;
  counts.skipped = ledger.outcomes['skipped'] ?? 0;
  counts.verified = ledger.verified;
  const errors = { ...ledger.errors };
  // A second listing of a session is settled without a ledger row: counted once the job has ended.
  if (job.duplicates > 0 && FINISHED.has(job.state) && job.state !== 'cancelled') {
    counts.skipped += job.duplicates;
    errors[DUPLICATE] = (errors[DUPLICATE] ?? 0) + job.duplicates;
  }
  return { counts, errors };
}
