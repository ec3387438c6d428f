/**
 * The webhook deliverer a run (or a service, for the life of its process) posts outcome events with: its
 * failures logged (the first and each refusal at warn, the retries after at debug) and counted in the
 * metrics, with what it delivered and, read at each scrape, the outbox's backlog for its URL.
 */
import type { Logger } from 'pino';
import type { ResetMetrics } from '../sinks/prometheus.js';
import { WebhookDeliverer } from '../sinks/webhook.js';
import type { Store } from '../store/index.js';

export interface AnalyticsSinkOptions {
  url: string;
  token: string | undefined;
  batch?: number | undefined;
  log: Logger;
  metrics: ResetMetrics | undefined;
  /** A standing deliverer: delivery that stopped resumes after this long (see `WebhookOptions`). */
  resumeAfterMs?: number | undefined;
  /** The backlog the metrics show (null: not read); @default the outbox's count for the URL */
  pending?: (() => Promise<number | null>) | undefined;
}

export function analyticsDeliverer(store: Store, options: AnalyticsSinkOptions): WebhookDeliverer {
  const { log, metrics, resumeAfterMs } = options;
  let warned = false;
  const stopped =
    resumeAfterMs === undefined
      ? 'analytics delivery stopped for this run: the events wait in the outbox'
      : `analytics delivery stopped: the events wait in the outbox, and delivery resumes in ${resumeAfterMs / 1000} s`;
  const deliverer = new WebhookDeliverer(store, {
    url: options.url,
    token: options.token,
    ...(options.batch === undefined ? {} : { batchSize: options.batch }),
    resumeAfterMs,
    onDelivered: (events) => metrics?.analyticsDelivered(events),
    onFailure: ({ reason, retryable }) => {
      metrics?.analyticsFailed(retryable);
      const level = !retryable || !warned ? 'warn' : 'debug';
      warned = true;
      log[level]({ reason, retryable }, retryable ? 'analytics delivery failed; retrying' : stopped);
    },
  });
  // The state file cannot be read: the metrics leave the backlog out.
  const pending = options.pending ?? (() => deliverer.countPending().catch(() => null));
  metrics?.watchAnalytics(deliverer.urlSha256, pending);
  return deliverer;
}
