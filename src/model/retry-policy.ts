/**
 * The retry policy, as data in one place: which codes retry, how many attempts, and the backoff
 * (exponential with full jitter, never shorter than what the engine asked for with Retry-After or
 * retryAfterMs). Programmer errors and 4xx other than 429 never retry. Every wait a reset awaits is a
 * ref'd timer: it may be the only thing left holding the event loop (all requests backing off at once).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { CognigyResetError, ERROR_CATALOGUE, type ErrorCode } from '../errors.js';
import { MAX_RETRY_AFTER_MS } from '../util/retry-after.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. @default 5 */
  readonly maxAttempts: number;
  /** @default 250 */
  readonly baseDelayMs: number;
  /** @default 2 */
  readonly factor: number;
  /** Cap of the exponential part. @default 15000 */
  readonly maxDelayMs: number;
  /** Codes that retry. @default every code the catalogue marks retryable */
  readonly retryOn: ReadonlySet<ErrorCode>;
  /**
   * The longest wait the engine may ask for (`Retry-After`, `retryAfterMs`); a longer one fails the
   * request with `CR_ERR_RESET_RETRY_AFTER_TOO_LONG` instead of holding it. @default 300000
   */
  readonly maxRetryAfterMs?: number;
}

/**
 * `err` itself, or the error that replaces it when the wait it asks for is past the policy's bound (or
 * is no finite number of milliseconds at all).
 */
export function boundedRetryAfter(policy: RetryPolicy, err: unknown): unknown {
  const asked = err instanceof CognigyResetError ? err.retryAfterMs : undefined;
  const max = policy.maxRetryAfterMs ?? MAX_RETRY_AFTER_MS;
  if (asked === undefined || asked <= max) return err;
  const shown = Number.isFinite(asked) ? `${Math.round(asked / 1000)} s` : 'for ever';
  const status = (err as CognigyResetError).status;
  return new CognigyResetError(
    'CR_ERR_RESET_RETRY_AFTER_TOO_LONG',
    `${(err as Error).message}: it asked to wait ${shown}, longer than the ${max / 1000} s this run waits`,
    { cause: err, retryAfterMs: asked, ...(status === undefined ? {} : { status }) },
  );
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 250,
  factor: 2,
  maxDelayMs: 15_000,
  retryOn: new Set(
    (Object.keys(ERROR_CATALOGUE) as ErrorCode[]).filter((code) => ERROR_CATALOGUE[code].retryable),
  ),
});

/** Whether an error after `attempt` attempts (1-based) gets another one. */
export function shouldRetry(policy: RetryPolicy, err: unknown, attempt: number): boolean {
  return err instanceof CognigyResetError && policy.retryOn.has(err.code) && attempt < policy.maxAttempts;
}

/**
 * The wait before attempt `attempt + 1`: full jitter over the exponential step, and at least the
 * engine's own `retryAfterMs` when it gave one.
 */
export function retryDelay(
  policy: RetryPolicy,
  attempt: number,
  err: unknown,
  random: () => number = Math.random,
): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * policy.factor ** Math.max(0, attempt - 1));
  const jittered = Math.floor(random() * step);
  const asked = err instanceof CognigyResetError ? err.retryAfterMs : undefined;
  return asked === undefined ? jittered : Math.max(asked, jittered);
}

/** Decides and waits before attempt `attempt + 1` after `err`; rethrows `err` when there is none. */
export type RetryHook = (err: unknown, attempt: number) => Promise<void>;

/**
 * Decides and waits before attempt `attempt + 1` after `err`, rethrowing it when there is none. Given
 * the pipeline's hook (`RequestOptions.beforeRetry`), a transport that retries inside defers to it; on
 * its own, it waits by `policy`.
 */
export async function waitToRetry(
  err: unknown,
  attempt: number,
  options: {
    policy: RetryPolicy;
    signal?: AbortSignal | undefined;
    beforeRetry?: RetryHook | undefined;
  },
): Promise<void> {
  if (options.beforeRetry !== undefined) return options.beforeRetry(err, attempt);
  const bounded = boundedRetryAfter(options.policy, err);
  if (options.signal?.aborted === true || !shouldRetry(options.policy, bounded, attempt)) throw bounded;
  await sleep(retryDelay(options.policy, attempt, bounded), undefined, { signal: options.signal });
}

/** The default policy with another number of attempts (the first included). */
export function retryPolicyFor(maxAttempts: number): RetryPolicy {
  return { ...DEFAULT_RETRY_POLICY, maxAttempts };
}
