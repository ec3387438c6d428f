/**
 * The service's jobs in the state file (table `service_jobs`, schema version 7): one row a job, its
 * request and progress as JSON text, ordered by `seq` (the order they were created in). An Idempotency-Key
 * is unique per API key: a second job with the same one is never written.
 */
import { prepared } from './statements.js';
import type { ServiceJobFilter, ServiceJobRecord, ServiceJobUpdate } from '../port.js';
import { serviceJobFromRow as fromRow, type ServiceJobRow as Row } from '../service-job-row.js';
import { written } from './job-store.js';
import type { StateDb } from './state-file.js';

export function createServiceJob(db: StateDb, job: ServiceJobRecord): ServiceJobRecord {
  return written('the service job', () =>
    db
      .transaction(() => {
        const earlier =
          job.idempotency === null
            ? undefined
            : findByIdempotencyKey(db, job.idempotency.keyId, job.idempotency.key);
        if (earlier !== undefined) return earlier;
        prepared(
          db,
          `INSERT INTO service_jobs (id, tenant, state, created_at, updated_at, request, progress,
             idempotency_key_id, idempotency_key, request_hash)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(
          job.id,
          job.tenant,
          job.state,
          job.createdAt,
          job.updatedAt,
          JSON.stringify(job.request),
          JSON.stringify(job.progress),
          job.idempotency?.keyId ?? null,
          job.idempotency?.key ?? null,
          job.idempotency?.requestHash ?? null,
        );
        return job;
      })
      .immediate(),
  );
}

export function updateServiceJob(db: StateDb, id: string, update: ServiceJobUpdate): boolean {
  const from = update.from === undefined ? '' : ' AND state IN (SELECT value FROM json_each(?))';
  const values: unknown[] = [update.state, JSON.stringify(update.progress), new Date().toISOString(), id];
  if (update.from !== undefined) values.push(JSON.stringify(update.from));
  return (
    written('the service job', () =>
      prepared(db, `UPDATE service_jobs SET state = ?, progress = ?, updated_at = ? WHERE id = ?${from}`).run(
        ...values,
      ),
    ).changes > 0
  );
}

export function getServiceJob(db: StateDb, id: string): ServiceJobRecord | undefined {
  const row = prepared(db, 'SELECT * FROM service_jobs WHERE id = ?').get(id) as Row | undefined;
  return row === undefined ? undefined : fromRow(row);
}

export function findByIdempotencyKey(db: StateDb, keyId: string, key: string): ServiceJobRecord | undefined {
  const row = prepared(
    db,
    'SELECT * FROM service_jobs WHERE idempotency_key_id = ? AND idempotency_key = ?',
  ).get(keyId, key) as Row | undefined;
  return row === undefined ? undefined : fromRow(row);
}

export function listServiceJobs(db: StateDb, filter: ServiceJobFilter): ServiceJobRecord[] {
  const limit = Math.max(0, Math.floor(filter.limit));
  let before: number | null = null;
  if (filter.after !== undefined) {
    const cursor = prepared(db, 'SELECT seq FROM service_jobs WHERE id = ?').get(filter.after) as
      { seq: number } | undefined;
    if (cursor === undefined) return [];
    before = cursor.seq;
  }
  const tenants = filter.tenants === undefined || filter.tenants.length === 0 ? null : filter.tenants;
  const rows = prepared(
    db,
    `SELECT * FROM service_jobs
       WHERE (? IS NULL OR seq < ?)
         AND (? IS NULL OR tenant IN (SELECT value FROM json_each(?)))
         AND (? IS NULL OR state = ?)
       ORDER BY seq DESC LIMIT ?`,
  ).all(
    before,
    before,
    tenants === null ? null : 1,
    tenants === null ? '[]' : JSON.stringify(tenants),
    filter.state ?? null,
    filter.state ?? null,
    limit,
  ) as Row[];
  return rows.map(fromRow);
}

export function countServiceJobs(db: StateDb): Record<string, number> {
  const rows = prepared(db, 'SELECT state, count(*) AS n FROM service_jobs GROUP BY state').all() as {
    state: string;
    n: number;
  }[];
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}
