import * as assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, before, describe, it } from 'node:test';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { createResetter, type ResetterOptions } from '../src/reset/resetter.js';
import { type AnalyticsErrorMessage, CHANNELS, type DoneMessage } from '../src/reset/events.js';
import type { ResetOutcome } from '../src/reset/outcome.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import { withDeadline } from './helpers/ws.js';

function resetterFor(emu: Emulator, extra: Partial<ResetterOptions> = {}) {
  return createResetter({ url: emu.wsUrl, tenant: 't', botId: 'b', token: 'dev-token', ...extra });
}

async function collect(iterable: AsyncIterable<ResetOutcome>): Promise<ResetOutcome[]> {
  const out: ResetOutcome[] = [];
  for await (const outcome of iterable) out.push(outcome);
  return out;
}

const ids = (n: number, from = 1): string[] => Array.from({ length: n }, (_, i) => `session-${i + from}`);

describe('reset pipeline: verification', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ sessions: 1000 });
    emu.store.create({ sessionId: 'webhook-busy', blockingMs: 300 });
    emu.store.create({ sessionId: 'stuck', stuck: true });
    emu.store.create({ sessionId: 'refuses', rejects: true });
  });
  after(() => emu.close());

  it('polls the state check while a blocking webhook call keeps the flow ACTIVE, then verifies', async (t) => {
    const resetter = resetterFor(emu);
    t.after(() => resetter.close());
    const outcome = await resetter.reset('webhook-busy');
    assert.equal(outcome.outcome, 'reset');
    assert.equal(outcome.verified, true);
    assert.ok(outcome.polls >= 2, `polled ${outcome.polls} times`);
    assert.ok(
      outcome.latencyMs >= 300,
      `verified after ${outcome.latencyMs} ms, before the webhook call ended`,
    );
    assert.equal(
      ((await fetch(`${emu.httpUrl}/emulator/sessions/webhook-busy`).then((r) => r.json())) as any).flowState,
      'RESET',
    );
  });

  it('fails a flow that never leaves ACTIVE with CR_ERR_RESET_VERIFY_ACTIVE at its deadline, while the others verify', async (t) => {
    const resetter = resetterFor(emu, { verifyTimeoutMs: 600 });
    t.after(() => resetter.close());
    const outcomes = await collect(resetter.resetMany(['stuck', ...ids(30)], { concurrency: 8 }));
    const stuck = outcomes.find((o) => o.sessionId === 'stuck')!;
    assert.equal(stuck.outcome, 'failed');
    assert.equal(stuck.error?.code, 'CR_ERR_RESET_VERIFY_ACTIVE');
    assert.ok(stuck.latencyMs >= 600 && stuck.latencyMs < 5000, `failed after ${stuck.latencyMs} ms`);
    const others = outcomes.filter((o) => o.sessionId !== 'stuck');
    assert.equal(others.length, 30);
    assert.ok(others.every((o) => o.outcome === 'reset' && o.verified));
  });

  it('does not retry SESSION_NOT_FOUND or REJECTED, and reports each with its code after one attempt', async (t) => {
    const resetter = resetterFor(emu);
    t.after(() => resetter.close());
    const [ghost, refuses] = await Promise.all([resetter.reset('ghost'), resetter.reset('refuses')]);
    assert.deepEqual([ghost.error?.code, ghost.attempts], ['CR_ERR_RESET_SESSION_NOT_FOUND', 1]);
    assert.deepEqual([refuses.error?.code, refuses.attempts], ['CR_ERR_RESET_REJECTED', 1]);
  });

  it('with verify off, reports reset but verified: false and sends no state check', async (t) => {
    const resetter = resetterFor(emu, { verify: false });
    t.after(() => resetter.close());
    const queries = emu.stats().queries;
    const outcome = await resetter.reset('session-900');
    assert.deepEqual([outcome.outcome, outcome.verified, outcome.polls], ['reset', false, 0]);
    assert.equal(emu.stats().queries, queries);
  });

  it("calls the seed's analytics callback once per session with its latency and success, and publishes done events", async (t) => {
    const calls: [string, number, boolean][] = [];
    const events: DoneMessage[] = [];
    const listener = (m: unknown): void => void events.push(m as DoneMessage);
    subscribe(CHANNELS.done.name, listener);
    const resetter = resetterFor(emu, { analytics: (id, ms, ok) => calls.push([id, ms, ok]) });
    t.after(() => resetter.close());
    await collect(resetter.resetMany(['session-950', 'session-951', 'ghost-x']));
    unsubscribe(CHANNELS.done.name, listener);
    calls.sort((a, b) => a[0].localeCompare(b[0]));
    assert.deepEqual(
      calls.map(([id, , ok]) => [id, ok]),
      [
        ['ghost-x', false],
        ['session-950', true],
        ['session-951', true],
      ],
    );
    assert.ok(calls.every(([, ms]) => ms > 0));
    const mine = events.filter((e) =>
      ['session-950', 'session-951', 'ghost-x'].includes(e.outcome.sessionId),
    );
    assert.equal(mine.length, 3);
    assert.match(mine.find((e) => e.outcome.sessionId === 'session-950')!.directiveText!, /"type":"SEND"/);
  });

  it('keeps a throwing or rejecting analytics callback away from the resets: each is persisted and published', async () => {
    const failures: AnalyticsErrorMessage[] = [];
    let failed: () => void = () => undefined;
    const bothFailed = new Promise<void>((resolve) => (failed = resolve));
    const onError = (m: unknown): void => {
      failures.push(m as AnalyticsErrorMessage);
      if (failures.length === 2) failed();
    };
    const done: string[] = [];
    const onDone = (m: unknown): void => void done.push((m as DoneMessage).outcome.sessionId);
    subscribe(CHANNELS.analyticsError.name, onError);
    subscribe(CHANNELS.done.name, onDone);
    const resetter = resetterFor(emu, {
      analytics: (id) => {
        if (id === 'session-960') throw new Error('tracker bug');
        if (id === 'session-961') return Promise.reject(new Error('async tracker bug'));
        return undefined;
      },
    });
    const persisted: string[] = [];
    const targets = ['session-960', 'session-961', 'session-962'].map((sessionId, index) => ({
      sessionId,
      index,
    }));
    const summary = await resetter.run(targets, {
      persist: (outcome) => {
        persisted.push(outcome.sessionId);
        return Promise.resolve();
      },
    });
    await withDeadline(bothFailed, 5000, 'the analytics errors');
    unsubscribe(CHANNELS.analyticsError.name, onError);
    unsubscribe(CHANNELS.done.name, onDone);
    assert.equal(summary.reset, 3);
    assert.equal(summary.verified, 3);
    assert.deepEqual(persisted.sort(), ['session-960', 'session-961', 'session-962']);
    assert.deepEqual(done.filter((id) => id.startsWith('session-96')).sort(), [
      'session-960',
      'session-961',
      'session-962',
    ]);
    assert.deepEqual(failures.map((f) => [f.sessionId, (f.error as Error).message]).sort(), [
      ['session-960', 'tracker bug'],
      ['session-961', 'async tracker bug'],
    ]);
    await resetter.close();
  });

  it('stops a reset when its AbortSignal fires, with CR_ERR_RESET_ABORTED', async (t) => {
    const resetter = resetterFor(emu, { verifyTimeoutMs: 60_000 });
    t.after(() => resetter.close());
    const controller = new AbortController();
    const pending = resetter.reset('stuck', { signal: controller.signal });
    setTimeout(() => controller.abort(), 200).unref();
    const outcome = await withDeadline(pending, 5000, 'the aborted reset');
    assert.equal(outcome.error?.code, 'CR_ERR_RESET_ABORTED');
  });
});

describe('reset pipeline: faults', () => {
  it('leaves every session reset and verified, each reported once, with a drop every 7 frames', async () => {
    const emu = await startEmulator({ sessions: 400, faults: { dropEveryFrames: 7 } });
    // 16 in flight over 4 connections is ≈ 4 sessions of two frames each on a connection, more than the 7
    // it answers before it drops: an attempt fails often, and on a loaded machine a session failed 5
    // times in a row (the default budget). Failing 12 in a row is negligible; retries stay plentiful.
    const resetter = resetterFor(emu, {
      connections: 4,
      retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 12 },
    });
    const outcomes = await collect(resetter.resetMany(ids(400), { concurrency: 16 }));
    assert.equal(outcomes.length, 400);
    assert.equal(new Set(outcomes.map((o) => o.sessionId)).size, 400);
    const bad = outcomes.filter((o) => !(o.outcome === 'reset' && o.verified));
    assert.deepEqual(bad, []);
    assert.ok(emu.stats().drops > 10, `only ${emu.stats().drops} drops`);
    assert.ok(outcomes.some((o) => o.retried));
    for (const id of ids(400)) assert.equal(emu.store.get(id)!.flowState, 'RESET', id);
    await resetter.close();
    await emu.close();
  });

  it('retries RATE_LIMITED after retryAfterMs through a shared backoff until every session is verified', async () => {
    const emu = await startEmulator({ sessions: 150, faults: { messageRate: 100 } });
    const resetter = resetterFor(emu, {
      retry: { ...(await import('../src/model/retry-policy.js')).DEFAULT_RETRY_POLICY, maxAttempts: 20 },
    });
    const outcomes = await collect(resetter.resetMany(ids(150), { concurrency: 32 }));
    assert.ok(outcomes.every((o) => o.outcome === 'reset' && o.verified));
    assert.ok((emu.stats().answers['RATE_LIMITED'] ?? 0) > 0, 'the engine never said RATE_LIMITED');
    assert.ok(outcomes.some((o) => o.attempts > 1));
    assert.ok(resetter.pipeline.gate.pauses > 0, 'no shared pause');
    await resetter.close();
    await emu.close();
  });

  it('works against a strict engine (bare answers, matched by order)', async (t) => {
    const emu = await startEmulator({ sessions: 200, strict: true });
    t.after(() => emu.close());
    emu.store.create({ sessionId: 'busy', blockingMs: 200 });
    const resetter = resetterFor(emu);
    t.after(() => resetter.close());
    const outcomes = await collect(resetter.resetMany([...ids(200), 'busy', 'ghost'], { concurrency: 16 }));
    assert.equal(outcomes.filter((o) => o.verified).length, 201);
    assert.equal(
      outcomes.find((o) => o.sessionId === 'ghost')!.error?.code,
      'CR_ERR_RESET_SESSION_NOT_FOUND',
    );
  });

  it('refreshes an OAuth2 token that expires in the middle of a job and finishes it', async () => {
    const emu = await startEmulator({
      sessions: 3000,
      tokens: [],
      oauth: { tokenTtlSec: 1 },
      faults: { latencyMs: 3 },
    });
    const resetter = resetterFor(emu, {
      token: undefined,
      oauth2: {
        tokenUrl: `${emu.httpUrl}/auth/oauth2/token`,
        clientId: 'dev-client',
        clientSecret: 'dev-secret',
        skewMs: 0,
      },
      connections: 2,
    });
    const started = Date.now();
    // 3,000 resets, 4 at a time, at least one 3 ms round trip each: the job outlives the 1 s token.
    const outcomes = await collect(resetter.resetMany(ids(3000), { concurrency: 4 }));
    const elapsed = Date.now() - started;
    assert.ok(elapsed > 1000, `the job took ${elapsed} ms, shorter than the token's life: nothing expired`);
    assert.deepEqual(
      outcomes.filter((o) => !o.verified).map((o) => [o.sessionId, o.error]),
      [],
    );
    assert.ok((emu.stats().oauth['issued'] ?? 0) >= 2, 'no refresh');
    assert.ok(
      (emu.stats().closes['1008'] ?? 0) + (emu.stats().handshakes['401'] ?? 0) >= 1,
      'the token never expired',
    );
    await resetter.close();
    await emu.close();
  });
});

describe('reset pipeline: the first state check rides behind the directive', () => {
  async function engineAnsweringPairs(
    answer: (frames: Record<string, unknown>[]) => unknown[],
  ): Promise<{ wsUrl: string; frames: Record<string, unknown>[][]; close(): Promise<void> }> {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: () => 'cognigy-runtime-v1',
    });
    await new Promise((resolve) => wss.once('listening', resolve));
    const pairs: Record<string, unknown>[][] = [];
    wss.on('connection', (ws) => {
      let held: Record<string, unknown>[] = [];
      ws.on('message', (data) => {
        held.push(JSON.parse((data as Buffer).toString()));
        // Nothing is answered until both frames of a pair are here.
        if (held.length === 2) {
          pairs.push(held);
          for (const a of answer(held)) ws.send(JSON.stringify(a));
          held = [];
        }
      });
    });
    return {
      wsUrl: `ws://127.0.0.1:${(wss.address() as { port: number }).port}/ws/v1`,
      frames: pairs,
      close: () => new Promise<void>((resolve) => wss.close(() => resolve())),
    };
  }

  it('sends SEND then QUERY on one connection before the ack arrives, and verifies from that check', async () => {
    const engine = await engineAnsweringPairs(() => [
      { status: 'RESET_COMPLETE' },
      { flowState: 'RESET', variables: {} },
    ]);
    const resetter = createResetter({ url: engine.wsUrl, tenant: 't', botId: 'b', token: 'dev-token' });
    const outcome = await resetter.reset('pair-1');
    assert.deepEqual([outcome.outcome, outcome.verified, outcome.polls], ['reset', true, 1]);
    assert.deepEqual(
      engine.frames[0]!.map((f) => [f['type'], f['sessionId']]),
      [
        ['SEND', 'pair-1'],
        ['QUERY', 'pair-1'],
      ],
    );
    await resetter.close();
    await engine.close();
  });

  it('never counts a check that rode behind a directive the engine did not apply', async () => {
    const engine = await engineAnsweringPairs(() => [
      { status: 'SESSION_NOT_FOUND' },
      { flowState: 'RESET', variables: {} },
    ]);
    const resetter = createResetter({ url: engine.wsUrl, tenant: 't', botId: 'b', token: 'dev-token' });
    const outcome = await resetter.reset('pair-2');
    assert.equal(outcome.outcome, 'failed');
    assert.equal(outcome.verified, false);
    assert.equal(outcome.error?.code, 'CR_ERR_RESET_SESSION_NOT_FOUND');
    await resetter.close();
    await engine.close();
  });
});
