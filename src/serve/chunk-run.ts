/**
 * One claimed chunk of a service job, run by `startJob` with the job's spec: the job's id in its audit
 * records, events and metrics; the chunk's own ledger (`ledgerId`), so that a chunk taken over from a
 * replica that died resumes as a job does. While it runs, a heartbeat extends the claim with the outcomes
 * written since the last one; a claim lost to another owner stops the run at once. At the
 * end it is finished with its last outcomes, or left to another run. (The worker stops the chunks of a
 * job cancelled or failed anywhere.)
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isCognigyResetError } from '../errors.js';
import { outcomeLine } from '../reset/outcome.js';
import { startJob } from '../runner/start-job.js';
import type { JobSpec } from '../runner/types.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import type { ClaimedJobChunk, Store } from '../store/index.js';
import type { TenantConfig } from './config.js';
import { chunkTargets, ledgerIdOf } from './job-chunks.js';
import { errorOf, progressWith, type JobRequest, type LocalJob } from './job-model.js';

export type BuildSpec = (
  tenant: TenantConfig,
  fields: JobRequest['fields'],
  id: string,
  actor: string,
) => JobSpec;

export interface ChunkContext {
  store: Store;
  owner: string;
  leaseMs: number;
  log: Logger;
  metrics?: ResetMetrics | undefined;
  tenants: ReadonlyMap<string, TenantConfig>;
  build: BuildSpec;
  /** What this replica keeps of the job: its latency, its running chunks. */
  local(jobId: string): LocalJob;
  /** The replica stops taking work: a chunk it stopped is left for another run. */
  closing(): boolean;
}

/**
 * How a chunk's run ended: `finished` (the chunk is done; `fatal`: its run's failure, or null), `left`
 * (unfinished, its claim still this owner's: the replica's close releases it, or it lapses), `lost`
 * (another owner took the claim over).
 */
export type ChunkEnd =
  { end: 'finished'; fatal: { code: string; message: string } | null } | { end: 'left' | 'lost' };

const LIVE = new Set(['queued', 'running']);

export async function runChunk(chunk: ClaimedJobChunk, ctx: ChunkContext): Promise<ChunkEnd> {
  const { store, owner, leaseMs } = ctx;
  const { jobId, chunkNo } = chunk;
  const log = ctx.log.child({ jobId, chunk: chunkNo });
  const finish = async (
    outcomes: string,
    fatal: { code: string; message: string } | null,
  ): Promise<ChunkEnd> =>
    (await store.finishJobChunk(jobId, chunkNo, { owner, outcomes, error: fatal }))
      ? { end: 'finished', fatal }
      : { end: 'lost' };

  const record = await store.getServiceJob(jobId);
  // Cancelled or failed since the claim: the chunk is done with, a resume opens it again.
  if (record === undefined || !LIVE.has(record.state)) return finish('', null);
  const request = record.request as unknown as JobRequest;
  const tenant = ctx.tenants.get(record.tenant);
  if (tenant === undefined)
    return finish('', {
      code: 'CR_ERR_API_CONFIG',
      message: `tenant ${record.tenant} is no longer configured`,
    });
  let spec: JobSpec;
  try {
    spec = {
      ...ctx.build(tenant, request.fields, jobId, request.actor),
      ledgerId: ledgerIdOf(jobId, chunkNo),
    };
  } catch (err) {
    return finish('', errorOf(err));
  }
  if (chunk.claims > 0)
    log.info({ previousOwner: chunk.previousOwner, claims: chunk.claims }, 'chunk taken over');

  // Claimed while the replica began to stop: its close gives the claim up.
  if (ctx.closing()) return { end: 'left' };
  const { targets, seen } = chunkTargets(chunk);
  const handle = startJob(spec, targets, {
    credentials: tenant.credentials,
    log,
    store,
    metrics: ctx.metrics,
    seen,
  });
  const local = ctx.local(jobId);
  local.handles.add(handle);
  if (ctx.closing()) handle.stop();
  local.controller = handle.status().controller ?? local.controller;
  // The job's first claim starts it.
  if (record.state === 'queued')
    await store
      .updateServiceJob(jobId, {
        state: 'running',
        // A cancel that landed since the job was read stays.
        from: ['queued'],
        progress: {
          ...progressWith(record, {
            startedAt: new Date().toISOString(),
            controller: local.controller,
          }),
        },
      })
      .catch((err: unknown) => log.warn({ err: errorOf(err) }, 'job state not written'));
  let buffer: string[] = [];
  let lost = false;

  const beat = async (): Promise<void> => {
    const outcomes = buffer.join('');
    buffer = [];
    let held: boolean;
    try {
      held = await store.heartbeatJobChunk(jobId, chunkNo, { owner, leaseMs, outcomes });
    } catch (err) {
      // Tried again at the next beat, with what this one carried.
      buffer.unshift(outcomes);
      log.warn({ err: errorOf(err) }, 'chunk heartbeat not written');
      return;
    }
    if (!held) {
      lost = true;
      log.warn('chunk claim lost to another owner: stopping at once');
      handle.abort();
    }
  };
  const beats = new AbortController();
  const beating = (async () => {
    const every = Math.min(leaseMs / 3, 1000);
    for (;;) {
      try {
        await delay(every, undefined, { signal: beats.signal });
      } catch {
        return;
      }
      await beat();
      if (lost) return;
    }
  })();

  let fatal: { code: string; message: string } | null = null;
  let complete = false;
  let refused = false;
  try {
    for await (const event of handle.events()) {
      if (event.type !== 'outcome') continue;
      recordLatency(local, event.outcome);
      buffer.push(`${JSON.stringify(outcomeLine(event.outcome))}\n`);
    }
    const summary = await handle.done;
    fatal = summary.fatal;
    complete = !summary.interrupted;
    local.controller = handle.status().controller ?? local.controller;
  } catch (err) {
    // The ledger's lease of a run that died on another host still holds: the claim is left to lapse,
    // and the chunk is claimed again once it has.
    refused = isCognigyResetError(err) && err.code === 'CR_ERR_STATE_JOB_RUNNING';
    fatal = errorOf(err);
    log[refused ? 'info' : 'warn'](
      { err: fatal },
      refused ? 'chunk ledger still held elsewhere' : 'chunk failed',
    );
  } finally {
    local.handles.delete(handle);
    beats.abort();
    await beating;
  }
  if (lost) return { end: 'lost' };
  if (refused) return { end: 'left' };
  if (ctx.closing() && !complete && fatal === null) {
    // Stopped by this replica's close: what it did is written, and the chunk left for another replica
    // or the next start.
    await beat();
    return lost ? { end: 'lost' } : { end: 'left' };
  }
  // Done, failed, or stopped because the job ended (a chunk of a job resumed meanwhile is no longer this
  // owner's: the finish is refused, and the chunk runs again).
  return finish(buffer.join(''), fatal);
}

function recordLatency(local: LocalJob, outcome: { outcome: string; latencyMs: number }): void {
  if (outcome.outcome === 'skipped') return;
  local.latency.record(outcome.latencyMs);
  local.recent.record(outcome.latencyMs);
}
