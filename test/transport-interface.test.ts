import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CognigyResetError } from '../src/errors.js';
import { LAYERS, planReset } from '../src/model/plan.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import type { EngineAnswer } from '../src/protocol/index.js';
import { ResetPipeline } from '../src/reset/pipeline.js';
import type {
  PreparedReset,
  ResetExchange,
  ResetOptions,
  SessionTarget,
  Transport,
} from '../src/transports/transport.js';
import { sha256 } from '../src/util/sha256.js';

const plan = planReset();
const retry = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 1 };

/** A transport of a library user's own: the interface's members and nothing else. */
function ownTransport(
  behaviour: Pick<Transport, 'reset' | 'check'>,
): Transport & { prepared: PreparedReset[] } {
  const prepared: PreparedReset[] = [];
  return {
    name: 'own',
    capabilities: new Set(LAYERS),
    prepared,
    requiredFields: () => [],
    prepare(target: SessionTarget, p, options) {
      const shown = { reset: target.sessionId, id: options.requestId };
      const out = { target, plan: p, shown, text: JSON.stringify(shown), requestId: options.requestId };
      prepared.push(out);
      return out;
    },
    reset: behaviour.reset,
    check: behaviour.check,
    close: () => Promise.resolve(),
  };
}

const resetState: EngineAnswer = { kind: 'state', flowState: 'RESET', variables: {} };

describe('the Transport interface: a transport of its own in the pipeline', () => {
  it('resets through prepare and reset, verifies through check, and hashes what was sent', async () => {
    const checks: string[] = [];
    const transport = ownTransport({
      reset: (): ResetExchange => ({
        ack: Promise.resolve({ kind: 'status', status: 'RESET_COMPLETE' }),
        state: undefined,
        retriesInside: false,
      }),
      check: (sessionId) => {
        checks.push(sessionId);
        return Promise.resolve(resetState);
      },
    });
    const pipeline = new ResetPipeline({ transport, plan, retry });
    const outcome = await pipeline.reset('s-1');
    assert.equal(outcome.outcome, 'reset');
    assert.equal(outcome.verified, true);
    assert.deepEqual(checks, ['s-1']);
    assert.equal(outcome.polls, 1);
    assert.equal(outcome.directiveHash, sha256(transport.prepared[0]!.text));
    assert.deepEqual(pipeline.describe({ sessionId: 's-2' }), { reset: 's-2', id: undefined });
  });

  it('takes what a transport read back from its answers, with its retries counted, and asks no state', async () => {
    let calls = 0;
    const transport = ownTransport({
      reset: (_prepared, options: ResetOptions): ResetExchange => ({
        ack: (async () => {
          calls++;
          // One retryable failure inside, handed to the pipeline's retry step.
          await options.beforeRetry(new CognigyResetError('CR_ERR_TRANSPORT_REST_SERVER', '503'), 1);
          return {
            kind: 'status' as const,
            status: 'RESET_COMPLETE',
            readBack: { verified: true, notVerified: ['nlu' as const] },
          };
        })(),
        state: undefined,
        retriesInside: true,
      }),
      check: () => undefined,
    });
    const pipeline = new ResetPipeline({ transport, plan, retry, random: () => 0 });
    const outcome = await pipeline.reset('s-1', { precheck: true });
    assert.equal(outcome.outcome, 'reset');
    assert.equal(outcome.verified, true);
    assert.deepEqual(outcome.notVerified, ['nlu']);
    assert.equal(outcome.attempts, 2);
    assert.equal(outcome.retried, true);
    assert.equal(outcome.polls, 0);
    assert.equal(calls, 1);
  });

  it('does not retry again what a transport that retries inside gave up on', async () => {
    let calls = 0;
    const transport = ownTransport({
      reset: (): ResetExchange => {
        calls++;
        return {
          ack: Promise.reject(new CognigyResetError('CR_ERR_TRANSPORT_REST_SERVER', 'gave up')),
          state: undefined,
          retriesInside: true,
        };
      },
      check: () => undefined,
    });
    const outcome = await new ResetPipeline({ transport, plan, retry }).reset('s-1');
    assert.equal(outcome.outcome, 'failed');
    assert.equal(outcome.error?.code, 'CR_ERR_TRANSPORT_REST_SERVER');
    assert.equal(calls, 1);
  });
});
