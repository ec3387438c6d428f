/** The batched writes of the state file, shared by the main thread and the writer thread. */
import type { Database, Statement } from 'better-sqlite3';
import { type AuditFields, GENESIS_HASH, recordHash, sha256 } from '../audit/chain.js';

/** One multi-row upsert binds this many rows: far fewer statement runs per batch. */
export const ROWS_PER_STATEMENT = 64;
/** Values bound per job-session row, in `jobSessionSql` column order. */
export const JOB_SESSION_COLUMNS = 10;

/** What the main thread sends for one audit record: the writer sequences, links and hashes it. */
export type AuditInput = Omit<AuditFields, 'seq' | 'prevHash' | 'directiveHash'> & {
  directiveText: string | null;
};

export interface OutboxInput {
  key: string;
  url: string;
  payload: string;
}

export interface BatchMessage {
  job: unknown[];
  audit: AuditInput[];
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
  const insertAudit = db.prepare(`INSERT INTO audit_log
    (seq, ts, actor, reason, job_id, tenant, bot_id, session_id, transport, cleared, not_cleared, outcome,
     verified, error_code, attempts, latency_ms, request_id, directive_hash, prev_hash, hash)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
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
      for (const input of batch.audit) {
        const { directiveText, ...rest } = input;
        const fields: AuditFields = {
          ...rest,
          seq: ++seq,
          directiveHash: directiveText === null ? null : sha256(directiveText),
          prevHash,
        };
        const hash = recordHash(fields);
        insertAudit.run(
          fields.seq,
          fields.ts,
          fields.actor,
          fields.reason,
          fields.jobId,
          fields.tenant,
          fields.botId,
          fields.sessionId,
          fields.transport,
          JSON.stringify(fields.cleared),
          JSON.stringify(fields.notCleared),
          fields.outcome,
          fields.verified ? 1 : 0,
          fields.errorCode,
          fields.attempts,
          fields.latencyMs,
          fields.requestId,
          fields.directiveHash,
          fields.prevHash,
          hash,
        );
        prevHash = hash;
      }
      setHead.run(seq, prevHash);
    }
    const now = new Date().toISOString();
    for (const event of batch.outbox) insertOutbox.run(event.key, event.url, event.payload, now);
  });
}
