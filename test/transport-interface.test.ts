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

  it('asks a state check again after RATE_LIMITED, and never sends a reset for it', async () => {
    const slowDown: EngineAnswer = { kind: 'status', status: 'RATE_LIMITED', retryAfterMs: 1 };
    const run = async (
      checkAnswers: EngineAnswer[],
      precheck: boolean,
    ): Promise<{ outcome: Awaited<ReturnType<ResetPipeline['reset']>>; sends: number; checks: number }> => {
      let sends = 0;
      let checks = 0;
      const transport = ownTransport({
        reset: (): ResetExchange => {
          sends++;
          return {
            ack: Promise.resolve({ kind: 'status', status: 'RESET_COMPLETE' }),
            state: undefined,
            retriesInside: false,
          };
        },
        check: () => Promise.resolve(checkAnswers[Math.min(checks++, checkAnswers.length - 1)]!),
      });
      const outcome = await new ResetPipeline({ transport, plan, retry }).reset('s-1', { precheck });
      return { outcome, sends, checks };
    };
    // A resume's check before sending: the session was reset by the interrupted run; nothing is sent.
    const resumed = await run([slowDown, slowDown, resetState], true);
    assert.deepEqual(
      [resumed.outcome.outcome, resumed.outcome.verified, resumed.sends],
      ['skipped', true, 0],
    );
    assert.equal(resumed.checks, 3);
    // The check after a reset: verified once the engine answers, the reset sent once.
    const verified = await run([slowDown, resetState], false);
    assert.deepEqual(
      [verified.outcome.outcome, verified.outcome.verified, verified.sends],
      ['reset', true, 1],
    );
    // A status that says nothing of the session's state fails the check before sending: nothing sent.
    const rejected = await run([{ kind: 'status', status: 'REJECTED' }], true);
    assert.deepEqual(
      [rejected.outcome.outcome, rejected.outcome.error?.code, rejected.sends],
      ['failed', 'CR_ERR_RESET_REJECTED', 0],
    );
    // SESSION_NOT_FOUND before sending: sent, and the engine's answer to the reset decides.
    const unknown = await run([{ kind: 'status', status: 'SESSION_NOT_FOUND' }, resetState], true);
    assert.equal(unknown.sends, 1);
  });

  it('checks the state before sending again a reset whose answer was lost, and sends only if it shows none', async () => {
    const run = async (code: string, state: EngineAnswer): Promise<{ outcome: string; sends: number }> => {
      let sends = 0;
      const transport = ownTransport({
        reset: (): ResetExchange => ({
          ack:
            sends++ === 0
              ? Promise.reject(
                  new CognigyResetError(code as 'CR_ERR_PROTO_BAD_ANSWER', 'the answer was lost'),
                )
              : Promise.resolve({ kind: 'status', status: 'RESET_COMPLETE' }),
          state: undefined,
          retriesInside: false,
        }),
        check: () => Promise.resolve(sends === 1 ? state : resetState),
      });
      const outcome = await new ResetPipeline({ transport, plan, retry }).reset('s-1');
      assert.equal(outcome.verified, true);
      return { outcome: outcome.outcome, sends };
    };
    // Every layer the plan clears reported, and cleared: the lost send applied.
    const fullyReset: EngineAnswer = {
      kind: 'state',
      flowState: 'RESET',
      variables: {},
      dialogState: 'COLD',
      engineState: 'INITIALIZED',
      historyLength: 0,
      nluContext: null,
    };
    const notReset: EngineAnswer = { kind: 'state', flowState: 'ACTIVE', variables: { cart: 1 } };
    // A flow mid-way with no variables, and the seed's bare shape of a reset: either may be how the session
    // was before the send (the bare shape says nothing of the dialog, engine or NLU): sent again.
    const midFlow: EngineAnswer = { kind: 'state', flowState: 'ACTIVE', variables: {} };
    const unproven: EngineAnswer[] = [notReset, midFlow, resetState];
    for (const code of ['CR_ERR_PROTO_BAD_ANSWER', 'CR_ERR_TRANSPORT_DROPPED', 'CR_ERR_RESET_ACK_TIMEOUT']) {
      assert.deepEqual(await run(code, fullyReset), { outcome: 'reset', sends: 1 }, code);
      for (const state of unproven) {
        const result = await run(code, state);
        assert.deepEqual(result, { outcome: 'reset', sends: 2 }, `${code} ${JSON.stringify(state)}`);
      }
    }
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
