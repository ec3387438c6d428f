/**
 * The service's jobs: kept in the store (`ServiceJobRecord`), so that they are listed from it, a restart
 * runs on those that had not finished, and an Idempotency-Key outlives the process. This process holds in
 * memory only the jobs it runs or has queued: in order, with a bound on how many run at once
 * (`job-run.ts` runs one).
 */
import { mkdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { CognigyResetError } from '../errors.js';
import { LatencyHistogram } from '../reset/latency-histogram.js';
import type { JobSpec } from '../runner/types.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import type { ServiceJobIdempotency, ServiceJobRecord, Store } from '../store/index.js';
import type { TargetField } from '../transports/transport.js';
import type { TenantConfig } from './config.js';
import {
  errorOf,
  FINISHED,
  jobView,
  newJob,
  progressOf,
  requestOf,
  unfinishedJobs,
  zeroCounts,
  type JobState,
  type ServiceJob,
} from './job-model.js';
import { runJob } from './job-run.js';
import type { JobFields } from './job-spec.js';

export interface JobManagerOptions {
  maxRunning: number;
  /** Where the jobs, their ledgers and audit records go: the service's store, kept open. */
  store: Store;
  /** Where jobs' sessions and outcome files live. */
  dir: string;
  log: Logger;
  metrics?: ResetMetrics | undefined;
}

export interface NewJob {
  id: string;
  fields: JobFields;
  actor: string;
  tenant: TenantConfig;
  spec: JobSpec;
  total: number;
  required: TargetField[];
  idempotency: ServiceJobIdempotency | null;
}

export type BuildSpec = (tenant: TenantConfig, fields: JobFields, id: string, actor: string) => JobSpec;

export class JobManager {
  /** The jobs this process runs or has queued. */
  readonly #live = new Map<string, ServiceJob>();
  readonly #queue: ServiceJob[] = [];
  #running = 0;
  #closing = false;

  constructor(readonly options: JobManagerOptions) {
    mkdirSync(options.dir, { recursive: true });
  }

  /** Where jobs' files live: a job's sessions go to `uploadPath(dir, id)` before `add`. */
  get dir(): string {
    return this.options.dir;
  }

  get #store(): Store {
    return this.options.store;
  }

  newId(): string {
    return `job_${randomUUID().replace(/-/g, '')}`;
  }

  /**
   * Records a job whose spec is checked and whose sessions are spooled, and queues it. When an earlier
   * request made a job with the same Idempotency-Key, that job is returned instead (`replayed`), or the
   * request refused when it was another.
   */
  async add(input: NewJob): Promise<{ job: ServiceJob; replayed: boolean }> {
    const now = new Date().toISOString();
    const record: ServiceJobRecord = {
      id: input.id,
      tenant: input.fields.tenant,
      state: 'queued',
      createdAt: now,
      updatedAt: now,
      request: {
        fields: input.fields,
        bot: input.spec.botId,
        actor: input.actor,
        total: input.total,
        required: input.required,
      },
      progress: {},
      idempotency: input.idempotency,
    };
    const job = newJob(record);
    record.progress = { ...progressOf(job) };
    const stored = await this.#store.createServiceJob(record);
    if (stored.id !== input.id) return { job: this.#replayed(stored, input.idempotency!), replayed: true };
    job.spec = input.spec;
    job.tenantConfig = input.tenant;
    this.#live.set(job.id, job);
    this.#queue.push(job);
    this.#pump();
    return { job, replayed: false };
  }

  /** The job an earlier request with this Idempotency-Key made, when it was this request; else undefined. */
  async replay(idempotency: ServiceJobIdempotency): Promise<ServiceJob | undefined> {
    const earlier = await this.#store.findServiceJobByIdempotencyKey(idempotency.keyId, idempotency.key);
    return earlier === undefined ? undefined : this.#replayed(earlier, idempotency);
  }

  #replayed(earlier: ServiceJobRecord, idempotency: ServiceJobIdempotency): ServiceJob {
    if (earlier.idempotency?.requestHash !== idempotency.requestHash)
      throw new CognigyResetError(
        'CR_ERR_API_IDEMPOTENCY',
        'this Idempotency-Key was used with another request',
      );
    return this.#live.get(earlier.id) ?? newJob(earlier);
  }

  /** The job this process runs, or as the store has it; undefined when there is none. */
  async find(id: string): Promise<ServiceJob | undefined> {
    const live = this.#live.get(id);
    if (live !== undefined) return live;
    const record = await this.#store.getServiceJob(id);
    return this.#live.get(id) ?? (record === undefined ? undefined : newJob(record));
  }

  /** A page of jobs from the store, newest first; those this process runs as they are now. */
  async list(filter: {
    tenants: readonly string[];
    state?: JobState | undefined;
    limit: number;
    after?: string | undefined;
  }): Promise<ServiceJob[]> {
    const records = await this.#store.listServiceJobs(filter);
    return records.map((record) => this.#live.get(record.id) ?? newJob(record));
  }

  /** Jobs by state, from the store. */
  async counts(): Promise<Record<string, number>> {
    return this.#store.countServiceJobs();
  }

  /**
   * Queues again, in the order they were created, the jobs of earlier runs that had not finished;
   * `build` rebuilds a spec from the tenant's current config (a job whose tenant is gone fails).
   */
  async restore(tenants: ReadonlyMap<string, TenantConfig>, build: BuildSpec): Promise<void> {
    const unfinished = await unfinishedJobs(this.#store);
    for (const record of unfinished) {
      const job = newJob(record);
      job.state = 'queued';
      this.#live.set(job.id, job);
      try {
        this.#prepare(job, tenants, build);
        this.#queue.push(job);
      } catch (err) {
        job.error = errorOf(err);
        await this.#finish(job, 'failed');
      }
    }
    this.#pump();
  }

  /** A queued job is cancelled at once; a running one takes no new session and its in-flight finish. */
  async cancel(job: ServiceJob): Promise<void> {
    if (FINISHED.has(job.state))
      throw new CognigyResetError('CR_ERR_API_CONFLICT', `job ${job.id} is already ${job.state}`);
    if (!this.#live.has(job.id))
      throw new CognigyResetError('CR_ERR_API_CONFLICT', `job ${job.id} is not run by this service`);
    job.cancelRequested = true;
    if (job.state === 'queued') {
      this.#queue.splice(this.#queue.indexOf(job), 1);
      await this.#finish(job, 'cancelled');
      return;
    }
    job.handle?.stop();
    await this.#save(job);
    this.#tell(job, 'status');
  }

  /**
   * Runs a failed or cancelled job again: its ledger skips the sessions already done, and checks the
   * state of those that may have been sent before anything is sent to them. Refuses any other job.
   */
  async resume(
    job: ServiceJob,
    tenants: ReadonlyMap<string, TenantConfig>,
    build: BuildSpec,
  ): Promise<ServiceJob> {
    if (this.#live.has(job.id) || (job.state !== 'failed' && job.state !== 'cancelled'))
      throw new CognigyResetError(
        'CR_ERR_API_NOT_RESUMABLE',
        `job ${job.id} is ${this.#live.get(job.id)?.state ?? job.state}: only a failed or cancelled job resumes`,
      );
    const resumed = newJob({
      id: job.id,
      tenant: job.tenant,
      state: 'queued',
      createdAt: job.createdAt,
      updatedAt: job.createdAt,
      request: { ...requestOf(job) },
      progress: {},
      idempotency: job.idempotency,
    });
    this.#prepare(resumed, tenants, build);
    this.#live.set(resumed.id, resumed);
    await this.#save(resumed);
    this.#queue.push(resumed);
    this.#pump();
    return resumed;
  }

  /**
   * Stops taking work: running jobs take no new session and those in flight finish; they and the queued
   * ones stay unfinished in the store, and run again on the next start.
   */
  async close(): Promise<void> {
    this.#closing = true;
    const running = [...this.#live.values()].filter((job) => job.state === 'running');
    for (const job of running) job.handle?.stop();
    await Promise.all(running.map((job) => job.finished));
    // Followers of the jobs left queued are told the stream ends: the server can close.
    for (const job of this.#live.values()) {
      this.#tell(job, 'done');
      job.followers.clear();
      await job.saved;
    }
  }

  /** A job's spec from its tenant's config now; throws when the tenant is gone or the spec is refused. */
  #prepare(job: ServiceJob, tenants: ReadonlyMap<string, TenantConfig>, build: BuildSpec): void {
    const tenant = tenants.get(job.tenant);
    if (tenant === undefined)
      throw new CognigyResetError('CR_ERR_API_CONFIG', `tenant ${job.tenant} is no longer configured`);
    job.spec = build(tenant, job.fields, job.id, job.actor);
    job.tenantConfig = tenant;
    job.counts = zeroCounts(job.total);
    job.errors = {};
    job.error = null;
    job.latency = new LatencyHistogram();
    job.savedLatency = undefined;
  }

  #pump(): void {
    while (!this.#closing && this.#running < this.options.maxRunning && this.#queue.length > 0) {
      const job = this.#queue.shift()!;
      this.#running++;
      void this.#run(job).finally(() => {
        this.#running--;
        job.settle();
        this.#pump();
      });
    }
  }

  async #run(job: ServiceJob): Promise<void> {
    job.state = 'running';
    job.startedAt = new Date().toISOString();
    await this.#save(job);
    const final = await runJob(job, { ...this.options, tell: (j, event) => this.#tell(j, event) });
    if (this.#closing && !job.cancelRequested && final !== 'succeeded') {
      // Stopped by the service's own stop: left unfinished, it runs again on the next start.
      job.state = 'queued';
      await this.#save(job);
      this.#tell(job, 'status');
      this.#tell(job, 'done');
      job.followers.clear();
      return;
    }
    await this.#finish(job, final);
  }

  /** Ends a job: saved, its followers told, and no longer held by this process. */
  async #finish(job: ServiceJob, state: JobState): Promise<void> {
    job.state = state;
    job.finishedAt = new Date().toISOString();
    await this.#save(job);
    this.#live.delete(job.id);
    this.#tell(job, 'status');
    this.#tell(job, 'done');
    job.followers.clear();
    job.settle();
  }

  /** Writes the job's state to the store, after its earlier writes; a failure is logged. */
  #save(job: ServiceJob): Promise<void> {
    const update = { state: job.state, progress: { ...progressOf(job) } };
    job.saved = job.saved.then(async () => {
      try {
        await this.#store.updateServiceJob(job.id, update);
      } catch (err) {
        this.options.log.error({ jobId: job.id, err: errorOf(err) }, 'job state not written');
      }
    });
    return job.saved;
  }

  #tell(job: ServiceJob, event: string): void {
    if (job.followers.size === 0) return;
    const data = jobView(job);
    for (const follower of job.followers) follower(event, data);
  }
}
