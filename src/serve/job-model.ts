/**
 * A service job as it is shown: its state and counts as the store has them (so that every replica
 * answers the same), what the answering replica adds of its own work (live rate, latency), and the view
 * the API returns. The store keeps what was asked in the record's `request`, how far it got in `progress`.
 */
import { CognigyResetError } from '../errors.js';
import type { LatencyHistogram } from '../reset/latency-histogram.js';
import type { JobHandle, JobStatus } from '../runner/types.js';
import type { ServiceJobIdempotency, ServiceJobRecord } from '../store/port.js';
import type { TargetField } from '../transports/transport.js';
import type { JobFields } from './job-spec.js';
import type { RecentFigures, RecentLatency } from './recent-latency.js';

export type JobState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const FINISHED: ReadonlySet<string> = new Set<JobState>(['succeeded', 'failed', 'cancelled']);
/** A job not yet ended: its chunks are run. Read against a stored record's state as well (a string). */
export const LIVE: ReadonlySet<string> = new Set<JobState>(['queued', 'running']);

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

/** A record's `request`: what any replica needs to run the job (its sessions are in its chunks). */
export interface JobRequest {
  fields: JobFields;
  bot: string;
  actor: string;
  total: number;
  required: TargetField[];
  /** How many chunks its sessions were written in (absent: a job made before chunks). */
  chunks?: number | undefined;
  /** Sessions listed more than once (each reported as skipped, CR_ERR_RESET_DUPLICATE). */
  duplicates?: number | undefined;
}

/** A record's `progress`. Counts are kept once the job succeeded; until then they are read from its ledgers. */
export interface JobProgress {
  startedAt: string | null;
  finishedAt: string | null;
  counts?: JobCounts | undefined;
  errors?: Record<string, number> | undefined;
  latencyMs?: Percentiles | undefined;
  error: { code: string; message: string } | null;
  cancelRequested: boolean;
  controller: string | null;
}

/** What this replica knows of a job it runs chunks of, and the store does not: latency and live figures. */
export interface LocalJob {
  latency: LatencyHistogram;
  /** The sessions that finished over the last second, for a plot over time. */
  recent: RecentLatency;
  /** The chunks of the job this replica runs now. */
  handles: Set<JobHandle>;
  /** The flow controller its last chunk drew on. */
  controller: string | null;
}

/**
 * What a job's view shows of this replica's own work on it: plain data, so that a replica whose jobs run
 * in a thread of their own hands it to the thread that answers the API.
 */
export interface LocalView {
  /** The status of each run of the job's chunks here now (none once they stopped). */
  statuses: JobStatus[];
  /** Over every session of the job this replica finished; undefined before the first. */
  latency: Percentiles | undefined;
  /** The sessions finished over the last second; null with no run. */
  recent: RecentFigures | null;
  controller: string | null;
}

/** A job's local figures as a view. */
export function localView(local: LocalJob): LocalView {
  const statuses = [...local.handles].map((handle) => handle.status());
  return {
    statuses,
    latency: local.latency.count === 0 ? undefined : percentilesOf(local.latency),
    recent: statuses.length === 0 ? null : local.recent.figures(),
    controller: local.controller,
  };
}

/** Where a job's chunks stand, across every replica. */
export interface ChunkView {
  total: number;
  done: number;
  leased: number;
  owners: string[];
}

/** A service job as the store has it now, with what this replica adds (`local`). */
export interface ServiceJob {
  id: string;
  tenant: string;
  bot: string;
  actor: string;
  fields: JobFields;
  required: TargetField[];
  total: number;
  /** Chunks its sessions were written in; undefined for a job made before chunks. */
  chunks: number | undefined;
  /** Sessions its input listed more than once. */
  duplicates: number;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  state: JobState;
  counts: JobCounts;
  errors: Record<string, number>;
  /** The percentiles the store keeps, for a job this replica did not run. */
  savedLatency: Percentiles | undefined;
  error: { code: string; message: string } | null;
  cancelRequested: boolean;
  /** The flow controller its last run drew on (`fc-N`): jobs on one engine and tenant share one. */
  controller: string | null;
  idempotency: ServiceJobIdempotency | null;
  chunkView: ChunkView | null;
  local: LocalView | undefined;
  /** The record it was read from. */
  record: ServiceJobRecord;
}

export function errorOf(err: unknown): { code: string; message: string } {
  return err instanceof CognigyResetError
    ? { code: err.code, message: err.message }
    : { code: 'CR_ERR_API_INTERNAL', message: 'the job failed' };
}

const round = (n: number, places = 1): number => Math.round(n * 10 ** places) / 10 ** places;

export function latencyOf(job: ServiceJob): Percentiles {
  return job.local?.latency ?? job.savedLatency ?? { p50: 0, p95: 0, p99: 0 };
}

export function percentilesOf(latency: LatencyHistogram): Percentiles {
  return {
    p50: round(latency.quantile(0.5)),
    p95: round(latency.quantile(0.95)),
    p99: round(latency.quantile(0.99)),
  };
}

export const zeroCounts = (total: number): JobCounts => ({
  total,
  reset: 0,
  verified: 0,
  failed: 0,
  skipped: 0,
});

/** A job as its record in the store says (counts as saved; the caller reads live ones). */
export function newJob(record: ServiceJobRecord): ServiceJob {
  const request = record.request as unknown as JobRequest;
  const progress = record.progress as unknown as Partial<JobProgress>;
  return {
    id: record.id,
    tenant: record.tenant,
    bot: request.bot,
    actor: request.actor,
    fields: request.fields,
    required: request.required,
    total: request.total,
    chunks: request.chunks,
    duplicates: request.duplicates ?? 0,
    createdAt: record.createdAt,
    startedAt: progress.startedAt ?? null,
    finishedAt: progress.finishedAt ?? null,
    state: record.state as JobState,
    counts: progress.counts ?? zeroCounts(request.total),
    errors: progress.errors ?? {},
    savedLatency: progress.latencyMs,
    error: progress.error ?? null,
    cancelRequested: progress.cancelRequested ?? false,
    controller: progress.controller ?? null,
    idempotency: record.idempotency,
    chunkView: null,
    local: undefined,
    record,
  };
}

/** The record's progress, with these changes. */
export function progressWith(record: ServiceJobRecord, changes: Partial<JobProgress>): JobProgress {
  return { ...(record.progress as unknown as JobProgress), ...changes };
}

/** A job as the API shows it: no secret, nothing of the spec but what the caller gave. */
export function jobView(job: ServiceJob): Record<string, unknown> {
  const statuses = job.state === 'running' ? (job.local?.statuses ?? []) : [];
  const first = statuses[0];
  const done = job.counts.reset + job.counts.failed + job.counts.skipped;
  // The rate of the chunks this replica runs: each replica answers for its own work.
  const rate = statuses.reduce((sum, status) => sum + status.rate, 0);
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
    done,
    rate: round(rate),
    etaSec: first === undefined || rate <= 0 ? null : round(Math.max(0, job.total - done) / rate),
    pace: first?.pace === undefined ? null : round(first.pace),
    flowController: first?.controller ?? job.local?.controller ?? job.controller,
    latencyMs: latencyOf(job),
    errors: { ...job.errors },
    error: job.error,
    cancelRequested: job.cancelRequested,
    recent: first === undefined ? null : (job.local?.recent ?? null),
    flowControl: first?.flowControl ?? null,
    chunks: job.chunkView,
  };
}
