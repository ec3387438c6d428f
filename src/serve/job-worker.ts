/**
 * A replica's share of the work: it claims chunks of any replica's jobs from the store, up to
 * `maxRunning` at once, and runs each (`chunk-run.ts`). With none free it looks again after a short
 * wait, or at once when this replica makes or resumes a job. The replica that finishes a job's last
 * chunk sets the job's final state; a chunk that failed fatally fails its job at once, and the other
 * chunks of the job stop, wherever they run, as on a cancel. A tenant that posts outcome events to an
 * analytics webhook has one deliverer on each replica for as long as it runs: every replica's runs feed
 * the store's outbox, and the deliverers share its events by claims, so events a replica that died had
 * claimed go out once the claim lapses, whether or not a job still runs.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { LatencyHistogram } from '../reset/latency-histogram.js';
import { analyticsDeliverer } from '../runner/analytics-sink.js';
import type { WebhookDeliverer } from '../sinks/webhook.js';
import type { ClaimedJobChunk, ServiceJobRecord } from '../store/index.js';
import { JobShare, type ChunkContext } from './chunk-run.js';
import { liveCounts } from './job-counts.js';
import {
  FINISHED,
  LIVE,
  localView,
  newJob,
  percentilesOf,
  progressWith,
  type JobState,
  type LocalJob,
  type LocalView,
} from './job-model.js';
import { RecentLatency } from './recent-latency.js';

/** How often a replica with a free slot looks for a chunk to claim. */
const POLL_MS = 500;
/** How often a replica reads the state of the jobs it runs chunks of: a cancel anywhere stops them. */
const WATCH_MS = 250;
/** A standing analytics deliverer whose tracker refused a batch tries again after this long. */
const RESUME_DELIVERY_MS = 60_000;
/**
 * How long a replica whose credentials for a tenant the engine refused claims none of its chunks: the
 * other replicas look for chunks far more often, so a chunk it left that comes back to it has no taker.
 */
const REFUSED_TENANT_MS = 5000;
/** How long a replica that stops delivers what is left in the outbox, at most. */
const DRAIN_MS = 10_000;

export type WorkerOptions = Omit<
  ChunkContext,
  'owner' | 'local' | 'closing' | 'finished' | 'webhookOf' | 'credentialsRefused'
> & {
  maxRunning: number;
  /** @default newOwner() */
  owner?: string | undefined;
};

/** What a replica's job manager asks of its chunk runs, whether they run in its thread or in one of their own. */
export interface ChunkRunner {
  /** The replica's id in the store's claims. */
  readonly owner: string;
  /** Looks for chunks to claim now (a job was made or resumed here). */
  wake(): void;
  /** What the job's view shows of this replica's work on it; undefined when it ran none of it. */
  view(jobId: string): LocalView | undefined;
  /** Stops this replica's runs of the job's chunks now (a cancel): those in flight finish. */
  stop(jobId: string): void;
  /** Stops taking work, lets what is in flight finish, and gives the claims up. */
  close(): Promise<void>;
}

/** A replica's id in the store's claims: host, process, and a random part for two in one process. */
export function newOwner(): string {
  return `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
}

export class ChunkWorker implements ChunkRunner {
  readonly owner: string;
  readonly #options: WorkerOptions;
  readonly #context: ChunkContext;
  readonly #local = new Map<string, LocalJob>();
  readonly #running = new Set<Promise<void>>();
  /** The job runs of this replica, by job id: a chunk claimed for one of them joins it. */
  readonly #shares = new Map<string, JobShare>();
  #filling: Promise<void> | undefined;
  #again = false;
  #closing = false;
  readonly #timer: NodeJS.Timeout;
  readonly #watcher: NodeJS.Timeout;
  #watching = false;
  /** Each tenant's standing analytics deliverer, by tenant name. */
  readonly #deliverers = new Map<string, WebhookDeliverer>();
  /** The tenants this replica has a config for. */
  readonly #tenants: readonly string[];
  /** Tenants whose credentials the engine refused here, until when (ms since the epoch). */
  readonly #refused = new Map<string, number>();

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.owner = options.owner ?? newOwner();
    this.#tenants = [...options.tenants.keys()];
    for (const tenant of options.tenants.values()) {
      if (tenant.analyticsUrl === undefined) continue;
      const deliverer = analyticsDeliverer(options.store, {
        url: tenant.analyticsUrl,
        token: tenant.credentials.webhookToken,
        log: options.log.child({ tenant: tenant.name }),
        metrics: options.metrics,
        resumeAfterMs: RESUME_DELIVERY_MS,
      });
      deliverer.start();
      this.#deliverers.set(tenant.name, deliverer);
    }
    this.#context = {
      ...options,
      owner: this.owner,
      local: (jobId) => this.#localOf(jobId),
      closing: () => this.#closing,
      finished: (jobId, fatal) => this.#afterChunk(jobId, fatal),
      webhookOf: (tenant) => this.#deliverers.get(tenant),
      credentialsRefused: (tenant) => this.#refused.set(tenant, Date.now() + REFUSED_TENANT_MS),
    };
    this.#timer = setInterval(() => this.wake(), POLL_MS);
    this.#watcher = setInterval(() => void this.#watch(), WATCH_MS);
    this.wake();
  }

  view(jobId: string): LocalView | undefined {
    const local = this.#local.get(jobId);
    return local === undefined ? undefined : localView(local);
  }

  /** Every job this replica runs or ran chunks of, and not yet finished, with its view. */
  views(): [string, LocalView][] {
    return [...this.#local].map(([jobId, local]) => [jobId, localView(local)]);
  }

  stop(jobId: string): void {
    for (const handle of this.#local.get(jobId)?.handles ?? []) handle.stop();
  }

  wake(): void {
    if (this.#closing || this.#running.size >= this.#options.maxRunning) return;
    if (this.#filling !== undefined) {
      this.#again = true;
      return;
    }
    this.#filling = this.#fill().finally(() => (this.#filling = undefined));
  }

  /**
   * Stops taking work: running chunks take no new session, those in flight finish and their outcomes
   * are written; then the claims are given up, so another replica (or the next start) takes them at once.
   */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#timer);
    clearInterval(this.#watcher);
    await this.#filling;
    for (const local of this.#local.values()) for (const handle of local.handles) handle.stop();
    await Promise.all(this.#running);
    await this.#options.store.releaseJobChunks(this.owner).catch((err: unknown) => {
      this.#options.log.warn({ err: (err as Error).message }, 'chunk claims not released: they lapse');
    });
    // What the runs left in the outbox goes out now, within a bound; the rest waits for a replica.
    const deadline = Date.now() + DRAIN_MS;
    await Promise.all([...this.#deliverers.values()].map((deliverer) => deliverer.stop(deadline)));
  }

  /** Stops this replica's chunks of the jobs that were cancelled or failed, here or on another replica. */
  async #watch(): Promise<void> {
    if (this.#watching) return;
    this.#watching = true;
    try {
      for (const [jobId, local] of this.#local) {
        if (local.handles.size === 0) continue;
        const record = await this.#options.store.getServiceJob(jobId).catch(() => undefined);
        if (record === undefined || LIVE.has(record.state)) continue;
        for (const handle of local.handles) handle.stop();
      }
    } finally {
      this.#watching = false;
    }
  }

  async #fill(): Promise<void> {
    const { store, leaseMs, maxRunning, log } = this.#options;
    try {
      do {
        this.#again = false;
        while (!this.#closing && this.#running.size < maxRunning) {
          // Only chunks of the tenants this replica is configured for: the others are left to replicas
          // that are (a job of a tenant none has waits, queued, for one that has).
          const chunk = await store.claimJobChunk({ owner: this.owner, leaseMs, tenants: this.#claimable() });
          if (chunk === undefined) break;
          // A job this replica runs already takes the chunk into its run; one chunk a look, so that a
          // replica does not hoard a job's chunks.
          if (this.#shares.get(chunk.jobId)?.adopt(chunk) === true) break;
          const run: Promise<void> = this.#run(chunk).finally(() => {
            this.#running.delete(run);
            this.wake();
          });
          this.#running.add(run);
        }
      } while (this.#again && !this.#closing);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'no chunk claimed: trying again');
    }
  }

  /** The tenants this replica claims chunks of now: its own, but those whose credentials were refused lately. */
  #claimable(): string[] {
    const now = Date.now();
    for (const [tenant, until] of this.#refused) if (until <= now) this.#refused.delete(tenant);
    return this.#tenants.filter((tenant) => !this.#refused.has(tenant));
  }

  async #run(chunk: ClaimedJobChunk): Promise<void> {
    const { jobId } = chunk;
    const share = new JobShare(chunk, this.#context);
    this.#shares.set(jobId, share);
    try {
      await share.run();
    } catch (err) {
      // The store failed under the run: its claims lapse, and another run takes them on.
      this.#options.log.warn({ jobId, err: (err as Error).message }, 'job share failed');
    } finally {
      if (this.#shares.get(jobId) === share) this.#shares.delete(jobId);
    }
    const local = this.#local.get(jobId);
    if (local !== undefined && local.handles.size === 0) {
      const record = await this.#options.store.getServiceJob(jobId).catch(() => undefined);
      if (record === undefined || FINISHED.has(record.state)) this.#local.delete(jobId);
    }
  }

  /** After a chunk finished: the job fails at once on a fatal error, and ends with its last chunk. */
  async #afterChunk(jobId: string, fatal: { code: string; message: string } | null): Promise<void> {
    const { store } = this.#options;
    const record = await store.getServiceJob(jobId);
    if (record === undefined || !LIVE.has(record.state)) return;
    if (fatal !== null) {
      await this.#end(record, 'failed', { error: fatal });
      return;
    }
    const job = newJob(record);
    const summary = await store.jobChunkSummary(jobId);
    if (job.chunks === undefined || summary.done < job.chunks) return;
    job.state = 'succeeded';
    const live = await liveCounts(store, job);
    if (summary.error !== null || live.counts.failed > 0) {
      await this.#end(record, 'failed', { error: summary.error });
      return;
    }
    // Every chunk is done and no claim holds: the counts are final, kept with the job.
    await this.#end(record, 'succeeded', { counts: live.counts, errors: live.errors });
  }

  /** Sets a job's final state; two replicas that both get here write the same. */
  async #end(
    record: ServiceJobRecord,
    state: JobState,
    changes: Parameters<typeof progressWith>[1],
  ): Promise<void> {
    const local = this.#local.get(record.id);
    const latency = local?.latency;
    const ended = await this.#options.store.updateServiceJob(record.id, {
      state,
      // A cancel, or another replica's end, that landed since the job was read stays.
      from: [...LIVE],
      progress: {
        ...progressWith(record, {
          ...changes,
          finishedAt: new Date().toISOString(),
          ...(local?.controller == null ? {} : { controller: local.controller }),
          ...(latency === undefined || latency.count === 0 ? {} : { latencyMs: percentilesOf(latency) }),
        }),
      },
    });
    if (ended) this.#options.log.info({ jobId: record.id, state }, 'job ended');
  }

  #localOf(jobId: string): LocalJob {
    let local = this.#local.get(jobId);
    if (local === undefined) {
      local = {
        latency: new LatencyHistogram(),
        recent: new RecentLatency(),
        handles: new Set(),
        controller: null,
      };
      this.#local.set(jobId, local);
    }
    return local;
  }
}
