/**
 * The reset pipeline for one session: compile and validate the directive, send it, wait for the
 * acknowledgement, verify with state checks (polling while a blocking action keeps the flow `ACTIVE`),
 * and return an outcome. Retries follow the retry policy; a "slow down" from the engine pauses every
 * request through the shared backoff gate.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CognigyResetError, isCognigyResetError, isMarked } from '../errors.js';
import {
  compileDirective,
  type CompiledDirective,
  type EngineAnswer,
  type StatusAnswer,
} from '../protocol/index.js';
import type { ResetPlan } from '../model/plan.js';
import {
  boundedRetryAfter,
  DEFAULT_RETRY_POLICY,
  retryDelay,
  type RetryHook,
  type RetryPolicy,
  shouldRetry,
} from '../model/retry-policy.js';
import type { SessionTarget, TargetField } from '../model/target.js';
import type { ReadBack, Transport } from '../transports/transport.js';
import { BackoffGate } from '../util/backoff-gate.js';
import { sha256 } from '../util/sha256.js';
import { type AnalyticsErrorMessage, CHANNELS, type DepthCutMessage, type DoneMessage } from './events.js';
import type { DepthLimiter } from './flow-control/depth-limiter.js';
import { FixedRate, type SendPacer } from './flow-control/pacer.js';
import { blankOutcome, errorOf, type ResetOutcome } from './outcome.js';
import { priorStateOf, reportsEveryLayer, verdictFor } from './verify.js';

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
  /** Hears each answer's latency: the in-flight limit of the bulk run that shares it. */
  depth?: DepthLimiter | undefined;
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

/** A long wait for a turn is slept in slices this long, asking again each time: the rate may have risen. */
const TURN_SLICE_MS = 25;
/** A send that left this much later than it asked for its turn waited for it. */
const WAITED_MS = 1;

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

/** A state check answered with a status: the status's own error, or one saying the check was not answered. */
function checkStatusError(answer: StatusAnswer): CognigyResetError {
  return (
    statusError(answer) ??
    new CognigyResetError('CR_ERR_PROTO_BAD_ANSWER', 'state check answered with a status')
  );
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
  readonly depth: DepthLimiter | undefined;
  readonly jobId: string | undefined;
  readonly #analytics: AnalyticsCallback | undefined;
  readonly #required: readonly TargetField[];
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
    this.depth = options.depth;
    this.#analytics = options.analytics;
    this.jobId = options.jobId;
    this.#required = this.transport.requiredFields(this.plan);
  }

  /** What a dry run prints for a target: the directive, or the transport's requests. Throws when invalid. */
  describe(target: SessionTarget): unknown {
    const problem = targetProblem(target, this.#required);
    if (problem !== undefined) throw problem;
    return this.transport.prepare(target, this.plan, {
      requestId: undefined,
      maxDurationSec: this.#o.maxDurationSec,
    }).shown;
  }

  /** Compiles the SEND frame a session would get on a runtime engine. Throws on an invalid one. */
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
      const problem = targetProblem(target, this.#required);
      if (problem !== undefined) throw problem;
      if (call.precheck === true && (await this.#alreadyReset(sessionId, outcome, call.signal))) {
        outcome.outcome = 'skipped';
        outcome.verified = true;
        outcome.skipReason = 'already-reset';
      } else {
        const readBack = await this.#sendWithRetries(target, outcome, call.signal, sent);
        outcome.outcome = 'reset';
        outcome.cleared = this.plan.cleared;
        if (readBack !== undefined) {
          // The transport verified what it could from its own answers.
          outcome.verified = this.#o.verify && readBack.verified;
          outcome.notVerified = readBack.notVerified;
        } else if (this.#o.verify) {
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
        let wait = this.pacer.reserve(reservedAt);
        if (!this.pacer.adapts) {
          if (wait > 0) await sleep(wait, undefined, { signal });
        } else {
          const ticket = this.pacer.issued;
          while (wait > 0) {
            await sleep(Math.min(wait, TURN_SLICE_MS), undefined, { signal });
            wait = this.pacer.waitFor(ticket);
          }
        }
        if (!this.pacer.slowedSince(reservedAt)) return reservedAt;
        await this.gate.wait(signal);
      }
    })();
  }

  /** Tells the depth limiter how long an answer took; publishes the cut it made, if any. */
  #answered(sessionId: string, leftAt: number, waited: boolean): void {
    const cut = this.depth?.observe(performance.now() - leftAt, waited);
    if (cut !== undefined && CHANNELS.depthCut.hasSubscribers)
      CHANNELS.depthCut.publish({ sessionId, ...cut, jobId: this.jobId } satisfies DepthCutMessage);
  }

  /** Tells the pacer of a refusal: a "slow down" answer to a send made at `sentAt`. */
  #heard(sessionId: string, err: unknown, sentAt: number): void {
    if (this.pacer === undefined || !isCognigyResetError(err) || !isMarked(err.code, 'rateLimited')) return;
    if (this.pacer.refused(sentAt) && CHANNELS.paceCut.hasSubscribers) {
      CHANNELS.paceCut.publish({ sessionId, code: err.code, rate: this.pacer.rate(), jobId: this.jobId });
    }
  }

  /**
   * Sends the reset until it is applied or the policy gives up; resolves with what the transport read
   * back, if it verifies from its own answers. A transport that retries inside one reset goes through
   * the same retry step (`beforeRetry`): a "slow down" answer pauses the whole job, and every retry
   * waits its turn under the rate limit.
   */
  async #sendWithRetries(
    target: SessionTarget,
    outcome: ResetOutcome,
    signal: AbortSignal | undefined,
    sent: Sent,
  ): Promise<ReadBack | undefined> {
    const sessionId = target.sessionId;
    let sentAt = 0;
    // A transport that retried inside one exchange answered after its backoff: no latency to learn from.
    let retriedInside = false;
    const beforeRetry: RetryHook = async (err, attempt) => {
      retriedInside = true;
      this.#heard(sessionId, err, sentAt);
      await this.#backoff(sessionId, err, attempt, signal);
      outcome.attempts++;
      outcome.retried = true;
      const next = this.#waitTurn(signal);
      sentAt = next === undefined ? performance.now() : await next;
      if (CHANNELS.attempt.hasSubscribers)
        CHANNELS.attempt.publish({
          sessionId,
          attempt: outcome.attempts,
          requestId: undefined,
          jobId: this.jobId,
        });
    };
    for (;;) {
      signal?.throwIfAborted();
      const prepared = this.transport.prepare(target, this.plan, {
        requestId: this.#requestId(),
        maxDurationSec: this.#o.maxDurationSec,
      });
      const asked = performance.now();
      const turn = this.#waitTurn(signal);
      sentAt = turn === undefined ? asked : await turn;
      const leftAt = turn === undefined ? asked : performance.now();
      retriedInside = false;
      outcome.attempts++;
      outcome.requestId = prepared.requestId;
      sent.text = prepared.text;
      if (outcome.attempts > 1) outcome.retried = true;
      if (CHANNELS.attempt.hasSubscribers)
        CHANNELS.attempt.publish({
          sessionId,
          attempt: outcome.attempts,
          requestId: prepared.requestId,
          jobId: this.jobId,
        });
      // The first state check rides right behind the directive; it is used only if the ack says applied.
      const exchange = this.transport.reset(prepared, {
        timeoutMs: this.#o.ackTimeoutMs,
        signal,
        verify: this.#o.verify,
        checkRequestId: this.#o.verify ? this.#requestId() : undefined,
        beforeRetry,
      });
      exchange.state?.catch(ignore);
      try {
        const answer = await exchange.ack;
        if (this.depth !== undefined && !retriedInside)
          this.#answered(sessionId, leftAt, leftAt - asked >= WAITED_MS);
        if (answer.status !== 'RATE_LIMITED') this.pacer?.accepted(sentAt);
        const error = statusError(answer);
        if (error === undefined) {
          sent.firstState = exchange.state;
          return answer.readBack;
        }
        throw error;
      } catch (err) {
        // A transport that retries inside took its retries through `beforeRetry`: its failure is final.
        if (exchange.retriesInside) throw err;
        this.#heard(sessionId, err, sentAt);
        await this.#backoff(sessionId, err, outcome.attempts, signal);
        // The engine may have applied what it never answered: a state that shows so is not sent to again.
        if (
          this.#o.verify &&
          isCognigyResetError(err) &&
          isMarked(err.code, 'answerLost') &&
          (await this.#appliedUnanswered(sessionId, outcome, signal))
        ) {
          sent.firstState = undefined;
          return undefined;
        }
      }
    }
  }

  /** Whether a send whose answer was lost was applied: its state shows every layer the plan clears cleared. */
  async #appliedUnanswered(
    sessionId: string,
    outcome: ResetOutcome,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    let answer: EngineAnswer | undefined;
    try {
      answer = await this.#check(sessionId, outcome, signal);
    } catch (err) {
      // A state that cannot be read tells nothing: the reset is sent again, as the policy allows.
      if (signal?.aborted === true) throw err;
      return false;
    }
    // Only a state that shows every layer cleared proves the lost send applied: a flow still ACTIVE, or a
    // bare shape that reports the flow and the variables alone, may well be how the session was before.
    if (answer === undefined || answer.kind === 'status') return false;
    return priorStateOf(answer, this.plan) === 'reset' && reportsEveryLayer(answer, this.plan);
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
    if (isMarked(code, 'rateLimited')) {
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
    refused?: CognigyResetError,
  ): Promise<EngineAnswer | undefined> {
    if (refused !== undefined) await this.#backoff(sessionId, refused, 1, signal);
    for (let attempt = refused === undefined ? 1 : 2; ; attempt++) {
      signal?.throwIfAborted();
      if (this.gate.remaining() > 0) await this.gate.wait(signal);
      try {
        const answer = this.transport.check(sessionId, this.#requestId(), {
          timeoutMs: this.#o.ackTimeoutMs,
          signal,
        });
        // A transport that cannot read state checks nothing.
        if (answer === undefined) return undefined;
        outcome.polls++;
        const read = await answer;
        // "Slow down" answers the check, not the reset: the check is asked again, never the reset sent.
        if (read.kind === 'status' && read.status === 'RATE_LIMITED') throw statusError(read)!;
        return read;
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
    // Nothing to read (a target-style transport sends again), or SESSION_NOT_FOUND: the SEND will say so.
    if (answer === undefined) return false;
    if (answer.kind === 'status') {
      if (answer.status === 'SESSION_NOT_FOUND') return false;
      // Any other status tells nothing of the session's state: nothing is sent on it.
      throw checkStatusError(answer);
    }
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
      let answer: EngineAnswer | undefined;
      if (first !== undefined) {
        outcome.polls++;
        try {
          answer = await first;
        } catch {
          // A check that was lost with its connection is simply asked again.
          answer = await this.#check(sessionId, outcome, signal);
        }
        // So is one the engine asked to slow down, after the wait it asked for.
        if (answer?.kind === 'status' && answer.status === 'RATE_LIMITED')
          answer = await this.#check(sessionId, outcome, signal, statusError(answer));
        first = undefined;
      } else {
        answer = await this.#check(sessionId, outcome, signal);
      }
      // A transport reads its answers back or offers a state check: one without either is a bug.
      if (answer === undefined) throw new Error(`transport ${this.transport.name} cannot check a state`);
      if (answer.kind === 'status') throw checkStatusError(answer);
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
  if (required.length === 0) return undefined;
  const missing = required.filter((field) => (target[field] ?? '') === '');
  if (missing.length === 0) return undefined;
  return new CognigyResetError(
    'CR_ERR_OPT_MISSING',
    `session ${JSON.stringify(target.sessionId.slice(0, 80))} lacks ${missing.join(', ')}, which this transport needs`,
    { field: missing[0]! },
  );
}
