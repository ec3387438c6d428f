/**
 * What a job makes durable, opened and closed in one place, through the store port: the job's claim (a
 * lease, extended by a heartbeat while the run lasts) and ledger, the batched writer of outcomes and
 * audit records, and the webhook outbox with its deliverer. Opening fails before anything is sent;
 * closing runs every step in order, whatever fails, and reports the first failure after the summary.
 */
import type { Logger } from 'pino';
import type { AuditContext } from '../audit/record.js';
import type { ResetOutcome } from '../reset/outcome.js';
import type { ResetMetrics } from '../sinks/prometheus.js';
import { outboxEvent, type WebhookDeliverer, type WebhookStats } from '../sinks/webhook.js';
import { analyticsDeliverer } from './analytics-sink.js';
import { isCognigyResetError } from '../errors.js';
import {
  DEFAULT_LEASE_MS,
  type JobClaimHandle,
  openStore,
  type OutcomeWriter,
  type Store,
} from '../store/index.js';
import { reasonWithSelector } from '../select/index.js';
import { redactUrl } from '../util/redact.js';
import { describeSpecSelector } from './select-targets.js';
import { LedgerSet } from './ledger-set.js';
import { Teardown } from './teardown.js';
import type { JobSpec } from './types.js';

/** The run's ledger: one job's claim, or a set of ledger jobs the input spans (`ledger-set.ts`). */
export type RunLedger = Pick<JobClaimHandle, 'lookup' | 'reserve' | 'heartbeat' | 'finish' | 'release'>;

export interface Durable {
  job: RunLedger | undefined;
  /** Makes an outcome durable; undefined when nothing is kept. */
  persist: ((outcome: ResetOutcome, index: number) => Promise<void>) | undefined;
  /** Finishes and releases one ledger of a run whose input spans several (no-op otherwise). */
  settleLedger(id: string, complete: boolean): Promise<void>;
  /** Closes in order; resolves with the webhook's figures and the first failure of a step. */
  close(complete: boolean): Promise<{ analytics: WebhookStats | undefined; error: unknown }>;
}

export interface DurableContext {
  spec: JobSpec;
  /** A store the caller opened and keeps (a service's), or where to open one for this job alone. */
  store: Store | string | undefined;
  /** The ledger job each input index is recorded under, when the input spans several; see `LedgerSet`. */
  ledgerOf?: ((index: number) => string) | undefined;
  transportName: string;
  plan: { cleared: readonly string[]; notClearable: readonly string[] };
  webhookToken: string | undefined;
  log: Logger;
  metrics: ResetMetrics | undefined;
  /** A standing deliverer for the spec's webhook URL, owned by the caller (see `StartJobDeps.webhook`). */
  webhook?: WebhookDeliverer | undefined;
  /** Another run took the job's lease over: this one must stop at once. */
  onLost(err: unknown): void;
}

const NOTHING: Durable = {
  job: undefined,
  persist: undefined,
  settleLedger: () => Promise.resolve(),
  close: () => Promise.resolve({ analytics: undefined, error: undefined }),
};

export async function openDurable(ctx: DurableContext): Promise<Durable> {
  const { spec, log, metrics } = ctx;
  const selection = spec.selector === undefined ? undefined : describeSpecSelector(spec.selector);
  const webhookSpec = spec.sinks.webhook;
  const useState = !spec.dryRun && (spec.audit || spec.jobId !== undefined || webhookSpec !== undefined);
  if (!useState || ctx.store === undefined) return NOTHING;
  const owned = typeof ctx.store === 'string';
  const db: Store = typeof ctx.store === 'string' ? await openStore(ctx.store) : ctx.store;
  let job: RunLedger | undefined;
  let ledgers: LedgerSet | undefined;
  let writer: OutcomeWriter | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    // Before the job is claimed, and before anything is sent: a file SQLite opened read-only says so here.
    await db.checkWritable();
    if (spec.jobId !== undefined) {
      // A chunk of a larger job keeps a ledger of its own; its audit records still name the job.
      const jobId = spec.ledgerId ?? spec.jobId;
      const settings = {
        transport: ctx.transportName,
        // A stable name where the URL changes between runs; a Socket endpoint's path is its URLToken:
        // the job keeps its origin only.
        ...(spec.engine === undefined
          ? { url: redactUrl(spec.url, { path: spec.transport !== 'cognigy-socket' }) }
          : { engine: spec.engine }),
        tenant: spec.tenant,
        botId: spec.botId,
        plan: ctx.plan.cleared,
        maxDurationSec: spec.maxDurationSec,
        verify: spec.pipeline.verify,
        ...(selection === undefined ? {} : { selector: selection }),
      };
      if (ctx.ledgerOf !== undefined) {
        ledgers = new LedgerSet({ db, ledgerOf: ctx.ledgerOf, settings, leaseMs: DEFAULT_LEASE_MS, log });
        job = ledgers;
      } else {
        const claim = await db.openJob({ jobId, leaseMs: DEFAULT_LEASE_MS, settings });
        log.info({ jobId, resumed: claim.resumed, state: db.location }, 'job opened');
        if (claim.takenOver !== undefined) {
          const { host, pid, since } = claim.takenOver;
          log.warn(
            { jobId, heldBy: { host, pid, since } },
            'job claimed by a run on another host, which cannot be checked: taken over',
          );
        }
        job = claim;
      }
      // The lease is extended while the run lasts; a run that lost it stops at once. A heartbeat that
      // could not be written is tried again at the next one.
      const claim = job;
      heartbeat = setInterval(() => {
        claim.heartbeat().catch((err: unknown) => {
          if (!isCognigyResetError(err) || err.code !== 'CR_ERR_STATE_JOB_LOST') {
            log.warn({ jobId, err: (err as Error).message }, 'job lease not extended');
            return;
          }
          clearInterval(heartbeat);
          ctx.onLost(err);
        });
      }, DEFAULT_LEASE_MS / 3).unref();
    }
    // Nothing is sent before the writer holds the store open.
    writer = await db.writer();
  } catch (err) {
    clearInterval(heartbeat);
    await job?.release().catch(() => undefined);
    if (owned) await db.close();
    throw err;
  }
  const stateWriter = writer;
  /** Once the state file is closed, the metrics show the backlog it was closed with. */
  let closed = false;
  let pendingAtClose: number | null = null;
  let webhook: WebhookDeliverer | undefined;
  let giveBack: (() => void) | undefined;
  /** A standing deliverer the caller owns (a service's): this run feeds it, and neither starts nor stops it. */
  const shared = webhookSpec === undefined ? undefined : ctx.webhook;
  if (webhookSpec !== undefined) {
    const deliverer: WebhookDeliverer =
      shared ??
      analyticsDeliverer(db, {
        url: webhookSpec.url,
        token: ctx.webhookToken,
        batch: webhookSpec.batch,
        log,
        metrics,
        pending: (): Promise<number | null> =>
          closed ? Promise.resolve(pendingAtClose) : deliverer.countPending().catch(() => null),
      });
    // While the writer thread commits, accepted events are deleted in its batches (see lendRemover).
    giveBack = deliverer.lendRemover((ids) => stateWriter.ack(ids));
    if (shared === undefined) deliverer.start();
    webhook = deliverer;
  }
  const auditContext: AuditContext | undefined = spec.audit
    ? {
        actor: spec.actor,
        // The selector that chose the sessions goes with the reason, as the CLI's `reset --flow` writes it.
        reason: selection === undefined ? (spec.reason ?? null) : reasonWithSelector(spec.reason, selection),
        jobId: spec.jobId ?? null,
        tenant: spec.tenant,
        botId: spec.botId,
        transport: ctx.transportName,
        notCleared: ctx.plan.notClearable,
      }
    : undefined;
  const jobId = spec.jobId;
  const ledgerId = spec.ledgerId ?? jobId;
  const persist = (outcome: ResetOutcome, index: number): Promise<void> => {
    const committed = stateWriter.append({
      outcome,
      job:
        ledgerId === undefined
          ? undefined
          : { jobId: ledgers === undefined ? ledgerId : ledgers.idOf(index), index },
      audit: auditContext,
      outbox:
        webhook === undefined
          ? undefined
          : outboxEvent(outcome, {
              urlSha256: webhook.urlSha256,
              jobId: jobId ?? null,
              tenant: spec.tenant,
              botId: spec.botId,
            }),
    });
    if (webhook !== undefined)
      void committed.then(
        () => webhook.notify(),
        () => undefined,
      );
    return committed;
  };

  const close = async (
    complete: boolean,
  ): Promise<{ analytics: WebhookStats | undefined; error: unknown }> => {
    const teardown = new Teardown();
    const step = (run: () => unknown): Promise<void> => teardown.step(run);
    // From here the deliverer deletes what it delivers itself: the writer must not be handed work while
    // it closes.
    giveBack?.();
    let written = true;
    await step(async () => {
      try {
        await stateWriter.close();
      } catch (err) {
        written = false;
        throw err;
      }
    });
    clearInterval(heartbeat);
    // A job whose last outcomes could not be committed is not finished: a later run resumes it.
    await step(() => job?.finish(complete && written));
    // Released even when finishing failed: a later run need not wait for the lease to expire.
    await step(() => job?.release());
    let analytics: WebhookStats | undefined;
    // The webhook drains before the metrics are written, so that they count what it delivered.
    if (webhook !== undefined && webhookSpec !== undefined && shared === undefined) {
      await step(async () => (analytics = await webhook.stop(Date.now() + webhookSpec.timeoutSec * 1000)));
      pendingAtClose = await webhook.countPending().catch(() => null);
    }
    closed = true;
    if (owned) await step(() => db.close());
    return { analytics, error: teardown.error };
  };
  const settleLedger = (id: string, complete: boolean): Promise<void> =>
    ledgers?.settle(id, complete) ?? Promise.resolve();
  return { job, persist, settleLedger, close };
}
