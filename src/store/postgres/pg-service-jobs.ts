/**
 * The service's jobs on PostgreSQL (table `service_jobs`, migration 2): one row a job, its request and
 * progress as JSON text, ordered by `seq` (the order they were created in). An Idempotency-Key is unique
 * per API key: of two requests with the same one, from any replica, one job is written and both get it.
 */
import type { ServiceJobFilter, ServiceJobRecord, ServiceJobUpdate } from '../port.js';
import { serviceJobFromRow as fromRow, type ServiceJobRow as Row } from '../service-job-row.js';

const COLUMNS = `id, tenant, state, created_at, updated_at, request, progress, idempotency_key_id,
  idempotency_key, request_hash`;
import type { Run } from './pg-job.js';

export async function createServiceJob(run: Run, job: ServiceJobRecord): Promise<ServiceJobRecord> {
  // A job id already taken fails (the primary key); an Idempotency-Key already used writes nothing, and
  // the job written with it is read back (it committed: ON CONFLICT waits for the other insert).
  const inserted = await run('storing a service job in', true, (pool) =>
    pool.query<Row>(
      `INSERT INTO service_jobs (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (idempotency_key_id, idempotency_key) DO NOTHING RETURNING ${COLUMNS}`,
      [
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
      ],
    ),
  );
  const row = inserted.rows[0];
  if (row !== undefined) return fromRow(row);
  return (await findServiceJobByIdempotencyKey(run, job.idempotency!.keyId, job.idempotency!.key))!;
}

export async function updateServiceJob(run: Run, id: string, update: ServiceJobUpdate): Promise<boolean> {
  const from = update.from === undefined ? '' : ' AND state = ANY($5::text[])';
  const values: unknown[] = [update.state, JSON.stringify(update.progress), new Date().toISOString(), id];
  if (update.from !== undefined) values.push(update.from);
  const result = await run('updating a service job in', true, (pool) =>
    pool.query(
      `UPDATE service_jobs SET state = $1, progress = $2, updated_at = $3 WHERE id = $4${from}`,
      values,
    ),
  );
  return (result.rowCount ?? 0) > 0;
}

async function one(run: Run, where: string, values: unknown[]): Promise<ServiceJobRecord | undefined> {
  const result = await run('reading the service jobs of', false, (pool) =>
    pool.query<Row>(`SELECT ${COLUMNS} FROM service_jobs WHERE ${where}`, values),
  );
  const row = result.rows[0];
  return row === undefined ? undefined : fromRow(row);
}

export function getServiceJob(run: Run, id: string): Promise<ServiceJobRecord | undefined> {
  return one(run, 'id = $1', [id]);
}

export function findServiceJobByIdempotencyKey(
  run: Run,
  keyId: string,
  key: string,
): Promise<ServiceJobRecord | undefined> {
  return one(run, 'idempotency_key_id = $1 AND idempotency_key = $2', [keyId, key]);
}

export async function listServiceJobs(run: Run, filter: ServiceJobFilter): Promise<ServiceJobRecord[]> {
  const limit = Math.max(0, Math.floor(filter.limit));
  const tenants = filter.tenants === undefined || filter.tenants.length === 0 ? null : [...filter.tenants];
  // A cursor naming no job gives an empty page, as on SQLite.
  const result = await run('listing the service jobs of', false, (pool) =>
    pool.query<Row>(
      `SELECT ${COLUMNS} FROM service_jobs
       WHERE ($1::text IS NULL OR seq < (SELECT seq FROM service_jobs WHERE id = $1))
         AND ($2::text[] IS NULL OR tenant = ANY($2))
         AND ($3::text IS NULL OR state = $3)
       ORDER BY seq DESC LIMIT $4`,
      [filter.after ?? null, tenants, filter.state ?? null, limit],
    ),
  );
  return result.rows.map(fromRow);
}

export async function countServiceJobs(run: Run): Promise<Record<string, number>> {
  const result = await run('counting the service jobs of', false, (pool) =>
    pool.query<{ state: string; n: number }>(
      'SELECT state, count(*)::int AS n FROM service_jobs GROUP BY state',
    ),
  );
  return Object.fromEntries(result.rows.map((r) => [r.state, r.n]));
}
