/** The batched writes of the state file, shared by the main thread and the writer thread. */
import type { Database, Statement } from 'better-sqlite3';
import { type AuditFields, GENESIS_HASH, recordHash, sha256 } from '../audit/chain.js';

/** One multi-row upsert binds this many rows: far fewer statement runs per batch. */
export const ROWS_PER_STATEMENT = 64;
/** Values bound per job-session row, in `jobSessionSql` column order. */
export const JOB_SESSION_COLUMNS = 10;

/**
 * What the main thread sends for one audit record, as a flat tuple (cheap to pass between threads): the
 * writer sequences, links and hashes it. Layer lists travel as their JSON text.
 */
export type AuditInput = [
  ts: string,
  actor: string,
  reason: string | null,
  jobId: string | null,
  tenant: string,
  botId: string,
  sessionId: string,
  transport: string,
  clearedJson: string,
  notClearedJson: string,
  outcome: string,
  verified: boolean,
  errorCode: string | null,
  attempts: number,
  latencyMs: number,
  requestId: string | null,
  directiveText: string | null,
];

/** Values bound per audit row. */
const AUDIT_COLUMNS = 20;

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

/** Layer lists arrive as JSON text, the same few per run: each distinct text is parsed once. */
const layerLists = new Map<string, string[]>();

function layerList(json: string): string[] {
  let list = layerLists.get(json);
  if (list === undefined) {
    list = JSON.parse(json) as string[];
    if (layerLists.size < 64) layerLists.set(json, list);
  }
  return list;
}

/** Commits one batch (job rows, audit records, outbox events) in one transaction. */
export function batchWriter(db: Database): (batch: BatchMessage) => void {
  const one: Statement = db.prepare(jobSessionSql(1));
  const many: Statement = db.prepare(jobSessionSql(ROWS_PER_STATEMENT));
  const head = db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1');
  const setHead = db.prepare(
    'INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash',
  );
  const auditSql = (rows: number): string => `INSERT INTO audit_log
    (seq, ts, actor, reason, job_id, tenant, bot_id, session_id, transport, cleared, not_cleared, outcome,
     verified, error_code, attempts, latency_ms, request_id, directive_hash, prev_hash, hash)
    VALUES ${Array.from({ length: rows }, () => `(${new Array(AUDIT_COLUMNS).fill('?').join(', ')})`).join(', ')}`;
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
      for (const a of batch.audit) {
        const [
          ts,
          actor,
          reason,
          jobId,
          tenant,
          botId,
          sessionId,
          transport,
          clearedJson,
          notClearedJson,
          outcome,
          verified,
          errorCode,
          attempts,
          latencyMs,
          requestId,
          directiveText,
        ] = a;
        // The same record `audit verify` re-hashes: one canonical encoding for writer and verifier.
        const fields: AuditFields = {
          seq: ++seq,
          ts,
          actor,
          reason,
          jobId,
          tenant,
          botId,
          sessionId,
          transport,
          cleared: layerList(clearedJson),
          notCleared: layerList(notClearedJson),
          outcome,
          verified,
          errorCode,
          attempts,
          latencyMs,
          requestId,
          directiveHash: directiveText === null ? null : sha256(directiveText),
          prevHash,
        };
        const hash = recordHash(fields);
        rows.push(
          seq,
          ts,
          actor,
          reason,
          jobId,
          tenant,
          botId,
          sessionId,
          transport,
          clearedJson,
          notClearedJson,
          outcome,
          verified ? 1 : 0,
          errorCode,
          attempts,
          latencyMs,
          requestId,
          fields.directiveHash,
          prevHash,
          hash,
        );
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
