/** The batched writes of the state file, shared by the main thread and the writer thread. */
import type { Database, Statement } from 'better-sqlite3';

/** One multi-row upsert binds this many rows: far fewer statement runs per batch. */
export const ROWS_PER_STATEMENT = 64;
/** Values bound per job-session row, in `jobSessionSql` column order. */
export const JOB_SESSION_COLUMNS = 10;

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

/** Writes flat row values (JOB_SESSION_COLUMNS per row) in one transaction. */
export function jobSessionWriter(db: Database): (values: unknown[]) => void {
  const one: Statement = db.prepare(jobSessionSql(1));
  const many: Statement = db.prepare(jobSessionSql(ROWS_PER_STATEMENT));
  const chunk = ROWS_PER_STATEMENT * JOB_SESSION_COLUMNS;
  return db.transaction((values: unknown[]) => {
    let i = 0;
    for (; i + chunk <= values.length; i += chunk) many.run(values.slice(i, i + chunk));
    for (; i < values.length; i += JOB_SESSION_COLUMNS) one.run(values.slice(i, i + JOB_SESSION_COLUMNS));
  });
}
