/**
 * Prometheus metrics of a reset run, fed by the pipeline's diagnostics channels (the core does not know
 * this module). Served while a run lasts (`--metrics-port`) and written at the end (`--metrics-file`).
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { dirname, resolve } from 'node:path';
import { rename, rm, writeFile } from 'node:fs/promises';
import {
  AggregatorRegistry,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type MetricObjectWithValues,
  type MetricValue,
} from 'prom-client';
import { CHANNELS, type DoneMessage } from '../reset/events.js';
import { CognigyResetError } from '../errors.js';
import { listenOn } from '../util/listen.js';

export class ResetMetrics {
  readonly registry = new Registry();
  readonly #latency: Histogram;
  readonly #outcomes: Counter;
  readonly #errors: Counter;
  readonly #retries: Counter;
  readonly #polls: Counter;
  readonly #inFlight: Gauge;
  readonly #retried: Counter;
  readonly #recovered: Counter;
  readonly #recoveryRate: Gauge;
  #finished = 0;
  #recoveredCount = 0;
  #listeners: [string | symbol, (message: unknown) => void][];

  /** `jobId`: count only what that job's pipeline publishes (a process may run several jobs). */
  constructor(options: { jobId?: string | undefined } = {}) {
    const registers = [this.registry];
    this.#latency = new Histogram({
      name: 'cognigy_reset_latency_seconds',
      help: 'Time from compiling the directive to the verified (or failed) outcome.',
      labelNames: ['outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.#outcomes = new Counter({
      name: 'cognigy_reset_outcomes_total',
      help: 'Sessions finished, by outcome (reset, failed, skipped) and whether verified.',
      labelNames: ['outcome', 'verified'],
      registers,
    });
    this.#errors = new Counter({
      name: 'cognigy_reset_errors_total',
      help: 'Failed sessions by error code.',
      labelNames: ['code'],
      registers,
    });
    this.#retries = new Counter({
      name: 'cognigy_reset_retries_total',
      help: 'Attempts that failed and were retried, by error code.',
      labelNames: ['code'],
      registers,
    });
    this.#polls = new Counter({
      name: 'cognigy_reset_verification_polls_total',
      help: 'State checks made while verifying.',
      labelNames: ['flow_state'],
      registers,
    });
    this.#inFlight = new Gauge({ name: 'cognigy_reset_in_flight', help: 'Resets in progress.', registers });
    this.#retried = new Counter({
      name: 'cognigy_reset_retried_sessions_total',
      help: 'Sessions that needed more than one attempt.',
      registers,
    });
    this.#recovered = new Counter({
      name: 'cognigy_reset_recovered_sessions_total',
      help: 'Sessions verified after at least one retry.',
      registers,
    });
    this.#recoveryRate = new Gauge({
      name: 'cognigy_reset_recovery_rate',
      help: 'Share of the sessions finished (reset or failed) that were verified after at least one retry.',
      registers,
    });
    this.#listeners = [
      [CHANNELS.start.name, () => this.#inFlight.inc()],
      [CHANNELS.retry.name, (m) => this.#retries.inc({ code: (m as { code: string }).code })],
      [
        CHANNELS.poll.name,
        (m) => this.#polls.inc({ flow_state: (m as { flowState: string }).flowState.slice(0, 32) }),
      ],
      [CHANNELS.done.name, (m) => this.#done(m as DoneMessage)],
    ];
    if (options.jobId !== undefined) {
      // One job's registry: the messages of another job in this process are not counted here.
      const jobId = options.jobId;
      this.#listeners = this.#listeners.map(([name, listener]) => [
        name,
        (m: unknown) => {
          if ((m as { jobId?: string }).jobId === jobId) listener(m);
        },
      ]);
    }
    for (const [name, listener] of this.#listeners) subscribe(name, listener);
  }

  #done({ outcome, settledBy }: DoneMessage): void {
    if (settledBy === 'pipeline') this.#inFlight.dec();
    this.#outcomes.inc({ outcome: outcome.outcome, verified: String(outcome.verified) });
    if (outcome.error !== null) this.#errors.inc({ code: outcome.error.code });
    if (outcome.outcome !== 'skipped') {
      this.#latency.observe({ outcome: outcome.outcome }, outcome.latencyMs / 1000);
      this.#finished++;
    }
    if (outcome.retried) {
      this.#retried.inc();
      if (outcome.verified) {
        this.#recovered.inc();
        this.#recoveredCount++;
      }
    }
    this.#recoveryRate.set(this.#finished === 0 ? 0 : this.#recoveredCount / this.#finished);
  }

  #analyticsDelivered: Counter | undefined;
  #analyticsFailures: Counter | undefined;

  /**
   * Adds the flow control's metrics, read at each scrape: the send rate in force, the in-flight limit,
   * and the SEND frames the engine refused as over its rate (undefined: not known, left out).
   */
  watchFlow(
    read: () => { rate?: number | undefined; limit?: number | undefined; refused?: number | undefined },
  ): void {
    const registers = [this.registry];
    new Gauge({
      name: 'cognigy_reset_send_rate',
      help: 'SEND frames per second the flow control allows now (+Inf: no limit).',
      registers,
      collect() {
        const rate = read().rate;
        if (rate !== undefined) this.set(rate);
      },
    });
    new Gauge({
      name: 'cognigy_reset_in_flight_limit',
      help: 'Resets the flow control allows in flight now.',
      registers,
      collect() {
        const limit = read().limit;
        if (limit !== undefined) this.set(limit);
      },
    });
    let counted = 0;
    new Counter({
      name: 'cognigy_reset_refused_sends_total',
      help: 'SEND frames the engine refused as over its rate (RATE_LIMITED, or 429).',
      registers,
      collect() {
        const refused = read().refused ?? counted;
        if (refused > counted) this.inc(refused - counted);
        counted = refused;
      },
    });
  }

  /** The outbox backlog of each webhook URL (by its hash), read at each scrape. */
  readonly #pending = new Map<string, () => number | null | Promise<number | null>>();

  /**
   * Adds the webhook sink's metrics, once per registry: events delivered, failed POSTs (by whether they are
   * retried), and the outbox's backlog. `pending` reads the backlog of the webhook `url` (by its hash) at
   * each scrape (null: it could not be read); a later run to the same URL takes its place, and the gauge
   * shows the sum over the URLs (a service posts each tenant's events to its own).
   */
  watchAnalytics(urlSha256: string, pending: () => number | null | Promise<number | null>): void {
    this.#pending.set(urlSha256, pending);
    if (this.#analyticsDelivered !== undefined) return;
    const registers = [this.registry];
    this.#analyticsDelivered = new Counter({
      name: 'cognigy_reset_analytics_events_delivered_total',
      help: 'Webhook events the tracker accepted (2xx).',
      registers,
    });
    this.#analyticsFailures = new Counter({
      name: 'cognigy_reset_analytics_post_failures_total',
      help: 'Webhook POSTs that failed, by whether they are retried (false: delivery stopped for the run).',
      labelNames: ['retryable'],
      registers,
    });
    const readers = this.#pending;
    new Gauge({
      name: 'cognigy_reset_analytics_events_pending',
      help: 'Webhook events waiting in the outbox for the webhook URLs of the runs.',
      registers,
      async collect() {
        const values = await Promise.all([...readers.values()].map(async (read) => read()));
        const known = values.filter((value): value is number => value !== null);
        if (known.length > 0) this.set(known.reduce((a, b) => a + b, 0));
      },
    });
  }

  analyticsDelivered(events: number): void {
    this.#analyticsDelivered?.inc(events);
  }

  analyticsFailed(retryable: boolean): void {
    this.#analyticsFailures?.inc({ retryable: String(retryable) });
  }

  readonly #sources: (() => Promise<MetricObjectWithValues<MetricValue<string>>[]>)[] = [];

  /**
   * Adds another registry's metrics (a thread's, as `getMetricsAsJSON` gives them) to this one's at each
   * scrape: a metric both have is summed.
   */
  addSource(read: () => Promise<MetricObjectWithValues<MetricValue<string>>[]>): void {
    this.#sources.push(read);
  }

  async text(): Promise<string> {
    if (this.#sources.length === 0) return this.registry.metrics();
    const parts = await Promise.all([
      this.registry.getMetricsAsJSON(),
      ...this.#sources.map((read) => read()),
    ]);
    return AggregatorRegistry.aggregate(parts).metrics();
  }

  /** Serves `GET /metrics` on host:port (0 picks a free port); resolves with the URL. */
  /** `field` names the setting that chose the port, in a listen error. */
  async serve(host: string, port: number, field = 'port'): Promise<{ url: string; server: Server }> {
    const server = createServer((req, res) => {
      if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?') === true)) {
        void this.text().then((body) => {
          res.writeHead(200, { 'content-type': this.registry.contentType });
          res.end(body);
        });
      } else {
        res.writeHead(404).end();
      }
    });
    await listenOn(server, port, host, field);
    const address = server.address() as { port: number };
    server.unref();
    return { url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}/metrics`, server };
  }

  /** Writes the exposition text atomically (a temporary file renamed into place). */
  async writeFile(path: string): Promise<void> {
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      await writeFile(tmp, await this.text());
      await rename(tmp, path);
    } catch (cause) {
      await rm(tmp, { force: true });
      const code = (cause as NodeJS.ErrnoException).code;
      throw new CognigyResetError(
        'CR_ERR_CLI_OUTPUT',
        `cannot write --metrics-file ${path}: ${code ?? (cause as Error).message}`,
        {
          cause,
        },
      );
    }
  }

  close(): void {
    for (const [name, listener] of this.#listeners) unsubscribe(name, listener);
  }
}

/**
 * Refuses, before anything is sent, a `--metrics-file` that could never be written at the end of the run:
 * a directory, or a path whose directory does not exist.
 */
export function checkMetricsFile(path: string): void {
  const full = resolve(path);
  const problem = existsSync(full)
    ? statSync(full).isDirectory()
      ? 'it is a directory'
      : undefined
    : existsSync(dirname(full)) && statSync(dirname(full)).isDirectory()
      ? undefined
      : `the directory ${dirname(full)} does not exist`;
  if (problem !== undefined) {
    throw new CognigyResetError('CR_ERR_OPT_INVALID', `cannot write --metrics-file ${path}: ${problem}`);
  }
}
