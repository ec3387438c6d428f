/**
 * The service's jobs, kept in the store (`ServiceJobRecord`, and the job's sessions as chunks), so that
 * every replica on one store lists them, answers the same for each, cancels and resumes any of them, and
 * shares their work: this replica's `ChunkWorker` claims chunks of any job. Nothing is restored at start:
 * the chunks of unfinished jobs are there to claim.
 */
import { mkdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { CognigyResetError } from '../errors.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import type { ServiceJobIdempotency, ServiceJobRecord, Store } from '../store/index.js';
import type { TargetField } from '../transports/transport.js';
import type { BuildSpec } from './chunk-run.js';
import type { TenantConfig } from './config.js';
import { writeChunks } from './job-chunks.js';
import { LiveCountsReader } from './job-counts.js';
import {
  FINISHED,
  newJob,
  progressWith,
  zeroCounts,
  type JobProgress,
  type JobRequest,
  type JobState,
  type ServiceJob,
} from './job-model.js';
import { buildJobSpec, type JobFields } from './job-spec.js';
import { ChunkWorker, type ChunkRunner } from './job-worker.js';

export type { BuildSpec } from './chunk-run.js';

/** How long a replica's claim on a chunk lasts without a heartbeat, by default. */
export const DEFAULT_CHUNK_LEASE_MS = 30_000;

export interface JobManagerOptions {
  /** Chunks this replica runs at once. */
  maxRunning: number;
  /** Where the jobs, their chunks, ledgers and audit records go: the service's store, kept open. */
  store: Store;
  /** Where uploads are spooled while a job is made. */
  dir: string;
  log: Logger;
  metrics?: ResetMetrics | undefined;
  /** The tenants jobs run against: a chunk's spec is built from its tenant's config here. */
  tenants: ReadonlyMap<string, TenantConfig>;
  /** @default buildJobSpec */
  build?: BuildSpec | undefined;
  /** A chunk claim's lease, in milliseconds. @default DEFAULT_CHUNK_LEASE_MS */
  leaseMs?: number | undefined;
  /**
   * Runs this replica's chunks elsewhere (a `JobThread`), built from the same config: the options above
   * that only the runs need are then not used. @default a `ChunkWorker` in this thread
   */
  runner?: ChunkRunner | undefined;
}

export interface NewJob {
  id: string;
  fields: JobFields;
  actor: string;
  bot: string;
  total: number;
  required: TargetField[];
  idempotency: ServiceJobIdempotency | null;
  /** What `writeChunks` wrote. */
  chunks: number;
  duplicates: number;
}

export class JobManager {
  readonly #worker: ChunkRunner;
  readonly #stopping = new AbortController();
  readonly #counts: LiveCountsReader;
  #closed: Promise<void> | undefined;

  constructor(readonly options: JobManagerOptions) {
    mkdirSync(options.dir, { recursive: true });
    this.#counts = new LiveCountsReader(options.store);
    this.#worker =
      options.runner ??
      new ChunkWorker({
        store: options.store,
        maxRunning: options.maxRunning,
        leaseMs: options.leaseMs ?? DEFAULT_CHUNK_LEASE_MS,
        log: options.log,
        metrics: options.metrics,
        tenants: options.tenants,
        build: options.build ?? buildJobSpec,
      });
  }

  /** Where uploads are spooled: a job's sessions go to `uploadPath(dir, id)` before `writeChunks`. */
  get dir(): string {
    return this.options.dir;
  }

  /** This replica's id in the store's chunk claims. */
  get owner(): string {
    return this.#worker.owner;
  }

  /** Aborted once the service stops taking work: followers' streams end. */
  get stopping(): AbortSignal {
    return this.#stopping.signal;
  }

  get #store(): Store {
    return this.options.store;
  }

  newId(): string {
    return `job_${randomUUID().replace(/-/g, '')}`;
  }

  /** Writes a new job's spooled sessions to the store as chunks (before `add`). */
  writeChunks(
    id: string,
    spool: { path: string; total: number; required: readonly TargetField[] },
  ): Promise<{ chunks: number; duplicates: number }> {
    return writeChunks(this.#store, id, spool);
  }

  /**
   * Records a job whose spec is checked and whose chunks are written: from then on, any replica may
   * claim them. When an earlier request made a job with the same Idempotency-Key, that job is returned
   * instead (`replayed`; the chunks written for this one are never claimed), or the request refused when
   * it was another.
   */
  async add(input: NewJob): Promise<{ job: ServiceJob; replayed: boolean }> {
    const now = new Date().toISOString();
    const request: JobRequest = {
      fields: input.fields,
      bot: input.bot,
      actor: input.actor,
      total: input.total,
      required: input.required,
      chunks: input.chunks,
      duplicates: input.duplicates,
    };
    const progress: JobProgress = {
      startedAt: null,
      finishedAt: null,
      counts: zeroCounts(input.total),
      error: null,
      cancelRequested: false,
      controller: null,
    };
    const record: ServiceJobRecord = {
      id: input.id,
      tenant: input.fields.tenant,
      state: 'queued',
      createdAt: now,
      updatedAt: now,
      request: { ...request },
      progress: { ...progress },
      idempotency: input.idempotency,
    };
    const stored = await this.#store.createServiceJob(record);
    if (stored.id !== input.id)
      return { job: await this.#replayed(stored, input.idempotency!), replayed: true };
    this.#worker.wake();
    return { job: await this.#read(stored), replayed: false };
  }

  /** The job an earlier request with this Idempotency-Key made, when it was this request; else undefined. */
  async replay(idempotency: ServiceJobIdempotency): Promise<ServiceJob | undefined> {
    const earlier = await this.#store.findServiceJobByIdempotencyKey(idempotency.keyId, idempotency.key);
    return earlier === undefined ? undefined : this.#replayed(earlier, idempotency);
  }

  #replayed(earlier: ServiceJobRecord, idempotency: ServiceJobIdempotency): Promise<ServiceJob> {
    if (earlier.idempotency?.requestHash !== idempotency.requestHash)
      throw new CognigyResetError(
        'CR_ERR_API_IDEMPOTENCY',
        'this Idempotency-Key was used with another request',
      );
    return this.#read(earlier);
  }

  /** The job as the store has it now, with its counts; undefined when there is none. */
  async find(id: string): Promise<ServiceJob | undefined> {
    const record = await this.#store.getServiceJob(id);
    return record === undefined ? undefined : this.#read(record);
  }

  /** A page of jobs from the store, newest first. */
  async list(filter: {
    tenants: readonly string[];
    state?: JobState | undefined;
    limit: number;
    after?: string | undefined;
  }): Promise<ServiceJob[]> {
    const records = await this.#store.listServiceJobs(filter);
    return Promise.all(records.map((record) => this.#read(record)));
  }

  /** Jobs by state, from the store. */
  async counts(): Promise<Record<string, number>> {
    return this.#store.countServiceJobs();
  }

  /**
   * Cancels a job, whichever replica runs it: no chunk of it is claimed from now on, and every replica
   * running one stops it at its next heartbeat (those in flight finish).
   */
  async cancel(job: ServiceJob): Promise<ServiceJob> {
    if (FINISHED.has(job.state))
      throw new CognigyResetError('CR_ERR_API_CONFLICT', `job ${job.id} is already ${job.state}`);
    const cancelled = await this.#store.updateServiceJob(job.id, {
      state: 'cancelled',
      progress: {
        ...progressWith(job.record, { cancelRequested: true, finishedAt: new Date().toISOString() }),
      },
      from: ['queued', 'running'],
    });
    if (!cancelled) {
      // It ended (or was cancelled) on another replica since it was read.
      const now = await this.find(job.id);
      throw new CognigyResetError('CR_ERR_API_CONFLICT', `job ${job.id} is already ${now?.state ?? 'gone'}`);
    }
    // This replica's own chunks stop at once; the others' at their next heartbeat.
    this.#worker.stop(job.id);
    return (await this.find(job.id)) ?? job;
  }

  /**
   * Runs a failed or cancelled job again: its chunks are opened again, and each one's ledger skips the
   * sessions already done, and checks the state of those that may have been sent before anything is sent
   * to them. Refuses any other job, and one whose tenant is no longer configured.
   */
  async resume(job: ServiceJob): Promise<ServiceJob> {
    if ((job.state !== 'failed' && job.state !== 'cancelled') || job.chunks === undefined)
      throw new CognigyResetError(
        'CR_ERR_API_NOT_RESUMABLE',
        job.chunks === undefined
          ? `job ${job.id} was made by an earlier version of the service: it does not resume`
          : `job ${job.id} is ${job.state}: only a failed or cancelled job resumes`,
      );
    const tenant = this.options.tenants.get(job.tenant);
    if (tenant === undefined)
      throw new CognigyResetError('CR_ERR_API_CONFIG', `tenant ${job.tenant} is no longer configured`);
    (this.options.build ?? buildJobSpec)(tenant, job.fields, job.id, job.actor);
    // A replica still finishing the sessions it had in flight holds claims: reopened under it, its chunks
    // would run twice at once. The job resumes once every replica let go (its event stream has ended).
    if ((await this.#store.jobChunkSummary(job.id)).leased > 0)
      throw new CognigyResetError(
        'CR_ERR_API_NOT_RESUMABLE',
        `job ${job.id} is still stopping on a replica: resume it once its event stream has ended`,
      );
    // Opened before the job is queued: a claim never finds a queued job with every chunk done.
    await this.#store.reopenJobChunks(job.id);
    const queued = await this.#store.updateServiceJob(job.id, {
      state: 'queued',
      // Two resumes at once: one queues the job, the other is refused.
      from: ['failed', 'cancelled'],
      progress: {
        ...progressWith(job.record, {
          startedAt: null,
          finishedAt: null,
          counts: undefined,
          errors: undefined,
          latencyMs: undefined,
          error: null,
          cancelRequested: false,
        }),
      },
    });
    if (!queued)
      throw new CognigyResetError('CR_ERR_API_NOT_RESUMABLE', `job ${job.id} was resumed meanwhile`);
    this.#worker.wake();
    return (await this.find(job.id)) ?? job;
  }

  /**
   * Stops taking work: running chunks take no new session and those in flight finish; their claims are
   * given up, so another replica, or the next start, runs them on.
   */
  close(): Promise<void> {
    this.#stopping.abort();
    this.#closed ??= this.#worker.close();
    return this.#closed;
  }

  async #read(record: ServiceJobRecord): Promise<ServiceJob> {
    return this.#counts.withCounts(this.#snapshot(newJob(record)));
  }

  #snapshot(job: ServiceJob): ServiceJob {
    job.local = this.#worker.view(job.id);
    return job;
  }
}
