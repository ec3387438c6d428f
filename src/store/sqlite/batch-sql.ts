/** The batched writes of the state file, shared by the main thread and the writer thread. */
import type { Database, Statement } from 'better-sqlite3';
import { GENESIS_HASH } from '../../audit/chain.js';
import { type AuditContext, linkAuditRecord } from '../../audit/record.js';
import { CognigyResetError } from '../../errors.js';
import { type BatchMessage, OUTCOME_VALUES } from '../batch.js';
import { isoTime } from '../../util/iso-time.js';

export { type BatchMessage, OUTCOME_VALUES, pushOutcome } from '../batch.js';

/** One multi-row upsert binds this many rows: far fewer statement runs per batch. */
export const ROWS_PER_STATEMENT = 64;
/** Values bound per job-session row, in `jobSessionSql` column order. */
export const JOB_SESSION_COLUMNS = 10;
/** Values bound per audit row: seq, the canonical record text, its hash. */
const AUDIT_COLUMNS = 3;

export function jobSessionSql(rows: number): string {
  const tuple = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  return `INSERT INTO job_sessions (job_id, session_id, input_index, outcome, verified, done, error_code, attempts, latency_ms, updated_at)
    VALUES ${Array.from({ length: rows }, () => tuple).join(', ')}
    ON CONFLICT (job_id, session_id) DO UPDATE SET
      input_index = excluded.input_index, outcome = excluded.outcome, verified = excluded.verified,
      done = excluded.done, error_code = excluded.error_code, attempts = excluded.attempts,
      latency_ms = excluded.latency_ms, updated_at = excluded.updated_at
    WHERE job_sessions.done = 0`;
}

/**
 * Deletes delivered outbox events in one transaction: the writer's, after each batch, and a deliverer's
 * on its own connection alike.
 */
export function outboxRemover(db: Database): (ids: readonly number[]) => void {
  const remove = db.prepare('DELETE FROM outbox WHERE id = ?');
  const removeAll = db.transaction((ids: readonly number[]) => {
    for (const id of ids) remove.run(id);
  });
  return (ids) => removeAll.immediate(ids);
}

/**
 * Commits one batch (job rows, audit records, outbox events) in one transaction, then deletes the
 * delivered events; returns why those could not be deleted, if they could not.
 */
export function batchWriter(db: Database): (batch: BatchMessage) => string | undefined {
  const one: Statement = db.prepare(jobSessionSql(1));
  const many: Statement = db.prepare(jobSessionSql(ROWS_PER_STATEMENT));
  const head = db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1');
  const setHead = db.prepare(
    'INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash',
  );
  const auditSql = (rows: number): string =>
    `INSERT INTO audit_records (seq, record, hash) VALUES ${Array.from({ length: rows }, () => '(?, ?, ?)').join(', ')}`;
  const auditOne = db.prepare(auditSql(1));
  const auditMany = db.prepare(auditSql(ROWS_PER_STATEMENT));
  const insertOutbox = db.prepare(
    'INSERT INTO outbox (idempotency_key, url_sha256, payload, created_at) VALUES (?, ?, ?, ?)',
  );
  const chunk = ROWS_PER_STATEMENT * JOB_SESSION_COLUMNS;
  const commit = db.transaction((batch: BatchMessage) => {
    const o = batch.outcomes;
    const jobRows: unknown[] = [];
    let audited = false;
    for (let i = 0; i < o.length; i += OUTCOME_VALUES) {
      if (o[i + 12] !== null) audited = true;
      if (o[i + 10] === null) continue;
      const outcome = o[i + 2] as string;
      jobRows.push(
        o[i + 10],
        o[i + 1],
        o[i + 11],
        outcome,
        o[i + 3] === true ? 1 : 0,
        outcome !== 'failed' ? 1 : 0,
        o[i + 4],
        o[i + 5],
        o[i + 6],
        isoTime(o[i] as number),
      );
    }
    let j = 0;
    for (; j + chunk <= jobRows.length; j += chunk) many.run(jobRows.slice(j, j + chunk));
    for (; j < jobRows.length; j += JOB_SESSION_COLUMNS) one.run(jobRows.slice(j, j + JOB_SESSION_COLUMNS));
    if (audited) {
      // The head is read inside the transaction: two processes on one state file cannot fork the chain.
      const current = head.get() as { seq: number; hash: string } | undefined;
      let seq = current?.seq ?? 0;
      let prevHash = current?.hash ?? GENESIS_HASH;
      const rows: unknown[] = [];
      for (let i = 0; i < o.length; i += OUTCOME_VALUES) {
        const ctx = o[i + 12] as AuditContext | null;
        if (ctx === null) continue;
        const { record, hash } = linkAuditRecord(
          ctx,
          {
            sessionId: o[i + 1] as string,
            cleared: o[i + 9] as string[],
            outcome: o[i + 2] as string,
            verified: o[i + 3] as boolean,
            errorCode: o[i + 4] as string | null,
            attempts: o[i + 5] as number,
            latencyMs: o[i + 6] as number,
            requestId: o[i + 7] as string | null,
            directiveHash: o[i + 8] as string | null,
          },
          { seq: ++seq, ts: isoTime(o[i] as number), prevHash },
        );
        rows.push(seq, record, hash);
        prevHash = hash;
      }
      const auditChunk = ROWS_PER_STATEMENT * AUDIT_COLUMNS;
      let k = 0;
      for (; k + auditChunk <= rows.length; k += auditChunk) auditMany.run(rows.slice(k, k + auditChunk));
      for (; k < rows.length; k += AUDIT_COLUMNS) auditOne.run(rows.slice(k, k + AUDIT_COLUMNS));
      setHead.run(seq, prevHash);
    }
    const now = new Date().toISOString();
    for (const event of batch.outbox) insertOutbox.run(event.key, event.urlSha256, event.payload, now);
  });
  const removeDelivered = outboxRemover(db);
  // IMMEDIATE: the write lock is taken (or waited for) up front. A deferred transaction that read the
  // chain head first could not upgrade once another process had committed since, and would fail busy at
  // once instead of waiting its turn.
  return (batch) => {
    commit.immediate(batch);
    if (batch.delivered.length === 0) return undefined;
    try {
      removeDelivered(batch.delivered);
      return undefined;
    } catch (err) {
      // The events stay in the outbox and go out again next run, where the tracker drops them by key.
      return (err as Error).message;
    }
  };
}

/**
 * Proves the connection can write before anything is sent: SQLite opens a file it may not write
 * read-only without a word, and a run would learn it only at its first commit, with resets applied.
 * A row is written and rolled back: no byte of the database changes.
 */
export function probeWritable(db: Database): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    db.prepare(
      "INSERT INTO job_runs (job_id, host, pid, process_start, started_at) VALUES (?, '', 0, NULL, '')",
    ).run(`\u0000write-probe-${process.pid}-${Date.now()}`);
  } finally {
    db.exec('ROLLBACK');
  }
}

/** The state file at `path` cannot be written (`cause`): told before anything is sent. */
export function notWritable(path: string, cause: unknown): CognigyResetError {
  return new CognigyResetError(
    'CR_ERR_STATE_OPEN',
    `cannot write the state file ${path}: ${(cause as Error).message}; nothing was sent`,
    { cause },
  );
}
