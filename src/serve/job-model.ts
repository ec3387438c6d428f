/**
 * A service job as it is held and shown: its state, counts, and the view the API returns; and how it is
 * kept in the store (`ServiceJobRecord`: what was asked in `request`, how far it got in `progress`).
 */
import { CognigyResetError } from '../errors.js';
import { LatencyHistogram } from '../reset/latency-histogram.js';
import type { JobHandle, JobSpec } from '../runner/types.js';
import type { ServiceJobIdempotency, ServiceJobRecord, Store } from '../store/port.js';
import type { TargetField } from '../transports/transport.js';
import type { TenantConfig } from './config.js';
import type { JobFields } from './job-spec.js';
import { RecentLatency } from './recent-latency.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const FINISHED = new Set<JobState>(['succeeded', 'failed', 'cancelled']);

export interface JobCounts {
  total: number;
  reset: number;
  verified: number;
  failed: number;
  skipped: number;
}
export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

/** A record's `request`: what a restart needs to run the job again (its sessions are in its upload). */
export interface JobRequest {
  fields: JobFields;
  bot: string;
  actor: string;
  total: number;
  required: TargetField[];
}

/** A record's `progress`. */
export interface JobProgress {
  startedAt: string | null;
  finishedAt: string | null;
  counts: JobCounts;
  errors: Record<string, number>;
  latencyMs: Percentiles;
  error: { code: string; message: string } | null;
  cancelRequested: boolean;
  controller: string | null;
}

export interface ServiceJob {
  id: string;
  tenant: string;
  bot: string;
  actor: string;
  fields: JobFields;
  required: TargetField[];
  total: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  state: JobState;
  /** Undefined for a job that is not run by this process now. */
  spec: JobSpec | undefined;
  tenantConfig: TenantConfig | undefined;
  counts: JobCounts;
  errors: Record<string, number>;
  latency: LatencyHistogram;
  /** The sessions that finished over the last second, for a plot over time. */
  recent: RecentLatency;
  /** The percentiles the store keeps, for a job this process did not run. */
  savedLatency: Percentiles | undefined;
  error: { code: string; message: string } | null;
  cancelRequested: boolean;
  /** The flow controller its last run drew on (`fc-N`): jobs on one engine and tenant share one. */
  controller: string | null;
  idempotency: ServiceJobIdempotency | null;
  handle: JobHandle | undefined;
  /** Settles once the job's run ended (or it was cancelled while queued). */
  finished: Promise<void>;
  settle: () => void;
  followers: Set<(event: string, data: unknown) => void>;
  /** The job's writes to the store, in order. */
  saved: Promise<void>;
}

export function errorOf(err: unknown): { code: string; message: string } {
  return err instanceof CognigyResetError
    ? { code: err.code, message: err.message }
    : { code: 'CR_ERR_API_INTERNAL', message: 'the job failed' };
}

const round = (n: number, places = 1): number => Math.round(n * 10 ** places) / 10 ** places;

export function latencyOf(job: ServiceJob): Percentiles {
  if (job.savedLatency !== undefined && job.latency.count === 0) return job.savedLatency;
  return {
    p50: round(job.latency.quantile(0.5)),
    p95: round(job.latency.quantile(0.95)),
    p99: round(job.latency.quantile(0.99)),
  };
}

export const zeroCounts = (total: number): JobCounts => ({
  total,
  reset: 0,
  verified: 0,
  failed: 0,
  skipped: 0,
});

/** A job as held in memory: new, or as its record in the store says. */
export function newJob(record: ServiceJobRecord): ServiceJob {
  const request = record.request as unknown as JobRequest;
  const progress = record.progress as unknown as Partial<JobProgress>;
  let settle!: () => void;
  const finished = new Promise<void>((resolve) => (settle = resolve));
  return {
    id: record.id,
    tenant: record.tenant,
    bot: request.bot,
    actor: request.actor,
    fields: request.fields,
    required: request.required,
    total: request.total,
    createdAt: record.createdAt,
    startedAt: progress.startedAt ?? null,
    finishedAt: progress.finishedAt ?? null,
    state: record.state as JobState,
    spec: undefined,
    tenantConfig: undefined,
    counts: progress.counts ?? zeroCounts(request.total),
    errors: progress.errors ?? {},
    latency: new LatencyHistogram(),
    recent: new RecentLatency(),
    savedLatency: progress.latencyMs,
    error: progress.error ?? null,
    cancelRequested: progress.cancelRequested ?? false,
    controller: progress.controller ?? null,
    idempotency: record.idempotency,
    handle: undefined,
    finished,
    settle,
    followers: new Set(),
    saved: Promise.resolve(),
  };
}

export function requestOf(job: ServiceJob): JobRequest {
  return { fields: job.fields, bot: job.bot, actor: job.actor, total: job.total, required: job.required };
}

export function progressOf(job: ServiceJob): JobProgress {
  return {
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    counts: job.counts,
    errors: job.errors,
    latencyMs: latencyOf(job),
    error: job.error,
    cancelRequested: job.cancelRequested,
    controller: job.controller,
  };
}

/** A job as the API shows it: no secret, nothing of the spec but what the caller gave. */
export function jobView(job: ServiceJob): Record<string, unknown> {
  const status = job.state === 'running' ? job.handle?.status() : undefined;
  return {
    id: job.id,
    state: job.state,
    tenant: job.tenant,
    bot: job.bot,
    actor: job.actor,
    dryRun: job.fields.dryRun ?? false,
    reason: job.fields.reason ?? null,
    selector: job.fields.selector ?? null,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    counts: { ...job.counts },
    done: job.counts.reset + job.counts.failed + job.counts.skipped,
    rate: round(status?.rate ?? 0),
    etaSec: status?.etaSec === undefined ? null : round(status.etaSec),
    pace: status?.pace === undefined ? null : round(status.pace),
    flowController: status?.controller ?? job.controller,
    latencyMs: latencyOf(job),
    errors: { ...job.errors },
    error: job.error,
    cancelRequested: job.cancelRequested,
    recent: status === undefined ? null : job.recent.figures(),
    flowControl: status?.flowControl ?? null,
  };
}

/** Listing the unfinished jobs at start, this many a page. */
const RESTORE_PAGE = 500;

/** The jobs left running or queued by an earlier process, those that were running first, oldest first. */
export async function unfinishedJobs(store: Store): Promise<ServiceJobRecord[]> {
  const unfinished: ServiceJobRecord[] = [];
  for (const state of ['running', 'queued'] as const) {
    const newestFirst: ServiceJobRecord[] = [];
    for (let after: string | undefined; ;) {
      const page = await store.listServiceJobs({ state, limit: RESTORE_PAGE, after });
      newestFirst.push(...page);
      if (page.length < RESTORE_PAGE) break;
      after = page[page.length - 1]!.id;
    }
    unfinished.push(...newestFirst.reverse());
  }
  return unfinished;
}
