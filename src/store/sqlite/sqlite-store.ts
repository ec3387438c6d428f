/**
 * The store port on an SQLite state file (`--state`), in the file format of `state-file.ts`. The driver
 * is synchronous: each method does its work at once and returns a settled promise, so a caller written
 * for a networked backend costs nothing more here. Outcomes are committed by a `BatchingWriter`, on a
 * writer thread of its own connection, so a bulk run's resets are not held up by SQLite.
 */
/* eslint-disable @typescript-eslint/require-await -- the driver is synchronous; the methods are async so
   that a failure is a rejection, as the port promises, never a throw. */
import { prepared } from './statements.js';
import type { AuditRecord } from '../../audit/chain.js';
import { CognigyResetError } from '../../errors.js';
import type {
  ApiKeyRecord,
  AuditFilter,
  ClaimedJobChunk,
  JobChunkInput,
  JobChunkSummary,
  ChunkClaimOptions,
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
import { OUTCOME_PAGE } from '../job-chunk-row.js';
import { auditRecords, verifyAudit } from './audit-read.js';
import { outboxRemover } from './batch-sql.js';
import { SqliteJob, written } from './job-store.js';
import * as apiKeys from './api-keys.js';
import * as jobChunks from './job-chunks.js';
import * as serviceJobs from './service-jobs.js';
import { openStateFile, type StateDb } from './state-file.js';
import { openStateReadOnly, sqliteStateError } from './state-read.js';
import { BatchingWriter } from '../batching-writer.js';
import { checkWritable, STATE_WRITER, stateCommitter } from './state-writer.js';
import { yieldingWrite, type YieldingWriteOptions } from './yielding-write.js';

/**
 * A chunk's claim, heartbeat and end, and a ledger's lease: bookkeeping that a power cut may undo (work is
 * done again; the ledger and the synced reservation marks keep any reset from being sent twice).
 */
const LATER: YieldingWriteOptions = { syncLater: true };

export interface SqliteStoreOptions {
  /** Read only, changing no byte of the file (`audit verify`, `audit export`). */
  readOnly?: boolean | undefined;
  /** Commit outcomes on a writer thread. @default true */
  writerThread?: boolean | undefined;
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly location: string;
  readonly #db: StateDb;
  readonly #close: () => void;
  readonly #readOnly: boolean;
  readonly #writerThread: boolean;
  /** Closing: the writes on their way settle, then the connection closes; a second close waits alike. */
  #closing: Promise<void> | undefined;
  #remove: ((ids: readonly number[]) => void) | undefined;
  /** Writes waiting for the lock (`yieldingWrite`): closing waits for them. */
  readonly #pending = new Set<Promise<unknown>>();

  private constructor(path: string, db: StateDb, close: () => void, options: SqliteStoreOptions) {
    this.location = path;
    this.#db = db;
    this.#close = close;
    this.#readOnly = options.readOnly === true;
    this.#writerThread = options.writerThread !== false;
  }

  /** Opens (creating and upgrading as needed) the state file at `path`; read-only opens change nothing. */
  static open(path: string, options: SqliteStoreOptions = {}): SqliteStore {
    if (options.readOnly === true) {
      const state = openStateReadOnly(path);
      return new SqliteStore(path, state.db, () => state.close(), options);
    }
    const db = openStateFile(path);
    return new SqliteStore(path, db, () => db.close(), options);
  }

  /** The open connection, or why there is none. */
  #use(write: boolean): StateDb {
    if (this.#closing !== undefined)
      throw new CognigyResetError('CR_ERR_STATE_OPEN', `the state file ${this.location} is closed`);
    if (write && this.#readOnly) {
      throw new CognigyResetError(
        'CR_ERR_STATE_OPEN',
        `the state file ${this.location} is opened read-only: nothing is written`,
      );
    }
    return this.#db;
  }

  /** A write that waits for the lock without stopping this thread, kept until it settles. */
  #write<T>(write: (db: StateDb) => T, options?: YieldingWriteOptions): Promise<T> {
    const db = this.#use(true);
    const pending = yieldingWrite(db, () => write(db), options);
    this.#pending.add(pending);
    const done = (): boolean => this.#pending.delete(pending);
    pending.then(done, done);
    return pending;
  }

  /** Runs a read; an SQLite error becomes a coded state error. */
  #read<T>(read: (db: StateDb) => T): T {
    const db = this.#use(false);
    try {
      return read(db);
    } catch (err) {
      throw sqliteStateError(this.location, err) ?? err;
    }
  }

  async checkWritable(): Promise<void> {
    checkWritable(this.#use(true), this.location);
  }

  async openJob(options: OpenJobOptions): Promise<JobClaimHandle> {
    // A ledger's lease and end are bookkeeping (`syncLater`); its reservation marks are synced as written.
    return SqliteJob.open(this.#use(true), options, (write) => this.#write(write, LATER));
  }

  async listJobs(options: { limit?: number; after?: string } = {}): Promise<JobRecord[]> {
    const limit = Math.max(0, Math.floor(options.limit ?? 100));
    return this.#read((db) => {
      const cursor =
        options.after === undefined
          ? undefined
          : (prepared(db, 'SELECT created_at FROM jobs WHERE job_id = ?').get(options.after) as
              { created_at: string } | undefined);
      const rows = prepared(
        db,
        `SELECT j.job_id, j.settings, j.created_at, j.updated_at, j.runs, j.finished,
             r.owner, r.host, r.pid, r.started_at, r.expires_at
           FROM jobs j LEFT JOIN job_runs r ON r.job_id = j.job_id
           WHERE ? IS NULL OR j.created_at < ? OR (j.created_at = ? AND j.job_id < ?)
           ORDER BY j.created_at DESC, j.job_id DESC LIMIT ?`,
      ).all(
        cursor?.created_at ?? null,
        cursor?.created_at ?? null,
        cursor?.created_at ?? null,
        options.after ?? null,
        limit,
      ) as {
        job_id: string;
        settings: string;
        created_at: string;
        updated_at: string;
        runs: number;
        finished: number;
        owner: string | null;
        host: string | null;
        pid: number | null;
        started_at: string | null;
        expires_at: string | null;
      }[];
      return rows.map((r) => ({
        jobId: r.job_id,
        settings: JSON.parse(r.settings) as Record<string, unknown>,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
        runs: r.runs,
        finished: r.finished === 1,
        lease:
          r.host === null
            ? null
            : {
                owner: r.owner ?? `${r.host}/${r.pid}`,
                host: r.host,
                pid: r.pid!,
                since: r.started_at!,
                expiresAt: r.expires_at ?? r.started_at!,
              },
      }));
    });
  }

  async writer(): Promise<OutcomeWriter> {
    // Nothing is sent before the writer holds the state file open and can write it.
    return BatchingWriter.open(
      stateCommitter({ db: this.#use(true), path: this.location, thread: this.#writerThread }),
      STATE_WRITER,
    );
  }

  async *auditRecords(filter: AuditFilter = {}): AsyncIterable<AuditRecord> {
    const records = this.#read((db) => auditRecords(db, filter));
    for (;;) {
      const next = this.#read(() => records.next());
      if (next.done === true) return;
      yield next.value;
    }
  }

  async verifyAudit(options: { anchor?: string | undefined } = {}): Promise<VerifyResult> {
    return this.#read((db) => verifyAudit(db, options.anchor));
  }

  async claimOutbox(
    urlSha256: string,
    options: { limit: number; owner: string; leaseMs: number; after?: number | undefined },
  ): Promise<OutboxEvent[]> {
    const db = this.#use(true);
    const select = prepared(
      db,
      `SELECT id, idempotency_key AS key, payload FROM outbox
       WHERE url_sha256 = ? AND id > ? AND (claimed_by IS NULL OR claimed_by = ? OR claimed_until <= ?)
       ORDER BY id LIMIT ?`,
    );
    const find = (): OutboxEvent[] =>
      select.all(
        urlSha256,
        options.after ?? 0,
        options.owner,
        new Date().toISOString(),
        options.limit,
      ) as OutboxEvent[];
    // Read first: an idle outbox costs no write lock, which the writer thread may be holding.
    if (this.#read(find).length === 0) return [];
    return written('the outbox claim', () =>
      db
        .transaction(() => {
          const events = find();
          const until = new Date(Date.now() + options.leaseMs).toISOString();
          prepared(
            db,
            'UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id IN (SELECT value FROM json_each(?))',
          ).run(options.owner, until, JSON.stringify(events.map((e) => e.id)));
          return events;
        })
        .immediate(),
    );
  }

  async releaseOutbox(owner: string): Promise<void> {
    const db = this.#use(true);
    written('the outbox claim', () =>
      prepared(db, 'UPDATE outbox SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?').run(
        owner,
      ),
    );
  }

  async ackOutbox(ids: readonly number[]): Promise<void> {
    this.#remove ??= outboxRemover(this.#use(true));
    const remove = this.#remove;
    written('delivered outbox events', () => remove(ids));
  }

  async countOutbox(urlSha256: string): Promise<{ mine: number; others: number }> {
    return this.#read((db) => {
      const count = prepared(
        db,
        'SELECT count(*) FILTER (WHERE url_sha256 = ?) AS mine, count(*) FILTER (WHERE url_sha256 != ?) AS others FROM outbox',
      );
      return count.get(urlSha256, urlSha256) as { mine: number; others: number };
    });
  }

  async createApiKey(
    key: Omit<ApiKeyRecord, 'createdAt' | 'revokedAt' | 'lastUsedAt'>,
  ): Promise<ApiKeyRecord> {
    return apiKeys.createApiKey(this.#use(true), key);
  }

  async findApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    return this.#read((db) => apiKeys.findApiKey(db, hash));
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return this.#read((db) => apiKeys.listApiKeys(db));
  }

  async revokeApiKey(id: string): Promise<boolean> {
    return apiKeys.revokeApiKey(this.#use(true), id);
  }

  async markApiKeyUsed(id: string, at: string): Promise<void> {
    // Bookkeeping, not a record anyone was answered with: synced by the next synced commit.
    await this.#write((db) => apiKeys.markApiKeyUsed(db, id, at), LATER);
  }

  async createServiceJob(job: ServiceJobRecord): Promise<ServiceJobRecord> {
    return this.#write((db) => serviceJobs.createServiceJob(db, job));
  }

  async updateServiceJob(id: string, update: ServiceJobUpdate): Promise<boolean> {
    return this.#write((db) => serviceJobs.updateServiceJob(db, id, update));
  }

  async getServiceJob(id: string): Promise<ServiceJobRecord | undefined> {
    return this.#read((db) => serviceJobs.getServiceJob(db, id));
  }

  async findServiceJobByIdempotencyKey(keyId: string, key: string): Promise<ServiceJobRecord | undefined> {
    return this.#read((db) => serviceJobs.findByIdempotencyKey(db, keyId, key));
  }

  async listServiceJobs(filter: ServiceJobFilter): Promise<ServiceJobRecord[]> {
    return this.#read((db) => serviceJobs.listServiceJobs(db, filter));
  }

  async countServiceJobs(): Promise<Record<string, number>> {
    return this.#read((db) => serviceJobs.countServiceJobs(db));
  }

  async addJobChunks(jobId: string, chunks: readonly JobChunkInput[]): Promise<void> {
    await this.#write((db) => jobChunks.addJobChunks(db, jobId, chunks));
  }

  async claimJobChunk(options: ChunkClaimOptions): Promise<ClaimedJobChunk | undefined> {
    // Refused by a closed or read-only store, whether or not a chunk is free.
    this.#use(true);
    // Read first: an idle poll costs no write lock, which the writer thread may be holding.
    if (this.#read((db) => jobChunks.freeChunk(db, options)) === undefined) return undefined;
    return this.#write((db) => jobChunks.claimJobChunk(db, options), LATER);
  }

  async heartbeatJobChunk(
    jobId: string,
    chunkNo: number,
    options: { owner: string; leaseMs: number; outcomes: string },
  ): Promise<boolean> {
    return this.#write((db) => jobChunks.heartbeatJobChunk(db, jobId, chunkNo, options), LATER);
  }

  async finishJobChunk(
    jobId: string,
    chunkNo: number,
    options: { owner: string; outcomes: string; error: { code: string; message: string } | null },
  ): Promise<boolean> {
    return this.#write((db) => jobChunks.finishJobChunk(db, jobId, chunkNo, options), LATER);
  }

  async releaseJobChunks(owner: string): Promise<void> {
    await this.#write((db) => jobChunks.releaseJobChunks(db, owner), LATER);
  }

  async giveBackJobChunk(jobId: string, chunkNo: number, owner: string): Promise<boolean> {
    return this.#write((db) => jobChunks.giveBackJobChunk(db, jobId, chunkNo, owner), LATER);
  }

  async reopenJobChunks(jobId: string): Promise<void> {
    await this.#write((db) => jobChunks.reopenJobChunks(db, jobId));
  }

  async jobChunkSummary(jobId: string): Promise<JobChunkSummary> {
    return this.#read((db) => jobChunks.jobChunkSummary(db, jobId));
  }

  async *jobChunkOutcomes(jobId: string): AsyncIterable<string> {
    // A page at a time, no statement held open between pages: the consumer may write meanwhile.
    for (let after = -Infinity; ;) {
      const page = this.#read((db) => jobChunks.outcomePage(db, jobId, after));
      for (const row of page) yield row.outcomes;
      if (page.length < OUTCOME_PAGE) return;
      after = page.at(-1)!.chunk_no;
    }
  }

  async ledgerCounts(jobIds: readonly string[]): Promise<LedgerCounts> {
    return this.#read((db) => jobChunks.ledgerCounts(db, jobIds));
  }

  close(): Promise<void> {
    if (this.#closing === undefined) {
      this.#closing = Promise.allSettled([...this.#pending]).then(() => this.#close());
    }
    return this.#closing;
  }
}
