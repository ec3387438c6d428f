/**
 * Tests that kill the mutation survivors that matter (docs/benchmarks.md, mutation testing): the adaptive
 * rate's start formula, a close with an empty reason, and `sessionIdProblem` at its bounds.
 */
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptiveRate } from '../src/reset/flow-control/adaptive-rate.js';
import { SESSION_ID_MAX_LENGTH, sessionIdProblem } from '../src/protocol/constraints.js';
import { closeError } from '../src/transports/runtime-ws/close-codes.js';

describe('the adaptive rate’s start', () => {
  /** A pacer whose accepted rate is far above its start rate, so that only the start formula binds. */
  function busyPacer(initialRate: number, rampMs: number) {
    const clock = { t: 1000 };
    const pacer = new AdaptiveRate({ now: () => clock.t, initialRate, rampMs });
    for (let i = 0; i < 100_000; i++) pacer.accepted(clock.t, clock.t);
    return { pacer, at: (ms: number) => pacer.rate((clock.t = 1000 + ms)) };
  }

  it('starts at the initial rate and doubles it every rampMs, smoothly in between', () => {
    const { pacer, at } = busyPacer(20, 125);
    assert.equal(pacer.phase, 'start');
    assert.equal(at(0), 20);
    assert.ok(Math.abs(at(62.5) - 20 * Math.SQRT2) < 1e-9, `${at(62.5)}`);
    assert.ok(Math.abs(at(125) - 40) < 1e-9);
    assert.ok(Math.abs(at(250) - 80) < 1e-9);
    assert.ok(Math.abs(at(500) - 320) < 1e-9);
  });

  it('follows its own initial rate and ramp period', () => {
    const { at } = busyPacer(7, 400);
    assert.equal(at(0), 7);
    assert.ok(Math.abs(at(400) - 14) < 1e-9);
    assert.ok(Math.abs(at(800) - 28) < 1e-9);
  });

  it('is held to twice the accepted rate when little is used', () => {
    const clock = { t: 0 };
    const pacer = new AdaptiveRate({ now: () => clock.t, initialRate: 20, rampMs: 125 });
    clock.t = 1000;
    // Nothing accepted: held at the first rate, however long the start.
    assert.equal(pacer.rate(), 20);
  });
});

describe('a close with an empty reason', () => {
  for (const [code, expected, text] of [
    [1000, 'CR_ERR_TRANSPORT_CLOSED_NORMAL', 'engine closed the connection (1000)'],
    [1008, 'CR_ERR_TRANSPORT_POLICY', 'engine closed with 1008'],
    [1009, 'CR_ERR_TRANSPORT_TOO_BIG', 'engine closed with 1009'],
    [1011, 'CR_ERR_TRANSPORT_ENGINE_ERROR', 'engine closed with 1011'],
    [1006, 'CR_ERR_TRANSPORT_DROPPED', 'connection dropped (1006)'],
    [4000, 'CR_ERR_TRANSPORT_DROPPED', 'connection dropped (4000)'],
  ] as const) {
    it(`${code}: ${expected}, its message with no dangling separator`, () => {
      const err = closeError(code, '');
      assert.equal(err.code, expected);
      assert.equal(err.message, text);
      assert.equal(err.closeCode, code);
    });
  }

  it('a reason is shown after a colon, made printable and cut at 123 characters', () => {
    assert.equal(closeError(1011, 'boom').message, 'engine closed with 1011: boom');
    assert.equal(closeError(1008, 'a\u001b[2Jb\nc').message, 'engine closed with 1008: a?[2Jb?c');
    const long = closeError(1000, 'x'.repeat(500)).message;
    assert.equal(long, `engine closed the connection (1000): ${'x'.repeat(123)}`);
  });
});

describe('sessionIdProblem', () => {
  it('refuses an empty id', () => {
    assert.equal(sessionIdProblem(''), 'is empty');
  });

  it(`takes ${SESSION_ID_MAX_LENGTH} characters and refuses one more, counting code points`, () => {
    assert.equal(sessionIdProblem('a'.repeat(SESSION_ID_MAX_LENGTH)), undefined);
    assert.equal(
      sessionIdProblem('a'.repeat(SESSION_ID_MAX_LENGTH + 1)),
      `is longer than ${SESSION_ID_MAX_LENGTH} characters`,
    );
    // Astral characters are two UTF-16 units each: 256 of them are 256 characters, not 512.
    assert.equal(sessionIdProblem('😀'.repeat(SESSION_ID_MAX_LENGTH)), undefined);
    assert.equal(
      sessionIdProblem('😀'.repeat(SESSION_ID_MAX_LENGTH + 1)),
      `is longer than ${SESSION_ID_MAX_LENGTH} characters`,
    );
  });

  it('refuses control, format and separator characters anywhere, and takes printable ones', () => {
    for (const bad of ['a\nb', '\u001b[2J', 'a\u0000', 'x\u202Ey', 'a\u2028b', '\u00ad', 'tab\there'])
      assert.equal(sessionIdProblem(bad), 'contains a character that is not printable', JSON.stringify(bad));
    for (const good of ['session-1', 'a b', 'café', '会话', 'x'])
      assert.equal(sessionIdProblem(good), undefined, good);
  });
});
