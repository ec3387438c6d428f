/**
 * The reset pipeline for one session: compile and validate the directive, send it, wait for the
 * acknowledgement, verify with state checks (polling while a blocking action keeps the flow `ACTIVE`),
 * and return an outcome. Retries follow the retry policy; a "slow down" from the engine pauses every
 * request through the shared backoff gate.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CognigyResetError, isCognigyResetError } from '../errors.js';
import type { EngineAnswer, StatusAnswer } from '../protocol/index.js';
import type { SessionTarget, TargetField, Transport } from '../transports/transport.js';
import { BackoffGate } from '../util/backoff-gate.js';
import { sha256 } from '../util/sha256.js';
import { compileDirective, type CompiledDirective } from './compile.js';
import { type AnalyticsErrorMessage, CHANNELS, type DoneMessage } from './events.js';
import { FixedRate, type SendPacer } from './flow-control/pacer.js';
import { blankOutcome, errorOf, type ResetOutcome } from './outcome.js';
import type { ResetPlan } from './plan.js';
import {
  boundedRetryAfter,
  DEFAULT_RETRY_POLICY,
  retryDelay,
  type RetryPolicy,
  shouldRetry,
} from './retry-policy.js';
import { priorStateOf, verdictFor } from './verify.js';

/**
 * The seed's analytics callback: `(sessionId, latency, success)`. It may be async. What it throws or
 * rejects with never affects a reset: it is published on `cognigy-reset:analytics:error`.
 */
export type AnalyticsCallback = (sessionId: string, latencyMs: number, success: boolean) => unknown;

/**
 * Calls the analytics callback so that nothing it does reaches the reset: it runs after the engine
 * applied the reset, whose outcome must still be published and persisted (its audit record), and a
 * rejection left unhandled would end the process.
 */
function report(
  callback: AnalyticsCallback,
  sessionId: string,
  latencyMs: number,
  success: boolean,
  jobId: string | undefined,
): void {
  const failed = (error: unknown): void => {
    if (CHANNELS.analyticsError.hasSubscribers)
      CHANNELS.analyticsError.publish({ sessionId, error, jobId } satisfies AnalyticsErrorMessage);
  };
  try {
    const result = callback(sessionId, latencyMs, success) as PromiseLike<unknown> | undefined;
    if (typeof result?.then === 'function') result.then(undefined, failed);
  } catch (error) {
    failed(error);
  }
}

export interface PipelineOptions {
  transport: Transport;
  plan: ResetPlan;
  /** @default 900 */
  maxDurationSec?: number | undefined;
  /** Deadline of each acknowledgement and each state-check answer. @default 10000 */
  ackTimeoutMs?: number | undefined;
  /** Verify with state checks. @default true */
  verify?: boolean | undefined;
  /** How long to poll a flow that stays ACTIVE after the acknowledgement. @default 30000 */
  verifyTimeoutMs?: number | undefined;
  /** First wait between state checks; doubles up to `pollMaxMs`. @default 50 */
  pollInitialMs?: number | undefined;
  /** @default 2000 */
  pollMaxMs?: number | undefined;
  /** @default DEFAULT_RETRY_POLICY */
  retry?: RetryPolicy | undefined;
  /** SEND frames per second, enforced by a token bucket. @default unlimited */
  rate?: number | undefined;
  /** Spaces the sends and hears the engine's refusals (an adaptive rate); takes the place of `rate`. */
  pacer?: SendPacer | undefined;
  gate?: BackoffGate | undefined;
  analytics?: AnalyticsCallback | undefined;
  /** Carried by every message this pipeline publishes, so two jobs in one process are told apart. */
  jobId?: string | undefined;
  /** @default Math.random */
  random?: (() => number) | undefined;
}

export interface ResetCallOptions {
  signal?: AbortSignal | undefined;
  /** Check the state before sending; a session already reset is skipped (`already-reset`). */
  precheck?: boolean | undefined;
}

/** What the last attempt sent, kept for the end of the reset. */
interface Sent {
  text: string | undefined;
  /** The state check sent right behind the directive, when there is one. */
  firstState: Promise<EngineAnswer> | undefined;
}

const ignore = (): undefined => undefined;

const RATE_CODES = new Set([
  'CR_ERR_RESET_RATE_LIMITED',
  'CR_ERR_TRANSPORT_RATE_LIMITED',
  'CR_ERR_TRANSPORT_REST_RATE_LIMITED',
]);

function statusError(ack: StatusAnswer): CognigyResetError | undefined {
  switch (ack.status) {
    case 'RESET_COMPLETE':
      return undefined;
    case 'SESSION_NOT_FOUND':
      return new CognigyResetError('CR_ERR_RESET_SESSION_NOT_FOUND', 'the engine does not know this session');
    case 'RATE_LIMITED':
      return new CognigyResetError(
        'CR_ERR_RESET_RATE_LIMITED',
        `the engine answered RATE_LIMITED${ack.retryAfterMs === undefined ? '' : ` (retry after ${ack.retryAfterMs} ms)`}`,
        ack.retryAfterMs === undefined ? {} : { retryAfterMs: ack.retryAfterMs },
      );
    case 'REJECTED':
      return new CognigyResetError('CR_ERR_RESET_REJECTED', 'the engine rejected the directive');
    default:
      return new CognigyResetError(
        'CR_ERR_RESET_REJECTED',
        `the engine answered ${JSON.stringify(ack.status.slice(0, 32))}: not applied`,
      );
  }
}

function asError(err: unknown): CognigyResetError {
  if (isCognigyResetError(err)) return err;
  if (err instanceof Error && err.name === 'AbortError') {
    return new CognigyResetError('CR_ERR_RESET_ABORTED', 'the reset was aborted', { cause: err });
  }
  return new CognigyResetError('CR_ERR_RESET_ABORTED', 'the reset stopped on an unexpected error', {
    cause: err,
  });
}

export class ResetPipeline {
  readonly plan: ResetPlan;
  readonly transport: Transport;
  readonly gate: BackoffGate;
  readonly #o: {
    maxDurationSec: number | undefined;
    ackTimeoutMs: number;
    verify: boolean;
    verifyTimeoutMs: number;
    pollInitialMs: number;
    pollMaxMs: number;
    retry: RetryPolicy;
    random: () => number;
  };
  readonly pacer: SendPacer | undefined;
  readonly jobId: string | undefined;
  readonly #analytics: AnalyticsCallback | undefined;
  readonly #idPrefix = randomBytes(4).toString('hex');
  #seq = 0;

  constructor(options: PipelineOptions) {
    this.plan = options.plan;
    this.transport = options.transport;
    this.gate = options.gate ?? new BackoffGate();
    this.#o = {
      maxDurationSec: options.maxDurationSec,
      ackTimeoutMs: options.ackTimeoutMs ?? 10_000,
      verify: options.verify ?? true,
      verifyTimeoutMs: options.verifyTimeoutMs ?? 30_000,
      pollInitialMs: options.pollInitialMs ?? 50,
      pollMaxMs: options.pollMaxMs ?? 2000,
      retry: options.retry ?? DEFAULT_RETRY_POLICY,
      random: options.random ?? Math.random,
    };
    this.pacer = options.pacer ?? (options.rate === undefined ? undefined : new FixedRate(options.rate));
    this.#analytics = options.analytics;
    this.jobId = options.jobId;
  }

  /** What a dry run prints for a target: the directive, or the transport's requests. Throws when invalid. */
  describe(target: SessionTarget): unknown {
    if (this.transport.describe !== undefined) {
      const problem = targetProblem(target, this.transport.requiredFields(this.plan));
      if (problem !== undefined) throw problem;
      return this.transport.describe(target, this.plan);
    }
    return this.compile(target.sessionId).directive;
  }

  /** Compiles the directive a session would get (what `--dry-run` prints). Throws on an invalid one. */
  compile(sessionId: string, requestId?: string): CompiledDirective {
    return compileDirective(sessionId, this.plan, { maxDurationSec: this.#o.maxDurationSec, requestId });
  }

  #requestId(): string {
    return `${this.#idPrefix}-${(this.#seq++).toString(36)}`;
  }

  /** Resets one session. Never throws: every failure is an outcome with a coded error. */
  async reset(session: string | SessionTarget, call: ResetCallOptions = {}): Promise<ResetOutcome> {
    const started = performance.now();
    const target = typeof session === 'string' ? { sessionId: session } : session;
    const sessionId = target.sessionId;
    // Nothing is cleared until the engine says it applied the directive (or a check shows it was).
    const outcome = blankOutcome(sessionId, 'failed', [], this.plan.notClearable);
    // The text last sent: its hash goes on the outcome, the text only to the `done` subscribers.
    const sent: Sent = { text: undefined, firstState: undefined };
    if (CHANNELS.start.hasSubscribers) CHANNELS.start.publish({ sessionId, jobId: this.jobId });
    try {
      if (this.transport.resetTarget !== undefined) {
        await this.#resetTarget(target, outcome, call.signal, sent);
      } else if (call.precheck === true && (await this.#alreadyReset(sessionId, outcome, call.signal))) {
        outcome.outcome = 'skipped';
        outcome.verified = true;
        outcome.skipReason = 'already-reset';
      } else {
        await this.#sendWithRetries(sessionId, outcome, call.signal, sent);
        outcome.outcome = 'reset';
        outcome.cleared = this.plan.cleared;
        if (this.#o.verify) {
          await this.#verify(sessionId, outcome, call.signal, sent.firstState);
          outcome.verified = true;
        }
      }
    } catch (err) {
      const error = asError(err);
      outcome.outcome = 'failed';
      outcome.verified = false;
      outcome.error = errorOf(error);
    }
    if (sent.text !== undefined) outcome.directiveHash = sha256(sent.text);
    outcome.latencyMs = performance.now() - started;
    if (this.#analytics !== undefined)
      report(this.#analytics, sessionId, outcome.latencyMs, outcome.outcome !== 'failed', this.jobId);
    if (CHANNELS.done.hasSubscribers) {
      const message: DoneMessage = {
        outcome,
        directiveText: sent.text,
        settledBy: 'pipeline',
        jobId: this.jobId,
      };
      CHANNELS.done.publish(message);
    }
    return outcome;
  }

  /** A target-style transport (REST, Socket) resets and verifies in its own calls; it retries inside. */
  async #resetTarget(
    target: SessionTarget,
    outcome: ResetOutcome,
    signal: AbortSignal | undefined,
    sent: Sent,
  ): Promise<void> {
    const problem = targetProblem(target, this.transport.requiredFields(this.plan));
    if (problem !== undefined) throw problem;
    const turn = this.#waitTurn(signal);
    let sentAt = turn === undefined ? performance.now() : await turn;
    outcome.attempts = 1;
    // The requests are known before they are sent: the audit hashes them even when the first one fails.
    sent.text = JSON.stringify(this.transport.describe?.(target, this.plan) ?? null);
    const result = await this.transport.resetTarget!(target, this.plan, {
      timeoutMs: this.#o.ackTimeoutMs,
      signal,
      verify: this.#o.verify,
      // The transport's retries take the same path as the pipeline's own: a "slow down" answer pauses the
      // whole job, and every retry waits its turn under the rate limit.
      beforeRetry: async (err, attempt) => {
        this.#heard(target.sessionId, err, sentAt);
        await this.#backoff(target.sessionId, err, attempt, signal);
        outcome.attempts++;
        outcome.retried = true;
        const next = this.#waitTurn(signal);
        sentAt = next === undefined ? performance.now() : await next;
      },
    });
    this.pacer?.accepted(sentAt);
    outcome.outcome = 'reset';
    outcome.cleared = this.plan.cleared;
    outcome.verified = this.#o.verify && result.verified;
    outcome.notVerified = result.notVerified;
  }

  /**
   * Waits out a shared pause and the pacer; resolves at once (no promise) when neither applies, else with
   * the time the turn was taken (what the pacer is told about the answer).
   */
  #waitTurn(signal: AbortSignal | undefined): Promise<number> | undefined {
    if (this.gate.remaining() === 0 && this.pacer === undefined) return undefined;
    return (async () => {
      await this.gate.wait(signal);
      // The turn is dated when it is taken, and taken again when the pacer slowed down meanwhile: a turn
      // reserved on the old schedule would meet the engine's refusal.
      for (;;) {
        const reservedAt = performance.now();
        if (this.pacer === undefined) return reservedAt;
        const wait = this.pacer.reserve(reservedAt);
        if (wait > 0) await sleep(wait, undefined, { signal });
        if (!this.pacer.slowedSince(reservedAt)) return reservedAt;
        await this.gate.wait(signal);
      }
    })();
  }

  /** Tells the pacer of a refusal: a "slow down" answer to a send made at `sentAt`. */
  #heard(sessionId: string, err: unknown, sentAt: number): void {
    if (this.pacer === undefined || !isCognigyResetError(err) || !RATE_CODES.has(err.code)) return;
    if (this.pacer.refused(sentAt) && CHANNELS.paceCut.hasSubscribers) {
      CHANNELS.paceCut.publish({ sessionId, code: err.code, rate: this.pacer.rate(), jobId: this.jobId });
    }
  }

  async #sendWithRetries(
    sessionId: string,
    outcome: ResetOutcome,
    signal: AbortSignal | undefined,
    sent: Sent,
  ): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const requestId = this.#requestId();
      const compiled = this.compile(sessionId, requestId);
      const turn = this.#waitTurn(signal);
      const sentAt = turn === undefined ? performance.now() : await turn;
      outcome.attempts++;
      outcome.requestId = requestId;
      sent.text = compiled.text;
      if (outcome.attempts > 1) outcome.retried = true;
      if (CHANNELS.attempt.hasSubscribers)
        CHANNELS.attempt.publish({ sessionId, attempt: outcome.attempts, requestId, jobId: this.jobId });
      const options = { timeoutMs: this.#o.ackTimeoutMs, signal };
      let firstState: Promise<EngineAnswer> | undefined;
      let ack: Promise<StatusAnswer>;
      if (this.transport.send === undefined)
        throw new Error('transport has neither send() nor resetTarget()');
      if (this.#o.verify && this.transport.sendWithCheck !== undefined) {
        // The first state check rides right behind the directive; it is used only if the ack says applied.
        const both = this.transport.sendWithCheck(
          compiled.directive,
          compiled.text,
          this.#requestId(),
          options,
        );
        ack = both.ack;
        firstState = both.state;
        firstState.catch(ignore);
      } else {
        ack = this.transport.send(compiled.directive, compiled.text, options);
      }
      try {
        const answer = await ack;
        if (answer.status !== 'RATE_LIMITED') this.pacer?.accepted(sentAt);
        const error = statusError(answer);
        if (error === undefined) {
          sent.firstState = firstState;
          return;
        }
        throw error;
      } catch (err) {
        this.#heard(sessionId, err, sentAt);
        await this.#backoff(sessionId, err, outcome.attempts, signal);
      }
    }
  }

  /** Rethrows `err` unless the policy retries it; otherwise waits the policy's delay. */
  async #backoff(
    sessionId: string,
    err: unknown,
    attempt: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    // An engine that asks to wait past the bound fails the request: it never holds the job (the gate).
    const bounded = boundedRetryAfter(this.#o.retry, err);
    if (signal?.aborted === true || !shouldRetry(this.#o.retry, bounded, attempt)) throw bounded;
    const delay = retryDelay(this.#o.retry, attempt, err, this.#o.random);
    const code = (err as CognigyResetError).code;
    // A storm of "slow down" answers slows the whole job, not only this request. A pacer that hears the
    // refusals slows the job itself: everyone then waits only what the engine asked for.
    if (RATE_CODES.has(code)) {
      const asked = (err as CognigyResetError).retryAfterMs;
      this.gate.pause(this.pacer?.adapts === true ? (asked ?? 0) : delay);
    }
    if (CHANNELS.retry.hasSubscribers)
      CHANNELS.retry.publish({ sessionId, attempt, code, delayMs: delay, jobId: this.jobId });
    await sleep(delay, undefined, { signal });
  }

  /** One state check, retrying transport failures (drops, timeouts) under the same policy. */
  async #check(
    sessionId: string,
    outcome: ResetOutcome,
    signal: AbortSignal | undefined,
  ): Promise<EngineAnswer> {
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      if (this.gate.remaining() > 0) await this.gate.wait(signal);
      try {
        outcome.polls++;
        return await this.transport.check!(sessionId, this.#requestId(), {
          timeoutMs: this.#o.ackTimeoutMs,
          signal,
        });
      } catch (err) {
        await this.#backoff(sessionId, err, attempt, signal);
      }
    }
  }

  /**
   * A resume's check before sending, for a session an interrupted run may have reset without recording
   * it. Sending again would reset it a second time, so a session found reset but still finishing a
   * blocking call (`pending`) is not sent: its flow is polled until it leaves ACTIVE. When the check
   * cannot tell (`unknown`), the flow is polled the same way, and a flow still ACTIVE at the deadline
   * fails with CR_ERR_RESET_RESUME_UNSURE, nothing sent: the record says so, and a human decides.
   */
  async #alreadyReset(
    sessionId: string,
    outcome: ResetOutcome,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const answer = await this.#check(sessionId, outcome, signal);
    if (answer.kind === 'status') return false; // SESSION_NOT_FOUND: the SEND will say so
    const prior = priorStateOf(answer, this.plan);
    if (prior === 'not-reset') return false;
    if (prior === 'reset') {
      outcome.cleared = this.plan.cleared;
      return true;
    }
    outcome.cleared = prior === 'pending' ? this.plan.cleared.filter((layer) => layer !== 'flow') : [];
    try {
      await this.#verify(sessionId, outcome, signal);
    } catch (err) {
      if (prior === 'unknown' && isCognigyResetError(err) && err.code === 'CR_ERR_RESET_VERIFY_ACTIVE') {
        throw new CognigyResetError(
          'CR_ERR_RESET_RESUME_UNSURE',
          'an interrupted run may have reset this session without recording it, and its state cannot tell (the flow stayed ACTIVE and the engine reports no other layer): not sent again',
          { cause: err },
        );
      }
      throw err;
    }
    outcome.cleared = this.plan.cleared;
    return true;
  }

  async #verify(
    sessionId: string,
    outcome: ResetOutcome,
    signal: AbortSignal | undefined,
    firstState?: Promise<EngineAnswer>,
  ): Promise<void> {
    const deadline = performance.now() + this.#o.verifyTimeoutMs;
    let delay = this.#o.pollInitialMs;
    let first = firstState;
    for (;;) {
      let answer: EngineAnswer;
      if (first !== undefined) {
        outcome.polls++;
        try {
          answer = await first;
        } catch {
          // A check that was lost with its connection is simply asked again.
          answer = await this.#check(sessionId, outcome, signal);
        }
        first = undefined;
      } else {
        answer = await this.#check(sessionId, outcome, signal);
      }
      if (answer.kind === 'status') {
        const error =
          statusError(answer) ??
          new CognigyResetError('CR_ERR_PROTO_BAD_ANSWER', 'state check answered with a status');
        throw error;
      }
      if (CHANNELS.poll.hasSubscribers)
        CHANNELS.poll.publish({
          sessionId,
          poll: outcome.polls,
          flowState: answer.flowState,
          jobId: this.jobId,
        });
      const verdict = verdictFor(answer, this.plan);
      if (verdict.kind === 'verified') return;
      if (verdict.kind === 'failed') {
        outcome.cleared = outcome.cleared.filter((layer) => layer !== verdict.layer);
        throw new CognigyResetError(verdict.code, verdict.message);
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        outcome.cleared = outcome.cleared.filter((layer) => layer !== 'flow');
        throw new CognigyResetError(
          'CR_ERR_RESET_VERIFY_ACTIVE',
          `the flow was still ACTIVE ${this.#o.verifyTimeoutMs} ms after the acknowledgement`,
        );
      }
      await sleep(Math.min(delay, left), undefined, { signal });
      delay = Math.min(delay * 2, this.#o.pollMaxMs);
    }
  }
}

/** A target lacking a field its transport needs fails before anything is sent. */
export function targetProblem(
  target: SessionTarget,
  required: readonly TargetField[],
): CognigyResetError | undefined {
  const missing = required.filter((field) => (target[field] ?? '') === '');
  if (missing.length === 0) return undefined;
  return new CognigyResetError(
    'CR_ERR_OPT_MISSING',
    `session ${JSON.stringify(target.sessionId.slice(0, 80))} lacks ${missing.join(', ')}, which this transport needs`,
    { field: missing[0]! },
  );
}
