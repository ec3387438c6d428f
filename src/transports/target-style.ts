/**
 * The adapter of the target-style transports (REST, Socket) to the one `Transport` interface. They reset
 * a target in their own requests, retry inside (through the pipeline's `beforeRetry`), and verify what
 * they can from their own answers: the reset answers `RESET_COMPLETE` with what they read back, and they
 * have no state check to offer.
 */
import type { EngineAnswer } from '../protocol/index.js';
import type { Layer, ResetPlan } from '../model/plan.js';
import type { RetryHook } from '../model/retry-policy.js';
import type { SessionTarget, TargetField } from '../model/target.js';
import type {
  PreparedReset,
  ReadBack,
  RequestOptions,
  ResetAnswer,
  ResetExchange,
  ResetOptions,
  Transport,
} from './transport.js';

export interface TargetResetOptions extends RequestOptions {
  verify: boolean;
  /** The retry step every retry goes through (see `ResetOptions.beforeRetry`). */
  beforeRetry?: RetryHook | undefined;
}

export abstract class TargetStyleTransport implements Transport {
  abstract readonly name: string;
  abstract readonly capabilities: ReadonlySet<Layer>;
  abstract requiredFields(plan: ResetPlan): TargetField[];
  /** What a dry run prints for a target: the requests that would be sent. */
  abstract describe(target: SessionTarget, plan: ResetPlan): unknown;
  /** Resets what the plan names and verifies what it can from the answers. */
  abstract resetTarget(
    target: SessionTarget,
    plan: ResetPlan,
    options: TargetResetOptions,
  ): Promise<ReadBack>;
  abstract close(): Promise<void>;

  /** The requests are known before they are sent: the audit hashes them even when the first one fails. */
  prepare(target: SessionTarget, plan: ResetPlan): PreparedReset {
    const shown = this.describe(target, plan);
    return { target, plan, shown, text: JSON.stringify(shown ?? null), requestId: undefined };
  }

  reset(prepared: PreparedReset, options: ResetOptions): ResetExchange {
    return {
      ack: this.resetTarget(prepared.target, prepared.plan, options).then((readBack): ResetAnswer => ({
        kind: 'status',
        status: 'RESET_COMPLETE',
        readBack,
      })),
      state: undefined,
      retriesInside: true,
    };
  }

  check(): Promise<EngineAnswer> | undefined {
    return undefined;
  }
}
