/**
 * The one interface every engine adapter implements, and the only one the reset pipeline speaks: prepare
 * what a reset sends, send it (with a state check right behind it when asked), check a session's state,
 * and close. The target-style transports (REST, Socket) are adapted to it by `target-style.ts`.
 */
import type { EngineAnswer, StatusAnswer } from '../protocol/index.js';
import type { Layer, ResetPlan } from '../model/plan.js';
import type { RetryHook } from '../model/retry-policy.js';
import type { SessionTarget, TargetField } from '../model/target.js';

export type { SessionTarget, TargetField } from '../model/target.js';

export interface RequestOptions {
  /** Deadline for the answer. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/** What one attempt of a reset sends, built before anything is sent. */
export interface PreparedReset {
  target: SessionTarget;
  plan: ResetPlan;
  /** What a dry run prints: the directive, or the requests. */
  shown: unknown;
  /** The exact text sent (or the requests, as JSON): the audit log records its hash. */
  text: string;
  /** The id the answer echoes, when the transport's requests carry one. */
  requestId: string | undefined;
}

export interface PrepareOptions {
  /** The id for this attempt's request (a transport whose requests carry none ignores it). */
  requestId: string | undefined;
  maxDurationSec: number | undefined;
}

export interface ResetOptions extends RequestOptions {
  /** Verify the reset (the check behind it, or what the transport reads back from its answers). */
  verify: boolean;
  /**
   * With `verify`, the id of a state check sent right behind the reset on the same ordered channel, so
   * it is processed after the reset is applied without waiting a round trip for the acknowledgement.
   */
  checkRequestId: string | undefined;
  /**
   * The pipeline's retry step, for transports that retry inside one reset (REST retries each of its
   * requests): called with the error and the attempts made so far, it rethrows when the policy gives up;
   * otherwise it counts the attempt and waits (the policy's delay, the pause a "slow down" answer puts on
   * the whole job, the rate limit).
   */
  beforeRetry: RetryHook;
}

/**
 * What a transport that reads its own answers back found: whether it verified what it cleared, and the
 * layers it cleared but cannot read back.
 */
export interface ReadBack {
  verified: boolean;
  notVerified: Layer[];
}

/**
 * The answer to a reset: the engine's status (`RESET_COMPLETE` once applied). `readBack` is set by a
 * transport that verifies from its own answers; without it, the reset is verified by state checks.
 */
export type ResetAnswer = StatusAnswer & { readBack?: ReadBack };

export interface ResetExchange {
  ack: Promise<ResetAnswer>;
  /**
   * Whether the transport retries inside this reset (through `beforeRetry`): then a failure of `ack` is
   * final. Otherwise the pipeline retries the whole reset under its policy.
   */
  retriesInside: boolean;
  /** The state check sent behind the reset (`checkRequestId`), when there is one. */
  state: Promise<EngineAnswer> | undefined;
}

export interface Transport {
  readonly name: string;
  /** The layers a reset through this transport can clear. */
  readonly capabilities: ReadonlySet<Layer>;
  /** Fields each target must carry for `plan` (checked before anything is sent). */
  requiredFields(plan: ResetPlan): TargetField[];
  /** Builds what one attempt sends for `target`. Throws a coded error when it would be invalid. */
  prepare(target: SessionTarget, plan: ResetPlan, options: PrepareOptions): PreparedReset;
  /** Sends a prepared reset: its answer, and the state check behind it when asked for. */
  reset(prepared: PreparedReset, options: ResetOptions): ResetExchange;
  /**
   * The state check: a state answer, or a status answer (`SESSION_NOT_FOUND`). `undefined` from a
   * transport that cannot read a session's state (it verifies from its answers instead).
   */
  check(
    sessionId: string,
    requestId: string | undefined,
    options: RequestOptions,
  ): Promise<EngineAnswer> | undefined;
  /** Lets requests in flight finish, then closes every connection. */
  close(): Promise<void>;
}
