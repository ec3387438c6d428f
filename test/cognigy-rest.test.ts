import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CognigyResetError } from '../src/errors.js';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { OAuth2TokenProvider } from '../src/transports/auth/oauth2.js';
import { CognigyRestClient } from '../src/transports/cognigy-rest/client.js';
import { DEFAULT_RETRY_POLICY } from '../src/reset/retry-policy.js';
import { parseRetryAfter } from '../src/util/retry-after.js';
import { type ScriptedApi, scriptedApi, type Step } from './helpers/http.js';
import { dial, stateCheck } from './helpers/ws.js';
import { withFaults } from './helpers/faults.js';

const KEY = 'api-key-RECOGNISABLE-5e6f';
let emu: Emulator;
before(async () => {
  emu = await startEmulator({
    sessions: 100,
    tokens: [{ token: KEY }, { token: 'dev-token' }, { token: 'read-only', scopes: ['bot:runtime:execute'] }],
  });
  emu.store.create({ sessionId: 'odd id/with space?', userId: 'u-odd' });
});
after(() => emu.close());

async function post(path: string, body: unknown, headers: Record<string, string> = { 'x-api-key': KEY }) {
  const res = await fetch(`${emu.httpUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as Record<string, any>,
  };
}

const target = (k: number) => ({
  sessionId: `session-${k}`,
  userId: `user-${k}`,
  flowReferenceId: `7c0e5a4e-0000-4000-8000-${k.toString(16).padStart(12, '0')}`,
  entrypoint: '5f1e2d3c4b5a69788796a5b4',
});

async function rejection(promise: Promise<unknown>): Promise<CognigyResetError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof CognigyResetError) return err;
    throw err;
  }
  assert.fail('expected a rejection');
}

describe('emulator REST door (Cognigy REST API v2.0 sessions)', () => {
  it('resets the context to the Flow default, visible through the runtime door too', async () => {
    const t = target(1);
    const res = await post(`/new/v2.0/sessions/${t.sessionId}/context/reset`, {
      userId: t.userId,
      flowReferenceId: t.flowReferenceId,
      entrypoint: t.entrypoint,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, {});
    const client = await dial(emu.wsUrl);
    const state = await client.request(stateCheck('session-1'));
    assert.deepEqual(state['variables'], {});
    assert.equal(state['flowState'], 'ACTIVE', 'a context reset does not move the flow');
    client.close();
  });

  it('accepts the entryPoint spelling, paths without /new, and a Bearer token', async () => {
    const t = target(2);
    const res = await post(
      `/v2.0/sessions/${t.sessionId}/context/reset`,
      { userId: t.userId, flowReferenceId: t.flowReferenceId, entryPoint: t.entrypoint },
      { authorization: 'Bearer dev-token' },
    );
    assert.equal(res.status, 200);
  });

  it('resets and injects the NLU state and injects context', async () => {
    const t = target(3);
    assert.deepEqual(
      (await post(`/new/v2.0/sessions/${t.sessionId}/state/reset`, { userId: t.userId })).body,
      {},
    );
    assert.equal(emu.store.get('session-3')!.nluContext, null);
    assert.deepEqual(
      (await post(`/new/v2.0/sessions/${t.sessionId}/state/inject`, { userId: t.userId, state: 'billing' }))
        .body,
      { state: 'billing' },
    );
    const injected = await post(`/new/v2.0/sessions/${t.sessionId}/context/inject`, {
      userId: t.userId,
      context: { vip: true },
    });
    assert.equal(injected.body['vip'], true);
  });

  it('answers RFC 7807 problems with Cognigy codes and a traceId', async () => {
    const missing = await post('/new/v2.0/sessions/ghost/context/reset', {
      userId: 'u',
      flowReferenceId: 'f',
      entrypoint: 'e',
    });
    assert.equal(missing.status, 404);
    assert.match(missing.type!, /application\/problem\+json/);
    assert.deepEqual(
      [missing.body['status'], missing.body['code'], missing.body['title']],
      [404, 1002, 'Not Found'],
    );
    assert.match(missing.body['traceId'], /^trace-/);
    assert.equal((await post('/new/v2.0/sessions/session-4/state/reset', {})).body['code'], 1000);
    assert.equal((await post('/new/v2.0/sessions/session-4/state/reset', { userId: 42 })).body['code'], 1005);
    const noKey = await post('/new/v2.0/sessions/session-4/state/reset', { userId: 'user-4' }, {});
    assert.equal(noKey.status, 401);
    assert.doesNotMatch(JSON.stringify(noKey.body), new RegExp(KEY));
    assert.equal(
      (
        await post(
          '/new/v2.0/sessions/session-4/state/reset',
          { userId: 'user-4' },
          { 'x-api-key': 'read-only' },
        )
      ).status,
      403,
    );
  });

  it('answers 429 with Retry-After past the restRate fault', async () => {
    await withFaults(emu, { restRate: 1 }, async () => {
      const statuses = await Promise.all(
        [5, 6, 7].map((k) => post(`/new/v2.0/sessions/session-${k}/state/reset`, { userId: `user-${k}` })),
      );
      const limited = statuses.find((s) => s.status === 429);
      assert.ok(limited, 'no 429');
      assert.equal(limited.retryAfter, '1');
      assert.equal(limited.body['code'], 429);
    });
  });
});

describe('CognigyRestClient', () => {
  const client = (extra: Partial<ConstructorParameters<typeof CognigyRestClient>[0]> = {}) =>
    new CognigyRestClient({ apiUrl: emu.httpUrl, apiKey: KEY, ratePerSec: 0, ...extra });

  it('resets context and state, URL-encoding the session id', async () => {
    assert.deepEqual(await client().resetContext(target(10)), {});
    await client().resetState(target(11));
    const odd = emu.store.get('odd id/with space?')!;
    await client().resetState({ sessionId: odd.sessionId, userId: 'u-odd' });
    assert.equal(emu.store.get('odd id/with space?')!.nluContext, null);
  });

  it('maps a 404 problem to CR_ERR_RESET_SESSION_NOT_FOUND with status, Cognigy code and traceId, never the key', async () => {
    const err = await rejection(client().resetState({ sessionId: 'ghost', userId: 'u' }));
    assert.equal(err.code, 'CR_ERR_RESET_SESSION_NOT_FOUND');
    assert.deepEqual([err.status, err.cognigyCode], [404, 1002]);
    assert.match(err.traceId!, /^trace-/);
    assert.doesNotMatch(err.message, new RegExp(KEY));
  });

  it('refuses a context reset without flowReferenceId and entrypoint before sending anything', async () => {
    const c = client();
    const err = await rejection(c.resetContext({ sessionId: 'session-12', userId: 'user-12' }));
    assert.equal(err.code, 'CR_ERR_OPT_MISSING');
    assert.equal(c.requests, 0);
  });

  it('retries 429 after Retry-After until it succeeds', async () => {
    await withFaults(emu, { restRate: 2 }, async () => {
      const c = client();
      await Promise.all([20, 21, 22, 23].map((k) => c.resetState(target(k))));
      assert.ok(c.requests > 4, `only ${c.requests} requests: no 429 was retried`);
    });
  });

  it('applies its default rate cap of 1,000 requests per 5 minutes', async () => {
    const c = new CognigyRestClient({ apiUrl: emu.httpUrl, apiKey: KEY });
    const started = Date.now();
    // The bucket holds 4 (one second of the cap, rounded up); the 5th waits for a token.
    await Promise.all([30, 31, 32, 33, 34].map((k) => c.resetState(target(k))));
    assert.ok(Date.now() - started >= 250, 'five requests went out at once');
  });

  it('refreshes an OAuth2 token once on a 401', async () => {
    const tokens = new OAuth2TokenProvider({
      tokenUrl: `${emu.httpUrl}/auth/oauth2/token`,
      clientId: 'dev-client',
      clientSecret: 'dev-secret',
      initialToken: 'stale',
    });
    await client({ apiKey: undefined, tokens }).resetState(target(40));
    assert.equal(tokens.requests, 1);
  });

  describe('against a failing server', () => {
    const problem = (status: number): Step => ({
      status,
      problem: { status, code: 1008, traceId: 't-1', detail: 'boom' },
      retryAfterDateMs: 1000,
    });
    let api: ScriptedApi;
    before(async () => {
      api = await scriptedApi();
    });
    after(() => api.close());

    it('retries 5xx (honouring an HTTP-date Retry-After) and recovers', async () => {
      api.script = [problem(503), problem(500)];
      const c = new CognigyRestClient({ apiUrl: api.url, apiKey: KEY, ratePerSec: 0 });
      await c.resetState({ sessionId: 's', userId: 'u' });
      assert.equal(c.requests, 3);
    });

    it('gives up with CR_ERR_TRANSPORT_REST_SERVER after the last attempt, keeping the traceId', async () => {
      api.script = [problem(502), problem(502)];
      const c = new CognigyRestClient({
        apiUrl: api.url,
        apiKey: KEY,
        ratePerSec: 0,
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 2, baseDelayMs: 1 },
      });
      const err = await rejection(c.resetState({ sessionId: 's', userId: 'u' }));
      assert.deepEqual(
        [err.code, err.status, err.cognigyCode, err.traceId],
        ['CR_ERR_TRANSPORT_REST_SERVER', 502, 1008, 't-1'],
      );
    });

    it('fails a request past its deadline with CR_ERR_TRANSPORT_REST_TIMEOUT', async () => {
      api.script = ['hang', 'hang'];
      const c = new CognigyRestClient({
        apiUrl: api.url,
        apiKey: KEY,
        ratePerSec: 0,
        timeoutMs: 150,
        retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 2, baseDelayMs: 1 },
      });
      const err = await rejection(c.resetState({ sessionId: 's', userId: 'u' }));
      assert.equal(err.code, 'CR_ERR_TRANSPORT_REST_TIMEOUT');
      assert.equal(c.requests, 2);
    });
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-25T12:00:00Z');
    assert.equal(parseRetryAfter('7', now), 7000);
    assert.equal(parseRetryAfter('Wed, 25 Nov 2026 12:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Wed, 25 Nov 2026 11:00:00 GMT', now), 0);
    assert.equal(parseRetryAfter('soon', now), undefined);
  });
});
