/** The batched writes of the state file, shared by the main thread and the writer thread. */
import type { Database, Statement } from 'better-sqlite3';
import { type AuditFields, canonical, GENESIS_HASH, sha256 } from '../audit/chain.js';
import { AUDIT_VALUES, type AuditContext } from '../audit/record.js';
import { isoTime } from '../util/iso-time.js';

/** One multi-row upsert binds this many rows: far fewer statement runs per batch. */
export const ROWS_PER_STATEMENT = 64;
/** Values bound per job-session row, in `jobSessionSql` column order. */
export const JOB_SESSION_COLUMNS = 10;
/** Values bound per audit row: seq, the canonical record text, its hash. */
const AUDIT_COLUMNS = 3;

export interface OutboxInput {
  key: string;
  url: string;
  payload: string;
}

/**
 * One batch, as the main thread hands it over: flat value lists (a structured clone of a few arrays of
 * primitives and shared references is cheap; thousands of small objects are not).
 */
export interface BatchMessage {
  /** `JOB_SESSION_COLUMNS` values per job-session row. */
  job: unknown[];
  /** `AUDIT_VALUES` values per audit record, as `pushAudit` lays them out. */
  audit: unknown[];
  outbox: OutboxInput[];
}

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

/** Commits one batch (job rows, audit records, outbox events) in one transaction. */
export function batchWriter(db: Database): (batch: BatchMessage) => void {
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
    'INSERT OR IGNORE INTO outbox (idempotency_key, url, payload, created_at) VALUES (?, ?, ?, ?)',
  );
  const chunk = ROWS_PER_STATEMENT * JOB_SESSION_COLUMNS;
  return db.transaction((batch: BatchMessage) => {
    const values = batch.job;
    let i = 0;
    for (; i + chunk <= values.length; i += chunk) many.run(values.slice(i, i + chunk));
    for (; i < values.length; i += JOB_SESSION_COLUMNS) one.run(values.slice(i, i + JOB_SESSION_COLUMNS));
    if (batch.audit.length > 0) {
      // The head is read inside the transaction: two processes on one state file cannot fork the chain.
      const current = head.get() as { seq: number; hash: string } | undefined;
      let seq = current?.seq ?? 0;
      let prevHash = current?.hash ?? GENESIS_HASH;
      const rows: unknown[] = [];
      const a = batch.audit;
      for (let i = 0; i < a.length; i += AUDIT_VALUES) {
        const ctx = a[i + 1] as AuditContext;
        // The same canonical encoding `audit verify` re-derives from the stored fields.
        const fields: AuditFields = {
          seq: ++seq,
          ts: isoTime(a[i] as number),
          actor: ctx.actor,
          reason: ctx.reason,
          jobId: ctx.jobId,
          tenant: ctx.tenant,
          botId: ctx.botId,
          sessionId: a[i + 2] as string,
          transport: ctx.transport,
          cleared: a[i + 3] as string[],
          notCleared: ctx.notCleared as string[],
          outcome: a[i + 4] as string,
          verified: a[i + 5] as boolean,
          errorCode: a[i + 6] as string | null,
          attempts: a[i + 7] as number,
          latencyMs: Math.round((a[i + 8] as number) * 1000) / 1000,
          requestId: a[i + 9] as string | null,
          directiveHash: a[i + 10] as string | null,
          prevHash,
        };
        const record = canonical(fields);
        const hash = sha256(record);
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
    for (const event of batch.outbox) insertOutbox.run(event.key, event.url, event.payload, now);
  });
}
