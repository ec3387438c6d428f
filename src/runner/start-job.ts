/**
 * `startJob(spec, targets, deps)`: a job as a library object. It owns, once and in one place, the
 * transport, the pipeline, the durable side (`durable.ts`: state, claim, writer, audit, outbox), the
 * job's logs, its events, and the teardown order; the CLI and the service only build the spec, hand over
 * the targets, and read the handle.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Logger } from 'pino';
import type { BulkSummary, BulkTarget } from '../reset/bulk.js';
import { controllerId } from '../reset/flow-control/shared.js';
import { CHANNELS, type DepthCutMessage, type DoneMessage, type PaceCutMessage } from '../reset/events.js';
import type { DepthLimiter } from '../reset/flow-control/depth-limiter.js';
import type { ResetOutcome } from '../reset/outcome.js';
import { createResetter, type Resetter } from '../reset/resetter.js';
import { retryPolicyFor } from '../model/retry-policy.js';
import type { SeenIds } from '../reset/seen-ids.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import type { Store } from '../store/port.js';
import type { WebhookDeliverer, WebhookStats } from '../sinks/webhook.js';
import { createTransport } from '../transports/create.js';
import { BackoffGate } from '../util/backoff-gate.js';
import { openDurable, type Durable } from './durable.js';
import { EventQueue } from './event-queue.js';
import { Teardown } from './teardown.js';
import { depthFor, depthSummary, poolFor } from './depth.js';
import { pacerFor, paceSummary } from './pace.js';
import type {
  Credentials,
  JobCounts,
  JobEvent,
  JobHandle,
  JobSpec,
  JobStatus,
  JobSummary,
  JobTargets,
} from './types.js';

export type { JobTargets } from './types.js';

export interface StartJobDeps {
  credentials: Credentials;
  log: Logger;
  /**
   * Where the job, its outcomes and audit records go: a store the caller opened and keeps open (a
   * service's), or its location, opened and closed for this job. Undefined keeps nothing.
   */
  store?: Store | string | undefined;
  /** Fed with this job's messages only; the caller serves or writes it. */
  metrics?: ResetMetrics | undefined;
  /** The sessions taken so far, for duplicates; @default in memory. */
  seen?: (() => SeenIds) | undefined;
  /** Ends the run at once with this reason (a run that can no longer settle by itself). */
  halt?: AbortSignal | undefined;
  /**
   * The ledger job input item `index` is recorded under, when the input spans several (a service
   * replica's chunks of a job): each is opened when its first item is looked up, and settled with
   * `JobHandle.settleLedger` or at the end. @default `spec.ledgerId ?? spec.jobId`
   */
  ledgerOf?: ((index: number) => string) | undefined;
  /**
   * A deliverer that stands for the life of the caller (a service's, one per webhook URL): the run writes
   * its events to the outbox and wakes it, instead of delivering them itself and draining at its end.
   * Its URL must be `spec.sinks.webhook.url`.
   */
  webhook?: WebhookDeliverer | undefined;
}

/** Events a reader has not taken yet before the job waits for it. */
const EVENT_QUEUE = 256;
/** The window `status().rate` is measured over. */
const RATE_WINDOW_MS = 5000;

export function startJob(spec: JobSpec, targets: JobTargets, deps: StartJobDeps): JobHandle {
  const stopController = new AbortController();
  const abortController = new AbortController();
  // Every reset in flight listens on these signals.
  setMaxListeners(0, stopController.signal, abortController.signal);
  // One-off runs get an id of their own: channel messages and metrics carry it. A run over a ledger of
  // its own (a chunk of a job) is told apart by it: two chunks of one job may run in one process.
  const channelId = spec.ledgerId ?? spec.jobId ?? `run-${randomUUID()}`;
  const queue = new EventQueue<JobEvent>(EVENT_QUEUE);
  const counts: JobCounts = { done: 0, reset: 0, failed: 0, skipped: 0 };
  const samples: [number, number][] = [[performance.now(), 0]];
  let state: JobStatus['state'] = 'running';
  let resetter: Resetter | undefined;
  let opened: Durable | undefined;
  const depth: DepthLimiter = depthFor(spec);

  const done = run().finally(() => {
    state = 'done';
    queue.end();
  });
  // The summary is read through `done`; a caller that only reads events must not see an unhandled rejection.
  done.catch(() => undefined);

  async function run(): Promise<JobSummary> {
    const gate = new BackoffGate();
    // Another run took the job's lease: this one ends at once, its reason the summary's fatal error.
    const lost = new AbortController();
    const halt = deps.halt === undefined ? lost.signal : AbortSignal.any([deps.halt, lost.signal]);
    const credentials = deps.credentials;
    const transport = createTransport(
      spec,
      { tokens: () => credentials.tokens(), apiKey: credentials.apiKey, urlToken: credentials.urlToken },
      { gate, dryRun: spec.dryRun, pool: poolFor(spec, depth) },
    );
    resetter = createResetter({
      transport,
      gate,
      jobId: channelId,
      maxDurationSec: spec.maxDurationSec,
      ackTimeoutMs: spec.pipeline.ackTimeoutSec * 1000,
      verify: spec.pipeline.verify,
      verifyTimeoutMs: spec.pipeline.verifyTimeoutSec * 1000,
      retry: retryPolicyFor(spec.pipeline.maxAttempts),
      pacer: spec.dryRun ? undefined : pacerFor(spec),
      depth,
      plan: spec.plan,
    });
    const r = resetter;
    let durable: Durable;
    try {
      durable = await openDurable({
        spec,
        store: deps.store,
        ledgerOf: deps.ledgerOf,
        webhook: deps.webhook,
        onLost: (err) => lost.abort(err),
        transportName: r.transport.name,
        plan: r.plan,
        webhookToken: credentials.webhookToken,
        log: deps.log,
        metrics: deps.metrics,
      });
    } catch (err) {
      await r.close().catch(() => undefined);
      throw err;
    }
    opened = durable;
    const unsubscribeLogs = logChannels(deps.log, channelId, spec.jobId);
    let summary: BulkSummary | undefined;
    let seen: SeenIds | undefined;
    let failure: { error: unknown } | undefined;
    try {
      seen = deps.seen?.();
      if (!spec.dryRun) {
        deps.log.info(
          { url: spec.url, tenant: spec.tenant, botId: spec.botId, total: targets.total },
          'reset run starting',
        );
      }
      summary = await r.run(targets.batches(stopController.signal), {
        depth,
        stop: stopController.signal,
        signal: abortController.signal,
        halt,
        ledger: durable.job,
        persist: durable.persist,
        dryRun: spec.dryRun,
        maxUnreachable: spec.pipeline.maxUnreachable,
        seen,
        onOutcome: (outcome, index, target) => onOutcome(outcome, index, target),
      });
    } catch (error) {
      failure = { error };
    }
    // Teardown, in order; each step runs whatever the one before did.
    const teardown = new Teardown();
    const step = (run: () => unknown): Promise<void> => teardown.step(run);
    await step(() => seen?.close?.());
    unsubscribeLogs();
    await step(() => r.close());
    const complete =
      summary !== undefined && !summary.interrupted && summary.fatal === null && summary.failed === 0;
    const closed = await durable.close(complete);
    const late = teardown.error ?? closed.error;
    if (failure !== undefined) throw failure.error;
    return jobSummary(summary!, closed.analytics, late);
  }

  function onOutcome(outcome: ResetOutcome, index: number, target: BulkTarget): Promise<void> | undefined {
    counts.done++;
    counts[outcome.outcome]++;
    const now = performance.now();
    if (now - samples[samples.length - 1]![0] >= 250) {
      samples.push([now, counts.done]);
      while (samples.length > 2 && now - samples[1]![0] > RATE_WINDOW_MS) samples.shift();
    }
    const directive = spec.dryRun && outcome.error === null ? resetter!.pipeline.describe(target) : undefined;
    return queue.push({ type: 'outcome', jobId: spec.jobId ?? null, index, outcome, target, directive });
  }

  function jobSummary(summary: BulkSummary, analytics: WebhookStats | undefined, late: unknown): JobSummary {
    const r = resetter!;
    return {
      ...summary,
      jobId: spec.jobId ?? null,
      dryRun: spec.dryRun,
      transport: r.transport.name,
      cleared: [...r.plan.cleared],
      notCleared: [...r.plan.notClearable],
      flowControl: { ...paceSummary(r.pipeline.pacer), depth: depthSummary(depth) },
      analytics,
      lateError: late,
    };
  }

  function status(): JobStatus {
    const now = performance.now();
    const [since, doneThen] = samples[0]!;
    const seconds = (now - since) / 1000;
    const rate = seconds > 0 ? (counts.done - doneThen) / seconds : 0;
    const total = targets.total;
    const pacer = resetter?.pipeline.pacer;
    return {
      jobId: spec.jobId ?? null,
      state,
      counts: { ...counts },
      total,
      rate,
      etaSec: total === undefined || rate <= 0 ? undefined : Math.max(0, total - counts.done) / rate,
      pace: pacer?.rate(),
      controller: pacer === undefined ? undefined : controllerId(pacer),
      flowControl: {
        ...paceSummary(pacer),
        inFlightLimit: depth.limit ?? spec.pipeline.concurrency ?? 0,
      },
      depth: depth.limit,
      refused: pacer?.refusals,
    };
  }

  return {
    jobId: spec.jobId ?? null,
    status,
    events: () => queue.read(),
    stop: () => {
      if (state === 'running') state = 'stopping';
      stopController.abort();
    },
    abort: () => {
      if (state === 'running') state = 'stopping';
      stopController.abort();
      abortController.abort();
    },
    settleLedger: (id, complete) => opened?.settleLedger(id, complete) ?? Promise.resolve(),
    setPeers: (peers) => resetter?.pipeline.pacer?.setPeers?.(peers),
    done,
  };
}

/**
 * The job's debug and info lines: retries, failures, rate cuts, in-flight limit cuts; made only when they
 * would be written.
 */
function logChannels(log: Logger, channelId: string, jobId: string | undefined): () => void {
  const mine = (message: unknown): boolean => (message as { jobId?: string }).jobId === channelId;
  const onRetry = (message: unknown): void => {
    if (!mine(message) || !log.isLevelEnabled('debug')) return;
    const { sessionId, jobId: _job, ...rest } = message as { sessionId: string; jobId?: string };
    log.child({ sessionId, jobId }).debug(rest, 'retry');
  };
  const onDone = (message: unknown): void => {
    if (!mine(message) || !log.isLevelEnabled('info')) return;
    const { outcome } = message as DoneMessage;
    const child = log.child({ sessionId: outcome.sessionId, jobId, requestId: outcome.requestId });
    if (outcome.outcome === 'failed') {
      child.info(
        { code: outcome.error?.code, attempts: outcome.attempts, latencyMs: outcome.latencyMs },
        'reset failed',
      );
    } else {
      child.debug(
        {
          outcome: outcome.outcome,
          verified: outcome.verified,
          attempts: outcome.attempts,
          latencyMs: outcome.latencyMs,
        },
        'reset done',
      );
    }
  };
  const onPaceCut = (message: unknown): void => {
    if (!mine(message) || !log.isLevelEnabled('debug')) return;
    const { sessionId, code, rate } = message as PaceCutMessage;
    log.child({ sessionId, jobId }).debug({ code, rate: Math.round(rate) }, 'rate cut');
  };
  const onDepthCut = (message: unknown): void => {
    if (!mine(message) || !log.isLevelEnabled('debug')) return;
    const { sessionId, jobId: _job, ...cut } = message as DepthCutMessage;
    log
      .child({ sessionId, jobId })
      .debug(
        { ...cut, reason: 'the median latency of a round of answers passed the target' },
        'in-flight limit cut',
      );
  };
  const channels: [string | symbol, (message: unknown) => void][] = [
    [CHANNELS.retry.name, onRetry],
    [CHANNELS.done.name, onDone],
    [CHANNELS.paceCut.name, onPaceCut],
    [CHANNELS.depthCut.name, onDepthCut],
  ];
  for (const [name, listener] of channels) subscribe(name, listener);
  return () => {
    for (const [name, listener] of channels) unsubscribe(name, listener);
  };
}
