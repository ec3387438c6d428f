/**
 * A client for Cognigy.AI's REST API v2.0 session operations (`/new/v2.0/sessions/{id}/...`): context reset, state reset
 * and context inject. Auth by `X-API-Key` or an OAuth2 bearer token (refreshed once on a 401, and before
 * it expires). 429 and 5xx are retried with exponential backoff and full jitter, never sooner than
 * `Retry-After` (seconds or an HTTP date); a default rate cap fits shared SaaS (1,000 requests per
 * 5 minutes). Session ids are URL-encoded; every request has a deadline; connections are kept alive.
 * Redirects are refused, never followed: the credentials go to the API origin the user named only.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CognigyResetError } from '../../errors.js';
import {
  DEFAULT_RETRY_POLICY,
  type RetryHook,
  type RetryPolicy,
  waitToRetry,
} from '../../model/retry-policy.js';
import { checkedUrl } from '../../util/loopback.js';
import { fetchNoRedirect, refusedRedirect } from '../../util/no-redirect.js';
import { redactUrl } from '../../util/redact.js';
import { readBoundedText } from '../../util/http-body.js';
import { TokenBucket } from '../../util/token-bucket.js';
import type { TokenProvider } from '../auth/token-provider.js';
import { problemError } from './problem.js';

/** The largest answer body read; Cognigy's contexts go up to 1.5 MB on shared SaaS. */
export const MAX_REST_BODY_BYTES = 4 * 1024 * 1024;

/** Shared SaaS allows 1,000 API requests per 5 minutes per source IP. */
export const DEFAULT_REST_RATE_PER_SEC = 1000 / 300;

export interface RestTarget {
  sessionId: string;
  userId: string;
  flowReferenceId?: string | undefined;
  entrypoint?: string | undefined;
}

export interface CognigyRestOptions {
  /** The API base, e.g. `https://api-trial.cognigy.ai`. */
  apiUrl: string;
  /** `X-API-Key` (env `COGNIGY_API_KEY`). */
  apiKey?: string | undefined;
  /** Or OAuth2 bearer tokens. */
  tokens?: TokenProvider | undefined;
  /** Deadline of each request. @default 10000 */
  timeoutMs?: number;
  /** Requests per second at most; 0 for no cap. @default 1000 / 300 */
  ratePerSec?: number;
  /** @default DEFAULT_RETRY_POLICY */
  retry?: RetryPolicy;
  /** Path prefix the official client uses. @default '/new' */
  prefix?: string;
  /** @default false */
  allowInsecure?: boolean;
}

export class CognigyRestClient {
  readonly #base: URL;
  readonly #apiKey: string | undefined;
  readonly #tokens: TokenProvider | undefined;
  readonly #timeoutMs: number;
  readonly #bucket: TokenBucket | undefined;
  readonly #retry: RetryPolicy;
  readonly #prefix: string;
  /** Requests sent, including retries. */
  requests = 0;

  constructor(options: CognigyRestOptions) {
    const base = checkedUrl(options.apiUrl, 'apiUrl', ['https', 'http'], options.allowInsecure ?? false);
    if ((options.apiKey ?? '') === '' && options.tokens === undefined) {
      throw new CognigyResetError(
        'CR_ERR_AUTH_NO_TOKEN',
        'no REST credentials: set COGNIGY_API_KEY or configure OAuth2',
      );
    }
    this.#base = base;
    this.#apiKey = options.apiKey === '' ? undefined : options.apiKey;
    this.#tokens = options.tokens;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    const rate = options.ratePerSec ?? DEFAULT_REST_RATE_PER_SEC;
    this.#bucket = rate > 0 ? new TokenBucket(rate, Math.max(1, Math.ceil(rate))) : undefined;
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.#prefix = options.prefix ?? '/new';
  }

  /** Puts the context back to the Flow's default; resolves with the context after the reset. */
  async resetContext(
    target: RestTarget,
    signal?: AbortSignal,
    beforeRetry?: RetryHook,
  ): Promise<Record<string, unknown>> {
    if (target.flowReferenceId === undefined || target.entrypoint === undefined) {
      throw new CognigyResetError(
        'CR_ERR_OPT_MISSING',
        `session ${target.sessionId}: a context reset needs userId, flowReferenceId and entrypoint`,
      );
    }
    const body = {
      userId: target.userId,
      flowReferenceId: target.flowReferenceId,
      entrypoint: target.entrypoint,
    };
    const context = await this.#post(target.sessionId, 'context/reset', body, signal, beforeRetry);
    if (context === null || typeof context !== 'object' || Array.isArray(context)) {
      throw new CognigyResetError(
        'CR_ERR_TRANSPORT_REST_UNEXPECTED',
        'context reset answered without a context object',
      );
    }
    return context as Record<string, unknown>;
  }

  /** Puts the NLU state back to its default. */
  async resetState(target: RestTarget, signal?: AbortSignal, beforeRetry?: RetryHook): Promise<void> {
    await this.#post(target.sessionId, 'state/reset', { userId: target.userId }, signal, beforeRetry);
  }

  async injectContext(
    target: RestTarget,
    context: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    return (await this.#post(
      target.sessionId,
      'context/inject',
      { userId: target.userId, context },
      signal,
    )) as Record<string, unknown>;
  }

  async #headers(
    refresh: string | undefined,
    signal?: AbortSignal,
  ): Promise<{ headers: Record<string, string>; token?: string }> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json',
    };
    if (this.#tokens !== undefined) {
      const token =
        refresh === undefined ? await this.#tokens.get(signal) : await this.#tokens.refresh(refresh, signal);
      headers['authorization'] = `Bearer ${token}`;
      return { headers, token };
    }
    headers['x-api-key'] = this.#apiKey!;
    return { headers };
  }

  async #post(
    sessionId: string,
    operation: string,
    body: unknown,
    signal?: AbortSignal,
    beforeRetry?: RetryHook,
  ): Promise<unknown> {
    const url = new URL(
      `${this.#prefix}/v2.0/sessions/${encodeURIComponent(sessionId)}/${operation}`,
      this.#base,
    );
    const what = `POST ${redactUrl(url)}`;
    let refreshFrom: string | undefined;
    let refreshed = false;
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      if (this.#bucket !== undefined) {
        const wait = this.#bucket.reserve();
        if (wait > 0) await sleep(wait, undefined, { signal });
      }
      const { headers, token } = await this.#headers(refreshFrom, signal);
      refreshFrom = undefined;
      this.requests++;
      let response: Response;
      try {
        const timeout = AbortSignal.timeout(this.#timeoutMs);
        response = await fetchNoRedirect(url, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          signal: signal === undefined ? timeout : AbortSignal.any([signal, timeout]),
        });
      } catch (cause) {
        const err = cutOff(cause, signal, what, {
          timedOut: ` got no answer within ${this.#timeoutMs} ms`,
          lost: ' failed: cannot reach the API',
        });
        await waitToRetry(err, attempt, { policy: this.#retry, signal, beforeRetry });
        continue;
      }
      const redirect = await refusedRedirect(response, url, what, 'point --api-url at the final address');
      if (redirect !== undefined) throw redirect;
      let text: string;
      try {
        text = await readBoundedText(
          response,
          MAX_REST_BODY_BYTES,
          () =>
            new CognigyResetError(
              'CR_ERR_TRANSPORT_BODY_TOO_LARGE',
              `${what} answered ${response.status} with a body over ${MAX_REST_BODY_BYTES / 1024 / 1024} MiB`,
              { status: response.status },
            ),
        );
      } catch (cause) {
        if (cause instanceof CognigyResetError) throw cause;
        // Cut off while the body came: by the deadline, by the caller, or by the network.
        const err = cutOff(cause, signal, what, {
          timedOut: `: the answer did not end within ${this.#timeoutMs} ms`,
          lost: ': the answer was cut off',
        });
        await waitToRetry(err, attempt, { policy: this.#retry, signal, beforeRetry });
        continue;
      }
      let json: unknown;
      try {
        json = text === '' ? {} : JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (response.ok) {
        if (json === undefined)
          throw new CognigyResetError(
            'CR_ERR_TRANSPORT_REST_UNEXPECTED',
            `${what} answered ${response.status} without JSON`,
          );
        return json;
      }
      const err = problemError(response.status, json, response.headers.get('retry-after'), what);
      if (
        response.status === 401 &&
        token !== undefined &&
        this.#tokens?.refreshable === true &&
        !refreshed
      ) {
        // One refresh, one retry: a second 401 is final.
        refreshed = true;
        refreshFrom = token;
        continue;
      }
      await waitToRetry(err, attempt, { policy: this.#retry, signal, beforeRetry });
    }
  }
}

/**
 * A request cut off before its answer was whole, as a coded error: by the caller (aborted), by its deadline
 * (a timeout, retried) or by the network (retried). `timedOut` and `lost` follow `what` in the message.
 */
function cutOff(
  cause: unknown,
  signal: AbortSignal | undefined,
  what: string,
  text: { timedOut: string; lost: string },
): CognigyResetError {
  if (signal?.aborted === true)
    return new CognigyResetError('CR_ERR_RESET_ABORTED', `${what} was aborted`, { cause });
  return (cause as Error).name === 'TimeoutError'
    ? new CognigyResetError('CR_ERR_TRANSPORT_REST_TIMEOUT', `${what}${text.timedOut}`, { cause })
    : new CognigyResetError('CR_ERR_TRANSPORT_CONNECT', `${what}${text.lost}`, { cause });
}
