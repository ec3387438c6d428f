import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CognigyResetError, type ErrorCode } from '../src/errors.js';
import { checkResetDirective } from '../src/protocol/index.js';
import { type Layer, planReset } from '../src/model/plan.js';
import {
  boundedRetryAfter,
  DEFAULT_RETRY_POLICY,
  retryDelay,
  shouldRetry,
} from '../src/model/retry-policy.js';
import { MAX_RETRY_AFTER_MS } from '../src/util/retry-after.js';

describe('planReset', () => {
  const table: [
    string,
    Parameters<typeof planReset>[0],
    Layer[],
    Record<string, string>,
    [boolean, boolean, boolean],
  ][] = [
    [
      'everything by default',
      {},
      ['flow', 'dialog', 'engine', 'variables', 'history', 'nlu'],
      { flowState: 'RESET', dialogState: 'COLD', engineState: 'INITIALIZED' },
      [true, true, true],
    ],
    [
      '--keep-history',
      { keepHistory: true },
      ['flow', 'dialog', 'engine', 'variables', 'nlu'],
      { flowState: 'RESET', dialogState: 'COLD', engineState: 'INITIALIZED' },
      [true, false, true],
    ],
    [
      '--keep-variables',
      { keepVariables: true },
      ['flow', 'dialog', 'engine', 'history', 'nlu'],
      { flowState: 'RESET', dialogState: 'COLD', engineState: 'INITIALIZED' },
      [false, true, true],
    ],
    [
      '--keep-nlu',
      { keepNlu: true },
      ['flow', 'dialog', 'engine', 'variables', 'history'],
      { flowState: 'RESET', dialogState: 'COLD', engineState: 'INITIALIZED' },
      [true, true, false],
    ],
    ['--flow-only', { flowOnly: true }, ['flow'], { flowState: 'RESET' }, [false, false, false]],
    [
      '--flow-only with a keep flag',
      { flowOnly: true, keepHistory: true },
      ['flow'],
      { flowState: 'RESET' },
      [false, false, false],
    ],
  ];
  for (const [name, options, cleared, matrix, [vars, history, nlu]] of table) {
    it(`plans ${name}`, () => {
      const plan = planReset(options);
      assert.deepEqual(plan.cleared, cleared);
      assert.deepEqual(plan.stateClearMatrix, matrix);
      assert.deepEqual(plan.contextWipeDirective, {
        clearVariables: vars,
        clearHistory: history,
        clearNLUContext: nlu,
      });
      assert.deepEqual(plan.notClearable, []);
      // Every plan compiles to a directive the engine accepts.
      const directive = {
        type: 'SEND',
        sessionId: 's',
        stateClearMatrix: plan.stateClearMatrix,
        contextWipeDirective: plan.contextWipeDirective,
        timestamp: '2026-11-24T00:00:00Z',
      };
      assert.equal(checkResetDirective(directive), undefined);
    });
  }

  it('says which wanted layers a transport cannot clear', () => {
    const plan = planReset({ keepHistory: true }, new Set<Layer>(['variables', 'nlu']));
    assert.deepEqual(plan.cleared, ['variables', 'nlu']);
    assert.deepEqual(plan.kept, ['history']);
    assert.deepEqual(plan.notClearable, ['flow', 'dialog', 'engine']);
  });
});

describe('retry policy', () => {
  const err = (code: ErrorCode, retryAfterMs?: number) =>
    new CognigyResetError(code, code, retryAfterMs === undefined ? {} : { retryAfterMs });

  const retried: ErrorCode[] = [
    'CR_ERR_TRANSPORT_RATE_LIMITED',
    'CR_ERR_RESET_RATE_LIMITED',
    'CR_ERR_TRANSPORT_DROPPED',
    'CR_ERR_RESET_ACK_TIMEOUT',
    'CR_ERR_TRANSPORT_DEAD',
    'CR_ERR_AUTH_TOKEN_EXPIRED',
  ];
  const notRetried: ErrorCode[] = [
    'CR_ERR_AUTH_UNAUTHORIZED',
    'CR_ERR_AUTH_FORBIDDEN',
    'CR_ERR_TRANSPORT_POLICY',
    'CR_ERR_TRANSPORT_TOO_BIG',
    'CR_ERR_RESET_SESSION_NOT_FOUND',
    'CR_ERR_RESET_REJECTED',
    'CR_ERR_PROTO_INVALID_FIELD',
  ];
  for (const code of retried)
    it(`retries ${code}`, () => assert.equal(shouldRetry(DEFAULT_RETRY_POLICY, err(code), 1), true));
  for (const code of notRetried)
    it(`does not retry ${code}`, () => assert.equal(shouldRetry(DEFAULT_RETRY_POLICY, err(code), 1), false));

  it('never retries a plain Error (a programmer error)', () => {
    assert.equal(shouldRetry(DEFAULT_RETRY_POLICY, new TypeError('bug'), 1), false);
  });

  it('stops at maxAttempts', () => {
    assert.equal(
      shouldRetry(DEFAULT_RETRY_POLICY, err('CR_ERR_TRANSPORT_DROPPED'), DEFAULT_RETRY_POLICY.maxAttempts),
      false,
    );
  });

  it('jitters fully within the capped exponential step', () => {
    assert.equal(
      retryDelay(DEFAULT_RETRY_POLICY, 1, err('CR_ERR_TRANSPORT_DROPPED'), () => 0),
      0,
    );
    assert.equal(
      retryDelay(DEFAULT_RETRY_POLICY, 1, err('CR_ERR_TRANSPORT_DROPPED'), () => 0.999999),
      249,
    );
    assert.equal(
      retryDelay(DEFAULT_RETRY_POLICY, 3, err('CR_ERR_TRANSPORT_DROPPED'), () => 0.5),
      500,
    );
    assert.equal(
      retryDelay(DEFAULT_RETRY_POLICY, 30, err('CR_ERR_TRANSPORT_DROPPED'), () => 0.999999),
      14_999,
    );
  });

  it('waits at least what the engine asked for', () => {
    assert.equal(
      retryDelay(DEFAULT_RETRY_POLICY, 1, err('CR_ERR_RESET_RATE_LIMITED', 1200), () => 0.5),
      1200,
    );
    assert.equal(
      retryDelay(DEFAULT_RETRY_POLICY, 7, err('CR_ERR_TRANSPORT_RATE_LIMITED', 10), () => 0.5),
      7500,
    );
  });
});

describe('the bound on how long the engine may ask to wait', () => {
  const asking = (ms: number): CognigyResetError =>
    new CognigyResetError('CR_ERR_RESET_RATE_LIMITED', 'slow down', { retryAfterMs: ms });

  it('keeps a wait up to the bound, the bound itself included', () => {
    for (const ms of [0, 1, MAX_RETRY_AFTER_MS]) {
      const err = asking(ms);
      assert.equal(boundedRetryAfter(DEFAULT_RETRY_POLICY, err), err, `${ms} ms`);
    }
  });

  it('turns a longer wait, or one that never ends, into CR_ERR_RESET_RETRY_AFTER_TOO_LONG, which never retries', () => {
    for (const ms of [MAX_RETRY_AFTER_MS + 1, 86_400_000, Infinity]) {
      const bounded = boundedRetryAfter(DEFAULT_RETRY_POLICY, asking(ms)) as CognigyResetError;
      assert.equal(bounded.code, 'CR_ERR_RESET_RETRY_AFTER_TOO_LONG', `${ms} ms`);
      assert.equal(bounded.retryAfterMs, ms);
      assert.equal(shouldRetry(DEFAULT_RETRY_POLICY, bounded, 1), false);
    }
    // A policy may set its own bound.
    const policy = { ...DEFAULT_RETRY_POLICY, maxRetryAfterMs: 1000 };
    assert.equal(
      (boundedRetryAfter(policy, asking(1001)) as CognigyResetError).code,
      'CR_ERR_RESET_RETRY_AFTER_TOO_LONG',
    );
  });
});
