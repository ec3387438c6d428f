/**
 * One run of a service job: `startJob` with the job's id as `spec.jobId` (so its ledger and audit records
 * live in the store), its sessions read from its spooled file, its outcomes appended to a JSON Lines file
 * (flat memory), its counts kept as the outcomes come.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Logger } from 'pino';
import { outcomeLine, type ResetOutcome } from '../reset/outcome.js';
import { startJob } from '../runner/start-job.js';
import type { JobSummary } from '../runner/types.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import { createSeenIds, type Store } from '../store/index.js';
import { outcomesPath, uploadPath } from './job-files.js';
import { errorOf, type JobState, type ServiceJob } from './job-model.js';
import { fileSource } from './targets.js';

/** How often followers get a status while a job runs. */
const STATUS_EVERY_MS = 500;

export interface RunContext {
  store: Store;
  dir: string;
  log: Logger;
  metrics?: ResetMetrics | undefined;
  /** Tells the job's followers (`status`, `done`). */
  tell(job: ServiceJob, event: string): void;
}

/** Runs the job (its spec and tenant set) until it ends or is stopped; resolves with how it ended. */
export async function runJob(job: ServiceJob, ctx: RunContext): Promise<JobState> {
  const spec = job.spec!;
  // Appended: a job run again (after a restart, or resumed) adds to what its earlier runs wrote.
  const out = createWriteStream(outcomesPath(ctx.dir, job.id), { flags: 'a' });
  const handle = startJob(spec, fileSource(uploadPath(ctx.dir, job.id), job.total, job.required), {
    credentials: job.tenantConfig!.credentials,
    log: ctx.log.child({ jobId: job.id }),
    store: ctx.store,
    metrics: ctx.metrics,
    // A session listed twice is reset once; the set lives in a temporary file, flat in memory.
    seen: createSeenIds,
  });
  job.handle = handle;
  ctx.tell(job, 'status');
  const timer = setInterval(() => ctx.tell(job, 'status'), STATUS_EVERY_MS);
  let final: JobState = 'failed';
  try {
    for await (const event of handle.events()) {
      if (event.type !== 'outcome') continue;
      count(job, event.outcome);
      if (!out.write(`${JSON.stringify(outcomeLine(event.outcome))}\n`)) await once(out, 'drain');
    }
    const summary = await handle.done;
    final = stateOf(job, summary);
    if (summary.fatal !== null) job.error = summary.fatal;
  } catch (err) {
    job.error = errorOf(err);
    ctx.log.warn({ jobId: job.id, code: job.error.code }, 'job failed');
  } finally {
    clearInterval(timer);
    job.controller = handle.status().controller ?? job.controller;
    // The outcomes are complete on disk before anyone is told the job finished.
    await new Promise<void>((resolve) => out.end(resolve));
  }
  return final;
}

function stateOf(job: ServiceJob, summary: JobSummary): JobState {
  if (summary.fatal === null && summary.failed === 0 && !summary.interrupted) return 'succeeded';
  return job.cancelRequested ? 'cancelled' : 'failed';
}

function count(job: ServiceJob, outcome: ResetOutcome): void {
  job.counts[outcome.outcome]++;
  if (outcome.verified) job.counts.verified++;
  if (outcome.outcome !== 'skipped') {
    job.latency.record(outcome.latencyMs);
    job.recent.record(outcome.latencyMs);
  }
  if (outcome.error !== null) job.errors[outcome.error.code] = (job.errors[outcome.error.code] ?? 0) + 1;
}
