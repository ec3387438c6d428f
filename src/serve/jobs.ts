/**
 * The service's jobs: each one a runner job (`startJob`, its id as `spec.jobId`, so its ledger and audit
 * records live in the store), queued in order with a bound on how many run at once. A job's sessions are
 * read from its spooled file and its outcomes appended to a JSON Lines file (flat memory); its manifest
 * lets a restart list it, and run again the jobs that had not finished (their ledger skips what is done).
 */
import { once } from 'node:events';
import { createWriteStream, mkdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CognigyResetError } from '../errors.js';
import { LatencyHistogram } from '../reset/latency-histogram.js';
import { outcomeLine, type ResetOutcome } from '../reset/outcome.js';
import { startJob } from '../runner/start-job.js';
import type { JobSpec, JobSummary } from '../runner/types.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import { createSeenIds, type Store } from '../store/index.js';
import type { TargetField } from '../transports/transport.js';
import type { TenantConfig } from './config.js';
import {
  errorOf,
  FINISHED,
  JOB_STATES,
  jobView,
  latencyOf,
  type JobState,
  type ServiceJob,
} from './job-model.js';
import { readManifests, uploadPath, writeManifest, type JobManifest } from './job-files.js';
import { RecentLatency } from './recent-latency.js';
import type { JobFields } from './job-spec.js';
import { fileSource } from './targets.js';

/** How often followers get a status while a job runs. */
const STATUS_EVERY_MS = 500;

export interface JobManagerOptions {
  maxRunning: number;
  /** Where each job's ledger and audit records go: the service's store, kept open. */
  store: Store;
  /** Where jobs' manifests, sessions and outcome files live. */
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
  idempotency?: { slot: string; fingerprint: string } | undefined;
}

export class JobManager {
  readonly #jobs = new Map<string, ServiceJob>();
  readonly #queue: ServiceJob[] = [];
  /** API key id + Idempotency-Key → the request's fingerprint and its job (Stripe scopes keys per account). */
  readonly #idempotent = new Map<string, { fingerprint: string; jobId: string }>();
  #running = 0;
  #closing = false;

  constructor(readonly options: JobManagerOptions) {
    mkdirSync(options.dir, { recursive: true });
  }

  /** Where jobs' files live: a job's sessions go to `uploadPath(dir, id)` before `add`. */
  get dir(): string {
    return this.options.dir;
  }

  newId(): string {
    return `job_${randomUUID().replace(/-/g, '')}`;
  }

  /** Queues a job whose spec is checked and whose sessions are spooled; it starts when a slot is free. */
  add(input: NewJob): ServiceJob {
    const job = this.#job(input.id, input.fields, input.actor, input.required, new Date().toISOString());
    job.spec = input.spec;
    job.tenantConfig = input.tenant;
    job.bot = input.spec.botId;
    job.counts.total = input.total;
    this.#remember(job, input.idempotency);
    this.#save(job);
    this.#queue.push(job);
    this.#pump();
    return job;
  }

  /**
   * Lists the jobs of earlier runs, and queues again, in their order, those that had not finished;
   * `build` rebuilds a spec from the tenant's current config (a job whose tenant is gone fails).
   */
  restore(
    tenants: ReadonlyMap<string, TenantConfig>,
    build: (tenant: TenantConfig, fields: JobFields, id: string, actor: string) => JobSpec,
  ): void {
    const manifests = readManifests(this.dir, (file) =>
      this.options.log.warn({ file }, 'unreadable job manifest'),
    );
    for (const m of manifests) {
      const job = this.#job(m.id, m.fields, m.actor, m.required, m.createdAt);
      Object.assign(job, { counts: m.counts, errors: m.errors, error: m.error, startedAt: m.startedAt });
      Object.assign(job, { finishedAt: m.finishedAt, cancelRequested: m.cancelRequested });
      this.#remember(job, m.idempotency);
      if (FINISHED.has(m.state)) {
        job.state = m.state;
        job.savedLatency = m.latencyMs;
        job.settle();
        continue;
      }
      try {
        const tenant = tenants.get(m.fields.tenant);
        if (tenant === undefined)
          throw new CognigyResetError(
            'CR_ERR_API_CONFIG',
            `tenant ${m.fields.tenant} is no longer configured`,
          );
        job.spec = build(tenant, m.fields, m.id, m.actor);
        job.tenantConfig = tenant;
        job.bot = job.spec.botId;
        job.counts = { total: m.total, reset: 0, verified: 0, failed: 0, skipped: 0 };
        job.errors = {};
        this.#queue.push(job);
      } catch (err) {
        job.error = errorOf(err);
        this.#finish(job, 'failed');
        job.settle();
      }
    }
    this.#pump();
  }

  /**
   * The job an earlier request with this Idempotency-Key created, when its fingerprint is this one's;
   * 422 when it is another's; undefined when the key is new.
   */
  replay(slot: string, fingerprint: string): ServiceJob | undefined {
    const earlier = this.#idempotent.get(slot);
    if (earlier === undefined) return undefined;
    if (earlier.fingerprint !== fingerprint)
      throw new CognigyResetError(
        'CR_ERR_API_IDEMPOTENCY',
        'this Idempotency-Key was used with another request',
      );
    return this.#jobs.get(earlier.jobId);
  }

  #remember(job: ServiceJob, idempotency: JobManifest['idempotency']): void {
    job.idempotency = idempotency;
    if (idempotency !== undefined)
      this.#idempotent.set(idempotency.slot, { fingerprint: idempotency.fingerprint, jobId: job.id });
  }

  get(id: string): ServiceJob | undefined {
    return this.#jobs.get(id);
  }

  /** Newest first, filtered. */
  list(filter: {
    tenants?: readonly string[];
    tenant?: string | undefined;
    state?: JobState | undefined;
  }): ServiceJob[] {
    return [...this.#jobs.values()]
      .reverse()
      .filter(
        (job) =>
          (filter.tenants === undefined ||
            filter.tenants.length === 0 ||
            filter.tenants.includes(job.tenant)) &&
          (filter.tenant === undefined || job.tenant === filter.tenant) &&
          (filter.state === undefined || job.state === filter.state),
      );
  }

  get counts(): Record<JobState, number> {
    const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
    for (const job of this.#jobs.values()) counts[job.state]++;
    return counts;
  }

  /** A queued job is cancelled at once; a running one takes no new session and its in-flight finish. */
  cancel(job: ServiceJob): void {
    if (FINISHED.has(job.state))
      throw new CognigyResetError('CR_ERR_API_CONFLICT', `job ${job.id} is already ${job.state}`);
    job.cancelRequested = true;
    if (job.state === 'queued') {
      this.#queue.splice(this.#queue.indexOf(job), 1);
      this.#finish(job, 'cancelled');
      job.settle();
      return;
    }
    job.handle?.stop();
    this.#save(job);
    this.#tell(job, 'status');
  }

  /**
   * Stops taking work: running jobs take no new session and those in flight finish; they and the queued
   * ones stay unfinished in their manifests, and run again on the next start.
   */
  async close(): Promise<void> {
    this.#closing = true;
    const running = [...this.#jobs.values()].filter((job) => job.state === 'running');
    for (const job of running) job.handle?.stop();
    await Promise.all(running.map((job) => job.finished));
    // Followers of the jobs left queued are told the stream ends: the server can close.
    for (const job of this.#jobs.values()) {
      this.#tell(job, 'done');
      job.followers.clear();
    }
  }

  #job(id: string, fields: JobFields, actor: string, required: TargetField[], createdAt: string): ServiceJob {
    let settle!: () => void;
    const finished = new Promise<void>((resolve) => (settle = resolve));
    const job: ServiceJob = {
      id,
      tenant: fields.tenant,
      bot: fields.bot ?? '',
      actor,
      fields,
      required,
      createdAt,
      startedAt: null,
      finishedAt: null,
      state: 'queued',
      spec: undefined,
      tenantConfig: undefined,
      counts: { total: 0, reset: 0, verified: 0, failed: 0, skipped: 0 },
      errors: {},
      latency: new LatencyHistogram(),
      recent: new RecentLatency(),
      savedLatency: undefined,
      error: null,
      cancelRequested: false,
      idempotency: undefined,
      handle: undefined,
      outcomesPath: join(this.dir, `${id}.outcomes.jsonl`),
      finished,
      settle,
      followers: new Set(),
    };
    this.#jobs.set(id, job);
    return job;
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
    const spec = job.spec!;
    job.state = 'running';
    job.startedAt = new Date().toISOString();
    this.#save(job);
    // Appended: a job run again after a restart adds to what its first run wrote.
    const out = createWriteStream(job.outcomesPath, { flags: 'a' });
    const handle = startJob(spec, fileSource(uploadPath(this.dir, job.id), job.counts.total, job.required), {
      credentials: job.tenantConfig!.credentials,
      log: this.options.log.child({ jobId: job.id }),
      store: this.options.store,
      metrics: this.options.metrics,
      // A session listed twice is reset once; the set lives in a temporary file, flat in memory.
      seen: createSeenIds,
    });
    job.handle = handle;
    this.#tell(job, 'status');
    const timer = setInterval(() => this.#tell(job, 'status'), STATUS_EVERY_MS);
    let final: JobState = 'failed';
    try {
      for await (const event of handle.events()) {
        if (event.type !== 'outcome') continue;
        this.#count(job, event.outcome);
        if (!out.write(`${JSON.stringify(outcomeLine(event.outcome))}\n`)) await once(out, 'drain');
      }
      const summary = await handle.done;
      final = this.#stateOf(job, summary);
      if (summary.fatal !== null) job.error = summary.fatal;
    } catch (err) {
      job.error = errorOf(err);
      this.options.log.warn({ jobId: job.id, code: job.error.code }, 'job failed');
    } finally {
      clearInterval(timer);
      // The outcomes are complete on disk before anyone is told the job finished.
      await new Promise<void>((resolve) => out.end(resolve));
    }
    if (this.#closing && !job.cancelRequested && final !== 'succeeded') {
      // Stopped by the service's own stop: left unfinished, it runs again on the next start.
      job.state = 'queued';
      this.#save(job);
      this.#tell(job, 'status');
      this.#tell(job, 'done');
      job.followers.clear();
      return;
    }
    this.#finish(job, final);
  }

  #stateOf(job: ServiceJob, summary: JobSummary): JobState {
    if (summary.fatal === null && summary.failed === 0 && !summary.interrupted) return 'succeeded';
    return job.cancelRequested ? 'cancelled' : 'failed';
  }

  #count(job: ServiceJob, outcome: ResetOutcome): void {
    job.counts[outcome.outcome]++;
    if (outcome.verified) job.counts.verified++;
    if (outcome.outcome !== 'skipped') {
      job.latency.record(outcome.latencyMs);
      job.recent.record(outcome.latencyMs);
    }
    if (outcome.error !== null) job.errors[outcome.error.code] = (job.errors[outcome.error.code] ?? 0) + 1;
  }

  #finish(job: ServiceJob, state: JobState): void {
    job.state = state;
    job.finishedAt = new Date().toISOString();
    this.#save(job);
    this.#tell(job, 'status');
    this.#tell(job, 'done');
    job.followers.clear();
  }

  #save(job: ServiceJob): void {
    try {
      writeManifest(this.dir, {
        version: 1,
        id: job.id,
        fields: job.fields,
        actor: job.actor,
        createdAt: job.createdAt,
        total: job.counts.total,
        required: job.required,
        state: job.state,
        startedAt: job.startedAt,
        finishedAt: job.finishedAt,
        counts: job.counts,
        errors: job.errors,
        latencyMs: latencyOf(job),
        error: job.error,
        cancelRequested: job.cancelRequested,
        idempotency: job.idempotency,
      });
    } catch (err) {
      this.options.log.error({ jobId: job.id, err: errorOf(err) }, 'job manifest not written');
    }
  }

  #tell(job: ServiceJob, event: string): void {
    if (job.followers.size === 0) return;
    const data = jobView(job);
    for (const follower of job.followers) follower(event, data);
  }
}
