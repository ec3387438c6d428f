/** A service job as it is held and shown: its state, counts, and the view the API returns. */
import { CognigyResetError } from '../errors.js';
import type { LatencyHistogram } from '../reset/latency-histogram.js';
import type { JobHandle, JobSpec } from '../runner/types.js';
import type { TargetField } from '../transports/transport.js';
import type { TenantConfig } from './config.js';
import type { JobManifest } from './job-files.js';
import type { JobFields } from './job-spec.js';
import type { RecentLatency } from './recent-latency.js';

export type JobState = JobManifest['state'];
export const JOB_STATES: readonly JobState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const FINISHED = new Set<JobState>(['succeeded', 'failed', 'cancelled']);
export interface ServiceJob {
  id: string;
  tenant: string;
  bot: string;
  actor: string;
  fields: JobFields;
  required: TargetField[];
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  state: JobState;
  /** Undefined for a job that cannot run (finished before a restart, or its tenant is gone). */
  spec: JobSpec | undefined;
  tenantConfig: TenantConfig | undefined;
  counts: JobManifest['counts'];
  errors: Record<string, number>;
  latency: LatencyHistogram;
  /** The sessions that finished over the last second, for a plot over time. */
  recent: RecentLatency;
  /** The percentiles kept in the manifest of a job that finished before a restart. */
  savedLatency: JobManifest['latencyMs'] | undefined;
  error: { code: string; message: string } | null;
  cancelRequested: boolean;
  idempotency: JobManifest['idempotency'];
  handle: JobHandle | undefined;
  outcomesPath: string;
  /** Settles once the job's run ended (or it was cancelled while queued). */
  finished: Promise<void>;
  settle: () => void;
  followers: Set<(event: string, data: unknown) => void>;
}

export function errorOf(err: unknown): { code: string; message: string } {
  return err instanceof CognigyResetError
    ? { code: err.code, message: err.message }
    : { code: 'CR_ERR_API_INTERNAL', message: 'the job failed' };
}

const round = (n: number, places = 1): number => Math.round(n * 10 ** places) / 10 ** places;

export function latencyOf(job: ServiceJob): JobManifest['latencyMs'] {
  if (job.savedLatency !== undefined && job.latency.count === 0) return job.savedLatency;
  return {
    p50: round(job.latency.quantile(0.5)),
    p95: round(job.latency.quantile(0.95)),
    p99: round(job.latency.quantile(0.99)),
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
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    counts: { ...job.counts },
    done: job.counts.reset + job.counts.failed + job.counts.skipped,
    rate: round(status?.rate ?? 0),
    etaSec: status?.etaSec === undefined ? null : round(status.etaSec),
    pace: status?.pace === undefined ? null : round(status.pace),
    latencyMs: latencyOf(job),
    errors: { ...job.errors },
    error: job.error,
    cancelRequested: job.cancelRequested,
    recent: status === undefined ? null : job.recent.figures(),
    flowControl: status?.flowControl ?? null,
  };
}
