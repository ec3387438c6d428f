/**
 * One batch of the PostgreSQL store's writer, committed on one connection: job-ledger rows, audit
 * records and outbox events in one transaction, whatever the batch's size.
 *
 * The audit chain is one per store, whichever process appends: each batch locks the one-row head
 * (`SELECT ... FOR UPDATE`), links its records after it, and moves it, so appends from every process
 * serialize on the head once per batch: three round trips. While this connection is the only one
 * appending, a batch links after the head this connection last left and moves it only if it is still
 * there, all in one statement (one round trip); if another process appended meanwhile, the statement
 * writes nothing and the batch is committed the locked way, as are the batches after it until one finds
 * the head where this connection left it (no other process appended in between). Outbox events are inserted under the head's
 * row lock too, so their ids are handed out in commit order: a deliverer that reads on after the last id
 * it posted misses none.
 */
import type { ClientBase } from 'pg';
import { linkAuditRecord } from '../../audit/record.js';
import { CognigyResetError } from '../../errors.js';
import { isoTime } from '../../util/iso-time.js';
import { type BatchMessage, batchOutcome, OUTCOME_VALUES } from '../batch.js';

/** Job-ledger rows, column by column (`unnest` makes rows of them). */
interface JobColumns {
  jobId: string[];
  sessionId: string[];
  index: number[];
  outcome: string[];
  verified: boolean[];
  done: boolean[];
  errorCode: (string | null)[];
  attempts: number[];
  latencyMs: number[];
  updatedAt: string[];
}

const JOB_UPSERT = `INSERT INTO job_sessions (job_id, session_id, input_index, outcome, verified, done, error_code, attempts, latency_ms, updated_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::boolean[], $6::boolean[], $7::text[], $8::int[], $9::float8[], $10::timestamptz[])
    ON CONFLICT (job_id, session_id) DO UPDATE SET
      input_index = excluded.input_index, outcome = excluded.outcome, verified = excluded.verified,
      done = excluded.done, error_code = excluded.error_code, attempts = excluded.attempts,
      latency_ms = excluded.latency_ms, updated_at = excluded.updated_at
    WHERE job_sessions.done = false`;

/**
 * Everything of a batch, in one statement: the head moves from `($16, $17)` to `($14, $15)` only if it
 * is still there, and the rows are written only if it moved (`moved`: 1, or 0 with nothing written).
 */
const BATCH = `WITH head AS (
    UPDATE audit_head SET seq = $14, hash = $15 WHERE id = 1 AND seq = $16 AND hash = $17 RETURNING 1
  ),
  jobs AS (
    INSERT INTO job_sessions (job_id, session_id, input_index, outcome, verified, done, error_code, attempts, latency_ms, updated_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::boolean[], $6::boolean[], $7::text[], $8::int[], $9::float8[], $10::timestamptz[])
      WHERE EXISTS (SELECT 1 FROM head)
    ON CONFLICT (job_id, session_id) DO UPDATE SET
      input_index = excluded.input_index, outcome = excluded.outcome, verified = excluded.verified,
      done = excluded.done, error_code = excluded.error_code, attempts = excluded.attempts,
      latency_ms = excluded.latency_ms, updated_at = excluded.updated_at
    WHERE job_sessions.done = false
  ),
  audit AS (
    INSERT INTO audit_records (seq, record, hash)
    SELECT * FROM unnest($11::bigint[], string_to_array($12, E'\\n'), string_to_array($13, E'\\n'))
      WHERE EXISTS (SELECT 1 FROM head)
  ),
  outbox AS (
    INSERT INTO outbox (idempotency_key, url_sha256, payload)
    SELECT k, u, p FROM unnest($18::text[], $19::text[], $20::text[]) WITH ORDINALITY AS e(k, u, p, n)
      WHERE EXISTS (SELECT 1 FROM head) ORDER BY n
  )
  SELECT count(*)::int AS moved FROM head`;

/**
 * The batch's ledger rows, one per job and session: a session twice in one batch becomes the row that
 * applying them one after the other would leave (a done row is never replaced), as one upsert cannot
 * touch a row twice.
 */
function jobColumns(batch: BatchMessage): JobColumns {
  const rows = new Map<string, unknown[]>();
  const o = batch.outcomes;
  for (let i = 0; i < o.length; i += OUTCOME_VALUES) {
    const b = batchOutcome(o, i);
    if (b.jobId === null) continue;
    const row = [
      b.jobId,
      b.sessionId,
      b.index,
      b.outcome,
      b.verified,
      b.outcome !== 'failed',
      b.errorCode,
      b.attempts,
      b.latencyMs,
      isoTime(b.at),
    ];
    const key = `${b.jobId}\u0000${b.sessionId}`;
    const before = rows.get(key);
    if (before === undefined || before[5] !== true) rows.set(key, row);
  }
  const column = <T>(c: number): T[] => [...rows.values()].map((row) => row[c] as T);
  return {
    jobId: column(0),
    sessionId: column(1),
    index: column(2),
    outcome: column(3),
    verified: column(4),
    done: column(5),
    errorCode: column(6),
    attempts: column(7),
    latencyMs: column(8),
    updatedAt: column(9),
  };
}

const jobValues = (j: JobColumns): unknown[] => [
  j.jobId,
  j.sessionId,
  j.index,
  j.outcome,
  j.verified,
  j.done,
  j.errorCode,
  j.attempts,
  j.latencyMs,
  j.updatedAt,
];

/** The batch's audit records linked after the head `(seq, hash)`: columns, and the new head. */
function linkRecords(
  batch: BatchMessage,
  head: { seq: number; hash: string },
): { seqs: number[]; records: string[]; hashes: string[]; head: { seq: number; hash: string } } {
  const seqs: number[] = [];
  const records: string[] = [];
  const hashes: string[] = [];
  let { seq, hash: prevHash } = head;
  const o = batch.outcomes;
  for (let i = 0; i < o.length; i += OUTCOME_VALUES) {
    const b = batchOutcome(o, i);
    if (b.audit === null) continue;
    const { record, hash } = linkAuditRecord(b.audit, b, { seq: ++seq, ts: isoTime(b.at), prevHash });
    seqs.push(seq);
    records.push(record);
    hashes.push(hash);
    prevHash = hash;
  }
  return { seqs, records, hashes, head: { seq, hash: prevHash } };
}

export class PgBatchCommitter {
  readonly #client: ClientBase;
  /** The head as this connection's last batch left it, while no other process is seen appending. */
  #head: { seq: number; hash: string } | undefined;
  /** The head this connection's last batch left, whichever way it was committed. */
  #left: { seq: number; hash: string } | undefined;

  constructor(client: ClientBase) {
    this.#client = client;
  }

  /**
   * Proves the connection can write before anything is sent (a read-only replica, a user without
   * rights): a row is written and rolled back.
   */
  async probe(): Promise<void> {
    const client = this.#client;
    await client.query('BEGIN');
    try {
      await client.query(
        "INSERT INTO job_runs (job_id, owner, host, pid, started_at, expires_at) VALUES ($1, '', '', 0, now(), now())",
        [`\u0001write-probe-${process.pid}-${Date.now()}`],
      );
    } finally {
      await client.query('ROLLBACK');
    }
  }

  /** Commits one batch. A batch with no audit record and no outbox event takes no lock: one statement. */
  async commit(batch: BatchMessage): Promise<void> {
    const client = this.#client;
    const jobs = jobColumns(batch);
    const audited = batch.outcomes.some((v, i) => i % OUTCOME_VALUES === 12 && v !== null);
    if (!audited && batch.outbox.length === 0) {
      if (jobs.jobId.length > 0)
        await client.query({ name: 'cr-jobs', text: JOB_UPSERT, values: jobValues(jobs) });
      return;
    }
    const cached = this.#head;
    this.#head = undefined;
    if (cached !== undefined) {
      const moved = await this.#write(batch, jobs, cached);
      if (moved !== undefined) {
        this.#head = this.#left = moved;
        return;
      }
    }
    // One round trip: the transaction starts and the head is locked (a simple query may hold two).
    const [, locked] = (await client.query(
      'BEGIN; SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE',
    )) as unknown as [unknown, { rows: { seq: string; hash: string }[] }];
    try {
      const row = locked.rows[0];
      if (row === undefined) {
        throw new CognigyResetError(
          'CR_ERR_STATE_CORRUPT',
          'the audit chain head is missing: the store was altered; run `cognigy-reset audit verify`',
        );
      }
      const head = { seq: Number(row.seq), hash: row.hash };
      const moved = await this.#write(batch, jobs, head);
      // Under the lock the head cannot have moved: a batch is never committed unwritten.
      if (moved === undefined) throw new Error('the audit chain head moved while locked');
      await client.query('COMMIT');
      // The one-statement way again only once no other process appended since this connection's last
      // batch: while another appends, a try would wait for its lock only to write nothing.
      const alone = this.#left !== undefined && this.#left.seq === head.seq && this.#left.hash === head.hash;
      if (alone) this.#head = moved;
      this.#left = moved;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /** The batch linked after `head` and written if the head is still there: the new head, or undefined. */
  async #write(
    batch: BatchMessage,
    jobs: JobColumns,
    head: { seq: number; hash: string },
  ): Promise<{ seq: number; hash: string } | undefined> {
    const audit = linkRecords(batch, head);
    const result = await this.#client.query<{ moved: number }>({
      name: 'cr-batch',
      text: BATCH,
      values: [
        ...jobValues(jobs),
        audit.seqs,
        // Records are JSON text and hashes hex: neither holds a raw newline, so one text each, split by
        // the server, carries them without the per-element quoting of an array literal.
        audit.records.join('\n'),
        audit.hashes.join('\n'),
        audit.head.seq,
        audit.head.hash,
        head.seq,
        head.hash,
        batch.outbox.map((e) => e.key),
        batch.outbox.map((e) => e.urlSha256),
        batch.outbox.map((e) => e.payload),
      ],
    });
    return result.rows[0]?.moved === 1 ? audit.head : undefined;
  }

  /** Deletes delivered outbox events (one statement: one transaction). */
  async remove(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#client.query({
      name: 'cr-ack',
      text: 'DELETE FROM outbox WHERE id = ANY($1::bigint[])',
      values: [ids],
    });
  }
}
