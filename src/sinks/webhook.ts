/**
 * The webhook sink (`--analytics-url`): each outcome becomes an event in the state file's outbox, in the
 * same transaction as its audit record, with an idempotency key. A deliverer POSTs pending events in
 * batches (`{"events":[...]}`, header `Idempotency-Key` naming the batch's first and last keys); an event
 * leaves the outbox only after a 2xx. A timeout, a network error, 408, 425, 429 or a 5xx is retried with
 * backoff; any other answer (a 4xx such as a refused token, a redirect) cannot change by retrying, so
 * delivery stops for the run. Either way events wait in the outbox and go out on the next run. Delivery is
 * at least once; the receiver drops a repeat by its key (a request that timed out may have been
 * processed), so each event takes effect exactly once.
 *
 * The outbox knows the URL only by its SHA-256: a webhook URL often carries its secret, and the state file
 * is handed to whoever audits it. A tracker that wants a token gets it as `Authorization: Bearer`, from
 * the environment or a file, never from the URL or a flag.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ResetOutcome } from '../reset/outcome.js';
import type { OutboxEvent, OutboxInput, Store } from '../store/port.js';
import { fetchNoRedirect, isRedirect, redirectOrigin } from '../util/no-redirect.js';
import { MAX_RETRY_AFTER_MS, parseRetryAfter } from '../util/retry-after.js';
import { readBoundedText } from '../util/http-body.js';
import { sha256 } from '../util/sha256.js';

/** The most of a tracker's answer read (and dropped): only its status counts. */
const MAX_WEBHOOK_BODY_BYTES = 64 * 1024;

export interface WebhookOptions {
  url: string;
  /** Sent as `Authorization: Bearer <token>`; never stored, printed or logged. @default none */
  token?: string | undefined;
  /** Events per POST. @default 500 (`DEFAULT_WEBHOOK_BATCH`) */
  batchSize?: number;
  /** Deadline of one POST. @default 5000 */
  timeoutMs?: number;
  /** @default 200 */
  baseDelayMs?: number;
  /** @default 10000 */
  maxDelayMs?: number;
  /** Told of each failed POST: why (never the URL or the token), and whether it is retried. */
  onFailure?: ((failure: WebhookFailure) => void) | undefined;
  /** Told of each batch the tracker accepted, with its number of events. */
  onDelivered?: ((events: number) => void) | undefined;
  /**
   * A standing deliverer (a service's, for the life of the process): once delivery stopped (a refusal, a
   * store failure), `start()`'s loop tries again after this long instead of leaving the events to the
   * next run. @default undefined: delivery stays stopped until the next run
   */
  resumeAfterMs?: number | undefined;
}

export interface WebhookFailure {
  /** `HTTP 503`, `timed out`, `ECONNREFUSED`, … */
  reason: string;
  /** False for an answer that retrying cannot change (a 4xx other than 408/425/429, a redirect). */
  retryable: boolean;
}

export interface WebhookStats {
  delivered: number;
  posts: number;
  failures: number;
  /** Events still in the outbox for this URL after stop(); null when the outbox could not be read. */
  pending: number | null;
  /**
   * Events in the outbox for other URLs (an earlier run's webhook): they go out only on a run with their
   * URL. Null when the outbox could not be read.
   */
  otherUrls?: number | null;
  /** The last failure's reason, if the last POST failed. */
  lastFailure?: string | undefined;
  /**
   * Why delivery stopped for this run, when retrying could not help: the tracker refused a batch (a 4xx,
   * a redirect), or the state file could not record a delivery (a full disk). The events wait.
   */
  stopped?: string | undefined;
}

/**
 * Events per POST by default. One POST is in flight at a time, so the batch size bounds how many events a
 * second a distant tracker can take: small batches left a bulk run's events waiting for later runs
 * (docs/observability.md works out the numbers). A tracker that limits body size answers 413, which stops
 * delivery for the run and says so.
 */
export const DEFAULT_WEBHOOK_BATCH = 500;

/** An outbox event as the deliverer reads it. */
type PendingRow = OutboxEvent;

/** Deletes accepted events from the outbox. */
export type OutboxRemover = (ids: readonly number[]) => Promise<void>;

/**
 * How often an idle deliverer reads the outbox from its start again: an event of a lower id than the last
 * one delivered may have committed since (PostgreSQL hands ids out before commit), or another deliverer's
 * claim on it lapsed (a replica that died mid-POST).
 */
const RESCAN_MS = 1000;

/** Answers worth retrying: the tracker is busy, overloaded or failing for now. */
const retryableStatus = (status: number): boolean =>
  status === 408 || status === 425 || status === 429 || status >= 500;

/** A failed request's reason, from fetch's error: never its URL. */
function networkReason(err: unknown): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return 'timed out';
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  if (typeof cause?.code === 'string') return cause.code;
  return typeof cause?.message === 'string' ? cause.message : 'network error';
}

/**
 * Why the store failed, as the deliverer reports it: the driver's own reason (a full disk) rather than
 * the store's wrapping of it.
 */
export function storeReason(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof Error ? cause.message : (err as Error).message;
}

/** What the outbox keeps of a webhook URL. */
export const urlFingerprint = (url: string): string => sha256(url);

export function outboxEvent(
  outcome: ResetOutcome,
  ctx: { urlSha256: string; jobId: string | null; tenant: string; botId: string },
): OutboxInput {
  const key = randomUUID();
  return {
    key,
    urlSha256: ctx.urlSha256,
    payload: JSON.stringify({
      idempotencyKey: key,
      ts: new Date().toISOString(),
      sessionId: outcome.sessionId,
      outcome: outcome.outcome,
      verified: outcome.verified,
      latencyMs: Math.round(outcome.latencyMs * 10) / 10,
      attempts: outcome.attempts,
      errorCode: outcome.error?.code ?? null,
      requestId: outcome.requestId ?? null,
      jobId: ctx.jobId,
      tenant: ctx.tenant,
      botId: ctx.botId,
    }),
  };
}

export class WebhookDeliverer {
  readonly #o: Required<Omit<WebhookOptions, 'token' | 'onFailure' | 'onDelivered' | 'resumeAfterMs'>> &
    Pick<WebhookOptions, 'onFailure' | 'onDelivered' | 'resumeAfterMs'>;
  readonly #headers: Record<string, string>;
  /** The URL's fingerprint, which this deliverer's events carry in the outbox (`outboxEvent`). */
  readonly urlSha256: string;
  readonly stats: WebhookStats = { delivered: 0, posts: 0, failures: 0, pending: 0 };
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  /** Aborted by stop(): the background loop stops waiting and sleeping, and hands over to the drain. */
  readonly #stopping = new AbortController();
  /** Aborted at stop()'s deadline: a request the background loop still has in flight is cut then. */
  readonly #halt = new AbortController();

  readonly #store: Store;
  /** This deliverer's claim on the outbox events it posts: no other deliverer posts them meanwhile. */
  readonly #owner = `webhook/${randomUUID()}`;
  /** The highest outbox id posted and accepted: events are read on from there, and now and then from 0. */
  #after = 0;
  /** When the outbox was last read from its start. */
  #rescanned = 0;
  /** Accepted events whose delete is not known to have committed: never posted again by this one. */
  readonly #accepted = new Set<number>();
  /** Deletes accepted events through the store. */
  readonly #removeHere: OutboxRemover;
  /** State writers lent while they run (see `lendRemover`): the newest deletes. */
  readonly #lent: OutboxRemover[] = [];

  constructor(store: Store, options: WebhookOptions) {
    const { token, ...rest } = options;
    this.#o = {
      batchSize: DEFAULT_WEBHOOK_BATCH,
      timeoutMs: 5000,
      baseDelayMs: 200,
      maxDelayMs: 10_000,
      ...rest,
    };
    this.#headers = { 'content-type': 'application/json' };
    if (token !== undefined) this.#headers['authorization'] = `Bearer ${token}`;
    this.urlSha256 = urlFingerprint(options.url);
    this.#store = store;
    this.#removeHere = (ids) => store.ackOutbox(ids);
  }

  /**
   * While the store's writer commits (`OutcomeWriter.ack`), accepted events are deleted through it: a
   * delete beside it would wait for the writer's lock, and SQLite waits by sleeping, which stops the
   * event loop every reset runs on. The next batch waits for the delete to commit; its failure stops
   * delivery as a store failure does. Returns the function that gives it back, called before that writer
   * closes: it must not be handed work while it shuts down. Several runs may lend theirs to one standing
   * deliverer.
   */
  lendRemover(remover: OutboxRemover): () => void {
    this.#lent.push(remover);
    return () => {
      const at = this.#lent.indexOf(remover);
      if (at >= 0) this.#lent.splice(at, 1);
    };
  }

  /** Claims the next batch of events for this URL, on from `after`, but those accepted already. */
  async #claim(after: number): Promise<PendingRow[]> {
    const rows = await this.#store.claimOutbox(this.urlSha256, {
      limit: this.#o.batchSize,
      owner: this.#owner,
      // A claim outlasts one POST and the delete after it: no other deliverer posts the same events
      // meanwhile, even while the store's writer is slow to commit the delete.
      leaseMs: 2 * this.#o.timeoutMs,
      after,
    });
    if (this.#accepted.size === 0) return rows;
    return rows.filter((row) => !this.#accepted.has(row.id));
  }

  /**
   * The next batch: on from the last one accepted, or, once nothing is left there, from the start (at once
   * when draining, at most every `RESCAN_MS` in the background): ids alone cannot say what is left.
   */
  async #pending(background: boolean): Promise<PendingRow[]> {
    const rows = await this.#claim(this.#after);
    if (rows.length > 0 || this.#after === 0) return rows;
    if (background && Date.now() - this.#rescanned < RESCAN_MS) return rows;
    this.#rescanned = Date.now();
    return this.#claim(0);
  }

  /** Events in the outbox for this URL. */
  async countPending(): Promise<number> {
    return (await this.#store.countOutbox(this.urlSha256)).mine;
  }

  /**
   * Runs a read or write of the outbox; if the state file fails it (a full disk, an I/O error), delivery
   * stops for the run instead of throwing: the run's own report must not be lost to its analytics.
   */
  async #inStateFile(op: () => Promise<unknown>): Promise<boolean> {
    try {
      await op();
      return true;
    } catch (err) {
      this.deliveryNotRecorded(storeReason(err));
      return false;
    }
  }

  /**
   * The state file could not be read or written (here, or by the writer `removeVia` hands deletes to):
   * delivery stops for the run. Events the tracker took but that stay in the outbox go again next run.
   */
  deliveryNotRecorded(message: string): void {
    const reason = `the state file could not be read or written: ${message}`;
    if (this.stats.stopped !== undefined) return;
    this.stats.stopped = reason;
    this.#o.onFailure?.({ reason, retryable: false });
  }

  /** Posts one batch: accepted (2xx), or why not. */
  async #post(
    rows: PendingRow[],
    signal: AbortSignal,
  ): Promise<{ ok: true } | (WebhookFailure & { ok: false; retryAfterMs?: number | undefined })> {
    this.stats.posts++;
    try {
      const response = await fetchNoRedirect(this.#o.url, {
        method: 'POST',
        headers: {
          ...this.#headers,
          'idempotency-key': `${rows[0]!.key}..${rows.at(-1)!.key}`,
        },
        // Each payload is stored as the JSON text of its event: joined, not parsed and encoded again.
        body: `{"events":[${rows.map((r) => r.payload).join(',')}]}`,
        // A redirect is a failed delivery, not followed: fetch would turn a 301/302 POST into a GET
        // without the events and could then mark them delivered on its 2xx; and the token must not
        // follow to another host.
        signal,
      });
      // Only the status matters: the body is read up to a bound, so an endless one costs nothing.
      await readBoundedText(response, MAX_WEBHOOK_BODY_BYTES, () => new Error('too large')).catch(
        () => undefined,
      );
      if (response.ok) return { ok: true };
      const redirect = isRedirect(response.status);
      return {
        ok: false,
        reason: redirect
          ? `HTTP ${response.status} redirect to ${redirectOrigin(response.headers.get('location'), this.#o.url)}, not followed: point --analytics-url at the final URL`
          : `HTTP ${response.status}`,
        retryable: retryableStatus(response.status),
        retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
      };
    } catch (err) {
      return { ok: false, reason: networkReason(err), retryable: true };
    }
  }

  /**
   * Removes events the tracker took: the outbox holds only what is still to deliver (the audit log keeps
   * every outcome), or a run of millions would leave each event's payload in the state file for good.
   */
  async #removeDelivered(rows: PendingRow[]): Promise<void> {
    this.#after = Math.max(this.#after, rows.at(-1)!.id);
    const ids = rows.map((row) => row.id);
    for (const id of ids) this.#accepted.add(id);
    // Waited for before the next batch is claimed: a process that dies then has at most one batch
    // accepted and still in the outbox, which another deliverer posts again once the claim lapses.
    await (this.#lent.at(-1) ?? this.#removeHere)(ids);
    for (const id of ids) this.#accepted.delete(id);
    this.stats.delivered += rows.length;
    this.#o.onDelivered?.(rows.length);
  }

  /**
   * Delivers until the outbox is empty or `deadline` (ms since the epoch) passes; with `untilStopped`, it
   * keeps waiting for new events (`notify()`) until `stop()`.
   */
  async deliver(deadline: number, untilStopped = false): Promise<void> {
    let failures = 0;
    while (Date.now() < deadline) {
      if (untilStopped && this.#stopped) return;
      // Stopped for good: the events wait in the outbox for a run that can deliver them.
      if (this.stats.stopped !== undefined) return;
      let rows: PendingRow[] = [];
      if (!(await this.#inStateFile(async () => (rows = await this.#pending(untilStopped))))) return;
      if (rows.length === 0) {
        if (!untilStopped || this.#stopped) return;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          setTimeout(resolve, 250).unref();
        });
        this.#wake = undefined;
        continue;
      }
      // No request outlives the deadline, nor stop()'s for the background loop's: a tracker that hangs
      // cannot hold the run past --analytics-timeout (an event cut off stays in the outbox, and its
      // idempotency key makes a second delivery harmless). A request that is answered in time is not
      // cut short by stop() itself: the drain would only post the same events again.
      const budget = deadline - Date.now();
      const timeout = AbortSignal.timeout(Math.max(1, Math.min(this.#o.timeoutMs, budget)));
      const result = await this.#post(
        rows,
        untilStopped ? AbortSignal.any([timeout, this.#halt.signal]) : timeout,
      );
      // Cut off by this run's own deadline, not by the tracker: the reason an earlier failure gave (a
      // refused connection, say) stays the one reported; "timed out" only when nothing else failed.
      const cut =
        !result.ok &&
        result.reason === 'timed out' &&
        (budget <= this.#o.timeoutMs || this.#halt.signal.aborted);
      if (cut && this.stats.lastFailure !== undefined) return;
      if (result.ok) {
        // Not recorded (a full disk): the tracker has them, and drops the next run's repeat by its key.
        if (!(await this.#inStateFile(() => this.#removeDelivered(rows)))) return;
        this.stats.lastFailure = undefined;
        failures = 0;
        continue;
      }
      this.stats.failures++;
      this.stats.lastFailure = result.reason;
      this.#o.onFailure?.({ reason: result.reason, retryable: result.retryable });
      if (!result.retryable) {
        this.stats.stopped = `the tracker refused them: ${result.reason}`;
        return;
      }
      if ((result.retryAfterMs ?? 0) > MAX_RETRY_AFTER_MS) {
        this.stats.stopped = `the tracker asked to wait longer than ${MAX_RETRY_AFTER_MS / 1000} s (Retry-After)`;
        return;
      }
      failures++;
      const step = Math.min(this.#o.maxDelayMs, this.#o.baseDelayMs * 2 ** (failures - 1));
      const delay = Math.max(result.retryAfterMs ?? 0, Math.floor(Math.random() * step));
      const left = deadline - Date.now();
      if (left <= 0) return;
      try {
        await sleep(Math.min(delay, left), undefined, {
          // The background loop must not keep the process alive; the final drain must.
          ref: !untilStopped,
          ...(untilStopped ? { signal: this.#stopping.signal } : {}),
        });
      } catch {
        return; // stopped: the final drain takes over
      }
    }
  }

  /** Starts delivering in the background while a run lasts (a standing one: until `stop()`). */
  start(): void {
    this.#loop ??= this.#background();
  }

  async #background(): Promise<void> {
    const resume = this.#o.resumeAfterMs;
    for (;;) {
      await this.deliver(Number.MAX_SAFE_INTEGER, true);
      if (this.#stopped || resume === undefined) return;
      try {
        await sleep(resume, undefined, { ref: false, signal: this.#stopping.signal });
      } catch {
        return;
      }
      this.stats.stopped = undefined;
    }
  }

  /** New events are in the outbox. */
  notify(): void {
    this.#wake?.();
  }

  /** Stops the background loop, then drains what is left until `deadline`; returns the stats. */
  async stop(deadline: number): Promise<WebhookStats> {
    this.#stopped = true;
    this.#stopping.abort();
    this.#wake?.();
    const halt = setTimeout(() => this.#halt.abort(), Math.max(0, deadline - Date.now()));
    try {
      await this.#loop;
    } finally {
      clearTimeout(halt);
    }
    await this.deliver(deadline);
    // What is left goes out with the next run, or another deliverer, at once: not after the claim expires.
    await this.#store.releaseOutbox(this.#owner).catch(() => undefined);
    let pending: number | null = null;
    let others: number | null = null;
    await this.#inStateFile(async () => {
      ({ mine: pending, others } = await this.#store.countOutbox(this.urlSha256));
    });
    this.stats.pending = pending;
    this.stats.otherUrls = others;
    return this.stats;
  }
}
