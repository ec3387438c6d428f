/**
 * A small client of Cognigy's OData analytics endpoint (`{base}/v2.4/{Collection}?apikey=…`). The key
 * rides in the query string, so no URL this module builds is ever put in a message or a log; errors name
 * the collection and the status instead. Retries 429, 5xx, timeouts and lost connections with full-jitter
 * backoff (honouring `Retry-After`); 401/403 and other 4xx are not retried.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CognigyResetError } from '../errors.js';
import { checkedUrl } from '../util/loopback.js';
import { parseRetryAfter } from '../util/retry-after.js';

export interface RetrySettings {
  /** Attempts per request, the first included. */
  attempts: number;
  baseMs: number;
  capMs: number;
}

export const DEFAULT_ODATA_RETRY: Readonly<RetrySettings> = Object.freeze({
  attempts: 6,
  baseMs: 200,
  capMs: 10_000,
});

export interface ODataClientOptions {
  /** The OData base (`https://odata-trial.cognigy.ai`); a trailing `/v2.4` is accepted. */
  url: string;
  key: string;
  allowInsecure?: boolean;
  /** Per request. @default 60000 */
  timeoutMs?: number;
  retry?: Partial<RetrySettings>;
  signal?: AbortSignal;
  onRetry?: (info: {
    collection: string;
    attempt: number;
    status: number | undefined;
    delayMs: number;
  }) => void;
}

export interface ODataPage {
  value: Record<string, unknown>[];
  count: number | undefined;
}

export type Collection = 'ExecutedSteps' | 'Sessions';

export class ODataClient {
  readonly #base: string;
  readonly #key: string;
  readonly #timeoutMs: number;
  readonly #retry: RetrySettings;
  readonly #signal: AbortSignal | undefined;
  readonly #onRetry: ODataClientOptions['onRetry'];
  /** Requests sent, retries included. */
  requests = 0;

  constructor(options: ODataClientOptions) {
    const url = checkedUrl(options.url, 'odataUrl', ['https', 'http'], options.allowInsecure ?? false);
    url.search = '';
    url.hash = '';
    this.#base = url
      .toString()
      .replace(/\/+$/, '')
      .replace(/\/v2\.4$/, '');
    this.#key = options.key;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#retry = { ...DEFAULT_ODATA_RETRY, ...options.retry };
    this.#signal = options.signal;
    this.#onRetry = options.onRetry;
  }

  /**
   * One page, retried on what may pass (429, 5xx, timeouts, lost connections). `pastEnd`: asked once, on
   * the first 500, whether the query is exhausted; if so the 500 meant "no more records" (an empty page).
   */
  async get(
    collection: Collection,
    params: Record<string, string>,
    pastEnd?: () => Promise<boolean>,
  ): Promise<ODataPage> {
    let asked = false;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.getOnce(collection, params);
      } catch (err) {
        if (!(err instanceof CognigyResetError) || !err.retryable) throw err;
        if (err.status === 500 && pastEnd !== undefined && !asked) {
          asked = true;
          if (await pastEnd()) return { value: [], count: undefined };
        }
        if (attempt >= this.#retry.attempts) throw err;
        const backoff = Math.random() * Math.min(this.#retry.capMs, this.#retry.baseMs * 2 ** (attempt - 1));
        const delayMs = Math.min(this.#retry.capMs, Math.max(backoff, err.retryAfterMs ?? 0));
        this.#onRetry?.({ collection, attempt, status: err.status, delayMs });
        await sleep(delayMs, undefined, this.#signal === undefined ? {} : { signal: this.#signal });
      }
    }
  }

  /** One request, not retried: the caller decides what a failure means (see `keysetPages`). */
  async getOnce(collection: Collection, params: Record<string, string>): Promise<ODataPage> {
    const query = new URLSearchParams({ ...params, apikey: this.#key });
    const signals = [
      AbortSignal.timeout(this.#timeoutMs),
      ...(this.#signal === undefined ? [] : [this.#signal]),
    ];
    this.requests++;
    let res: Response;
    try {
      res = await fetch(`${this.#base}/v2.4/${collection}?${query.toString()}`, {
        headers: { accept: 'application/json' },
        signal: AbortSignal.any(signals),
      });
    } catch (cause) {
      if (this.#signal?.aborted === true) throw cause;
      const why =
        (cause as Error).name === 'TimeoutError' ? `no answer within ${this.#timeoutMs} ms` : 'no connection';
      throw new CognigyResetError('CR_ERR_SELECT_UNAVAILABLE', `OData ${collection}: ${why}`, {
        cause: (cause as { cause?: unknown }).cause ?? undefined,
      });
    }
    const text = await res.text().catch(() => '');
    if (res.status === 401 || res.status === 403) {
      throw new CognigyResetError(
        'CR_ERR_SELECT_UNAUTHORIZED',
        `OData ${collection} answered ${res.status}: the key is unknown, expired, or lacks the odata role`,
        { status: res.status },
      );
    }
    if (res.status === 429 || res.status >= 500) {
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      throw new CognigyResetError('CR_ERR_SELECT_UNAVAILABLE', `OData ${collection} answered ${res.status}`, {
        status: res.status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    if (res.status !== 200) {
      throw new CognigyResetError(
        'CR_ERR_SELECT_REFUSED',
        `OData ${collection} answered ${res.status}${serverMessage(text).split(this.#key).join('[REDACTED]')}`,
        { status: res.status },
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    const value = (body as { value?: unknown } | undefined)?.value;
    if (!Array.isArray(value) || value.some((row) => row === null || typeof row !== 'object')) {
      throw new CognigyResetError(
        'CR_ERR_SELECT_BAD_ANSWER',
        `OData ${collection} answered 200 without a value array`,
      );
    }
    const count = (body as Record<string, unknown>)['@odata.count'];
    return {
      value: value as Record<string, unknown>[],
      count: typeof count === 'number' ? count : undefined,
    };
  }
}

/** The server's own words, cut short and on one line (they never hold our key: it is not echoed). */
function serverMessage(text: string): string {
  try {
    const message = (JSON.parse(text) as { error?: { message?: unknown } }).error?.message;
    // eslint-disable-next-line no-control-regex
    if (typeof message === 'string') return `: ${message.slice(0, 200).replace(/[\u0000-\u001f]/g, ' ')}`;
  } catch {
    // not JSON: say nothing more
  }
  return '';
}
