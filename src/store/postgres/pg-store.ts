/**
 * The store port on PostgreSQL (`--store postgres://...`): one database shared by every process and
 * replica that names it. Jobs and their leases (`pg-job.ts`), the batched writer (`pg-writer.ts`), the
 * audit chain (`pg-audit.ts`, one chain per store), the webhook outbox with claims, and API keys. The
 * schema is migrated on open (`migrations.ts`). Every failure is a `CR_ERR_STATE_*` error naming the
 * store by its redacted URL.
 */
import { Pool } from 'pg';
import type { AuditRecord } from '../../audit/chain.js';
import { CognigyResetError } from '../../errors.js';
import type {
  ApiKeyRecord,
  AuditFilter,
  ClaimedJobChunk,
  ChunkClaimOptions,
  JobChunkInput,
  JobChunkSummary,
  JobClaimHandle,
  JobRecord,
  LedgerCounts,
  OpenJobOptions,
  OutboxEvent,
  OutcomeWriter,
  ServiceJobFilter,
  ServiceJobRecord,
  ServiceJobUpdate,
  Store,
  VerifyResult,
} from '../port.js';
import * as jobChunks from './pg-job-chunks.js';
import * as serviceJobs from './pg-service-jobs.js';
import { pgStoreError } from './errors.js';
import { checkSchema, migrate } from './migrations.js';
import { pgAuditRecords, pgVerifyAudit } from './pg-audit.js';
import { PgBatchCommitter } from './pg-batch.js';
import { PgJob, type Run } from './pg-job.js';
import { LocalCommitter, pgThreadCommitter } from './pg-writer.js';
import { BatchingWriter } from '../batching-writer.js';
import { clientConfig, redactStoreUrl } from './url.js';

export interface PgStoreOptions {
  /** Nothing is written (`audit verify`, `audit export`); the schema must be there already. */
  readOnly?: boolean | undefined;
  /** Commit outcomes on a writer thread with a connection of its own. @default true */
  writerThread?: boolean | undefined;
}

/** Connections of this process's pool (the writer thread has one more of its own). */
const POOL_SIZE = 8;

interface ApiKeyRow {
  id: string;
  hash: string;
  label: string;
  scopes: string[];
  tenants: string[];
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const iso = (d: Date | null): string | null => (d === null ? null : d.toISOString());

const fromKeyRow = (r: ApiKeyRow): ApiKeyRecord => ({
  id: r.id,
  hash: r.hash,
  label: r.label,
  scopes: r.scopes,
  tenants: r.tenants,
  createdAt: r.created_at.toISOString(),
  revokedAt: iso(r.revoked_at),
  lastUsedAt: iso(r.last_used_at),
});

interface JobRow {
  job_id: string;
  settings: string;
  created_at: Date;
  updated_at: Date;
  runs: number;
  finished: boolean;
  owner: string | null;
  host: string | null;
  pid: number | null;
  started_at: Date | null;
  expires_at: Date | null;
}

export class PgStore implements Store {
  readonly kind = 'postgres';
  readonly location: string;
  readonly #url: string;
  readonly #pool: Pool;
  readonly #readOnly: boolean;
  readonly #writerThread: boolean;
  #closed = false;

  private constructor(url: string, shown: string, pool: Pool, options: PgStoreOptions) {
    this.#url = url;
    this.location = shown;
    this.#pool = pool;
    this.#readOnly = options.readOnly === true;
    this.#writerThread = options.writerThread !== false;
  }

  /** Connects, and migrates the schema to this version (read-only: checks it is this version). */
  static async open(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
    const shown = redactStoreUrl(url);
    const pool = new Pool({ ...clientConfig(url), max: POOL_SIZE });
    // An idle connection the server dropped is replaced at the next use; the use reports the failure.
    pool.on('error', () => undefined);
    try {
      const client = await pool.connect().catch((err: unknown) => {
        throw pgStoreError(shown, 'connecting to', err, 'CR_ERR_STATE_OPEN');
      });
      try {
        if (options.readOnly === true) await checkSchema(client, shown);
        else await migrate(client, shown);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw pgStoreError(shown, 'opening', err, 'CR_ERR_STATE_OPEN');
    }
    return new PgStore(url, shown, pool, options);
  }

  #check(write: boolean): void {
    if (this.#closed)
      throw new CognigyResetError('CR_ERR_STATE_OPEN', `the PostgreSQL store ${this.location} is closed`);
    if (write && this.#readOnly) {
      throw new CognigyResetError(
        'CR_ERR_STATE_OPEN',
        `the PostgreSQL store ${this.location} is opened read-only: nothing is written`,
      );
    }
  }

  /** Runs a query on the pool; a failure is a coded error (WRITE for a write, OPEN for a read). */
  readonly #run: Run = async (doing, write, query) => {
    this.#check(write);
    try {
      return await query(this.#pool);
    } catch (err) {
      throw pgStoreError(this.location, doing, err, write ? 'CR_ERR_STATE_WRITE' : 'CR_ERR_STATE_OPEN');
    }
  };

  async checkWritable(): Promise<void> {
    this.#check(true);
    try {
      const client = await this.#pool.connect();
      try {
        await new PgBatchCommitter(client).probe();
      } finally {
        client.release();
      }
    } catch (err) {
      throw pgStoreError(this.location, 'writing to', err, 'CR_ERR_STATE_OPEN');
    }
  }

  openJob(options: OpenJobOptions): Promise<JobClaimHandle> {
    return PgJob.open(this.#run, options);
  }

  async listJobs(options: { limit?: number; after?: string } = {}): Promise<JobRecord[]> {
    const limit = Math.max(0, Math.floor(options.limit ?? 100));
    const result = await this.#run('listing the jobs of', false, (pool) =>
      pool.query<JobRow>(
        `WITH cursor AS (SELECT created_at, job_id FROM jobs WHERE job_id = $1)
         SELECT j.job_id, j.settings, j.created_at, j.updated_at, j.runs, j.finished,
           r.owner, r.host, r.pid, r.started_at, r.expires_at
         FROM jobs j LEFT JOIN job_runs r ON r.job_id = j.job_id
         WHERE NOT EXISTS (SELECT 1 FROM cursor)
           OR (j.created_at, j.job_id) < (SELECT created_at, job_id FROM cursor)
         ORDER BY j.created_at DESC, j.job_id DESC LIMIT $2`,
        [options.after ?? null, limit],
      ),
    );
    return result.rows.map((r) => ({
      jobId: r.job_id,
      settings: JSON.parse(r.settings) as Record<string, unknown>,
      createdAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
      runs: r.runs,
      finished: r.finished,
      lease:
        r.host === null
          ? null
          : {
              owner: r.owner!,
              host: r.host,
              pid: r.pid!,
              since: r.started_at!.toISOString(),
              expiresAt: r.expires_at!.toISOString(),
            },
    }));
  }

  async writer(): Promise<OutcomeWriter> {
    this.#check(true);
    return BatchingWriter.open(
      this.#writerThread
        ? pgThreadCommitter(this.#url, this.location)
        : new LocalCommitter(this.#pool, this.location),
      'the writer of the PostgreSQL store',
    );
  }

  async *auditRecords(filter: AuditFilter = {}): AsyncIterable<AuditRecord> {
    this.#check(false);
    yield* pgAuditRecords(this.#pool, this.location, filter);
  }

  async verifyAudit(options: { anchor?: string | undefined } = {}): Promise<VerifyResult> {
    this.#check(false);
    return pgVerifyAudit(this.#pool, this.location, options.anchor);
  }

  async claimOutbox(
    urlSha256: string,
    options: { limit: number; owner: string; leaseMs: number; after?: number | undefined },
  ): Promise<OutboxEvent[]> {
    // One statement: events nobody else holds are picked, locked (rows another claim is locking are
    // skipped, never waited for) and claimed; the claim, not the id, keeps two owners apart.
    const result = await this.#run('claiming outbox events in', true, (pool) =>
      pool.query<{ id: string; key: string; payload: string }>(
        `WITH picked AS (
           SELECT id FROM outbox
           WHERE url_sha256 = $1 AND id > $2
             AND (claimed_by IS NULL OR claimed_by = $3 OR claimed_until <= clock_timestamp())
           ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
         UPDATE outbox o SET claimed_by = $3,
           claimed_until = clock_timestamp() + $5::float8 * interval '1 millisecond'
         FROM picked WHERE o.id = picked.id
         RETURNING o.id, o.idempotency_key AS key, o.payload`,
        [
          urlSha256,
          options.after ?? 0,
          options.owner,
          Math.max(0, options.limit),
          Math.max(0, options.leaseMs),
        ],
      ),
    );
    return result.rows
      .map((r) => ({ id: Number(r.id), key: r.key, payload: r.payload }))
      .sort((a, b) => a.id - b.id);
  }

  async releaseOutbox(owner: string): Promise<void> {
    await this.#run('releasing outbox claims in', true, (pool) =>
      pool.query('UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1', [owner]),
    );
  }

  async ackOutbox(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return this.#check(true);
    await this.#run('deleting delivered events from', true, (pool) =>
      pool.query('DELETE FROM outbox WHERE id = ANY($1::bigint[])', [ids]),
    );
  }

  async countOutbox(urlSha256: string): Promise<{ mine: number; others: number }> {
    const result = await this.#run('counting the outbox of', false, (pool) =>
      pool.query<{ mine: number; others: number }>(
        `SELECT count(*) FILTER (WHERE url_sha256 = $1)::int AS mine,
           count(*) FILTER (WHERE url_sha256 <> $1)::int AS others FROM outbox`,
        [urlSha256],
      ),
    );
    return { mine: result.rows[0]!.mine, others: result.rows[0]!.others };
  }

  async createApiKey(
    key: Omit<ApiKeyRecord, 'createdAt' | 'revokedAt' | 'lastUsedAt'>,
  ): Promise<ApiKeyRecord> {
    const result = await this.#run('storing an API key in', true, (pool) =>
      pool.query<ApiKeyRow>(
        `INSERT INTO api_keys (id, hash, label, scopes, tenants, created_at)
         VALUES ($1, $2, $3, $4, $5, date_trunc('milliseconds', clock_timestamp())) RETURNING *`,
        [key.id, key.hash, key.label, key.scopes, key.tenants],
      ),
    );
    return fromKeyRow(result.rows[0]!);
  }

  async findApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    const result = await this.#run('reading the API keys of', false, (pool) =>
      pool.query<ApiKeyRow>('SELECT * FROM api_keys WHERE hash = $1', [hash]),
    );
    const row = result.rows[0];
    return row === undefined ? undefined : fromKeyRow(row);
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const result = await this.#run('reading the API keys of', false, (pool) =>
      pool.query<ApiKeyRow>('SELECT * FROM api_keys ORDER BY created_at, id'),
    );
    return result.rows.map(fromKeyRow);
  }

  async revokeApiKey(id: string): Promise<boolean> {
    const result = await this.#run('revoking an API key in', true, (pool) =>
      pool.query('UPDATE api_keys SET revoked_at = clock_timestamp() WHERE id = $1 AND revoked_at IS NULL', [
        id,
      ]),
    );
    return (result.rowCount ?? 0) > 0;
  }

  async markApiKeyUsed(id: string, at: string): Promise<void> {
    await this.#run('recording the use of an API key in', true, (pool) =>
      pool.query(
        'UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)',
        [id, at],
      ),
    );
  }

  createServiceJob(job: ServiceJobRecord): Promise<ServiceJobRecord> {
    return serviceJobs.createServiceJob(this.#run, job);
  }

  updateServiceJob(id: string, update: ServiceJobUpdate): Promise<boolean> {
    return serviceJobs.updateServiceJob(this.#run, id, update);
  }

  getServiceJob(id: string): Promise<ServiceJobRecord | undefined> {
    return serviceJobs.getServiceJob(this.#run, id);
  }

  findServiceJobByIdempotencyKey(keyId: string, key: string): Promise<ServiceJobRecord | undefined> {
    return serviceJobs.findServiceJobByIdempotencyKey(this.#run, keyId, key);
  }

  listServiceJobs(filter: ServiceJobFilter): Promise<ServiceJobRecord[]> {
    return serviceJobs.listServiceJobs(this.#run, filter);
  }

  countServiceJobs(): Promise<Record<string, number>> {
    return serviceJobs.countServiceJobs(this.#run);
  }

  addJobChunks(jobId: string, chunks: readonly JobChunkInput[]): Promise<void> {
    return jobChunks.addJobChunks(this.#run, jobId, chunks);
  }

  claimJobChunk(options: ChunkClaimOptions): Promise<ClaimedJobChunk | undefined> {
    return jobChunks.claimJobChunk(this.#run, options);
  }

  heartbeatJobChunk(
    jobId: string,
    chunkNo: number,
    options: { owner: string; leaseMs: number; outcomes: string },
  ): Promise<boolean> {
    return jobChunks.heartbeatJobChunk(this.#run, jobId, chunkNo, options);
  }

  finishJobChunk(
    jobId: string,
    chunkNo: number,
    options: { owner: string; outcomes: string; error: { code: string; message: string } | null },
  ): Promise<boolean> {
    return jobChunks.finishJobChunk(this.#run, jobId, chunkNo, options);
  }

  releaseJobChunks(owner: string): Promise<void> {
    return jobChunks.releaseJobChunks(this.#run, owner);
  }

  giveBackJobChunk(jobId: string, chunkNo: number, owner: string): Promise<boolean> {
    return jobChunks.giveBackJobChunk(this.#run, jobId, chunkNo, owner);
  }

  reopenJobChunks(jobId: string): Promise<void> {
    return jobChunks.reopenJobChunks(this.#run, jobId);
  }

  jobChunkSummary(jobId: string): Promise<JobChunkSummary> {
    return jobChunks.jobChunkSummary(this.#run, jobId);
  }

  jobChunkOutcomes(jobId: string): AsyncIterable<string> {
    return jobChunks.jobChunkOutcomes(this.#run, jobId);
  }

  ledgerCounts(jobIds: readonly string[]): Promise<LedgerCounts> {
    return jobChunks.ledgerCounts(this.#run, jobIds);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end().catch(() => undefined);
  }
}
