/**
 * The one interface every engine adapter implements. The reset pipeline speaks only this: send a
 * directive and get its acknowledgement, ask for the session's state, and close.
 */
import type { EngineAnswer, ResetDirective, StatusAnswer } from '../protocol/index.js';
import type { Layer } from '../reset/plan.js';

export interface RequestOptions {
  /** Deadline for the answer. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface Transport {
  readonly name: string;
  /** The layers a reset through this transport can clear. */
  readonly capabilities: ReadonlySet<Layer>;
  /** Sends one validated directive; resolves with the engine's status answer. */
  send(directive: ResetDirective, text: string, options: RequestOptions): Promise<StatusAnswer>;
  /** The state check: a state answer, or a status answer (`SESSION_NOT_FOUND`). */
  check(sessionId: string, requestId: string | undefined, options: RequestOptions): Promise<EngineAnswer>;
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
