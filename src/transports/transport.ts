/**
 * The one interface every engine adapter implements. The reset pipeline speaks only this: send a
 * directive and get its acknowledgement, ask for the session's state, and close.
 */
import type { EngineAnswer, ResetDirective, StatusAnswer } from '../protocol/index.js';
import type { Layer, ResetPlan } from '../reset/plan.js';
import type { RetryHook } from '../reset/retry-policy.js';

/** A session and what some transports need to address it (REST: userId, flowReferenceId, entrypoint). */
export interface SessionTarget {
  sessionId: string;
  userId?: string | undefined;
  flowReferenceId?: string | undefined;
  entrypoint?: string | undefined;
}

export type TargetField = 'userId' | 'flowReferenceId' | 'entrypoint';

/**
 * What a transport that resets by target reports: whether it verified what it cleared, and the layers it
 * cleared but cannot read back. (Retries go through `RequestOptions.beforeRetry`.)
 */
export interface TargetResetResult {
  verified: boolean;
  notVerified: Layer[];
}

export interface RequestOptions {
  /** Deadline for the answer. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /**
   * The pipeline's retry step, for target-style transports that retry inside: called with the error and
   * the attempts made so far, it rethrows when the policy gives up; otherwise it counts the attempt and
   * waits (the policy's delay, the pause a "slow down" answer puts on the whole job, the rate limit).
   */
  beforeRetry?: RetryHook | undefined;
}

export interface Transport {
  readonly name: string;
  /** The layers a reset through this transport can clear. */
  readonly capabilities: ReadonlySet<Layer>;
  /** Fields each target must carry for `plan` (checked before anything is sent). */
  requiredFields(plan: ResetPlan): TargetField[];
  /** Runtime-style: sends one validated directive; resolves with the engine's status answer. */
  send?(directive: ResetDirective, text: string, options: RequestOptions): Promise<StatusAnswer>;
  /** Runtime-style: the state check, a state answer or a status answer (`SESSION_NOT_FOUND`). */
  check?(sessionId: string, requestId: string | undefined, options: RequestOptions): Promise<EngineAnswer>;
  /** Target-style (REST, Socket): resets what the plan names and verifies what it can from the answers. */
  resetTarget?(
    target: SessionTarget,
    plan: ResetPlan,
    options: RequestOptions & { verify: boolean },
  ): Promise<TargetResetResult>;
  /** What a dry run prints for a target: the requests that would be sent. */
  describe?(target: SessionTarget, plan: ResetPlan): unknown;
  /**
   * Optional: sends the directive and, right behind it on the same ordered channel, a state check, so
   * the check is processed after the reset is applied without waiting a round trip for the ack.
   */
  sendWithCheck?(
    directive: ResetDirective,
    text: string,
    checkRequestId: string | undefined,
    options: RequestOptions,
  ): { ack: Promise<StatusAnswer>; state: Promise<EngineAnswer> };
  /** Lets requests in flight finish, then closes every connection. */
  close(): Promise<void>;
}
