import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CognigyResetError } from '../src/errors.js';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { SEED_ENTRYPOINT } from '../src/emulator/store.js';
import { createResetter } from '../src/reset/resetter.js';
import { CognigyRestTransport } from '../src/transports/cognigy-rest/transport.js';
import { OAuth2TokenProvider } from '../src/transports/auth/oauth2.js';
import { CognigyRestClient } from '../src/transports/cognigy-rest/client.js';
import { DEFAULT_RETRY_POLICY } from '../src/model/retry-policy.js';
import { parseRetryAfter } from '../src/util/retry-after.js';
import { type ScriptedApi, scriptedApi, type Step } from './helpers/http.js';
import { dial, stateCheck } from './helpers/ws.js';
import { withFaults } from './helpers/faults.js';

const KEY = 'api-key-RECOGNISABLE-5e6f';
let emu: Emulator;
before(async () => {
  emu = await startEmulator({
    sessions: 100,
    tokens: [
      { token: KEY, apiKey: true },
      { token: 'dev-token' },
      { token: 'runtime-only', scopes: ['bot:runtime:execute'] },
      { token: 'other-project', projects: ['0123456789abcdef01234567'] },
    ],
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

/** A seeded session whose Flow's default context is empty, or not. */
function seededWhoseDefault(empty: boolean, from = 1): number {
  for (let k = from; k <= 100; k++) {
    const isEmpty = Object.keys(emu.store.flowDefault(target(k).flowReferenceId)).length === 0;
    if (isEmpty === empty) return k;
  }
  throw new Error('no such seeded session');
}

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
  it("resets the context to the Flow's default context, not empty, visible through the runtime door too", async () => {
    const k = seededWhoseDefault(false);
    const t = target(k);
    const flowDefault = emu.store.flowDefault(t.flowReferenceId);
    assert.notDeepEqual(flowDefault, {});
    assert.notDeepEqual(emu.store.get(t.sessionId)!.variables, flowDefault, 'the session has moved on');
    const res = await post(`/new/v2.0/sessions/${t.sessionId}/context/reset`, {
      userId: t.userId,
      flowReferenceId: t.flowReferenceId,
      entrypoint: t.entrypoint,
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, flowDefault);
    const client = await dial(emu.wsUrl);
    const state = await client.request(stateCheck(t.sessionId));
    assert.deepEqual(state['variables'], flowDefault);
    assert.equal(state['flowState'], 'ACTIVE', 'a context reset does not move the flow');
    client.close();
    const view = (await (await fetch(`${emu.httpUrl}/emulator/sessions/${t.sessionId}`)).json()) as {
      flowDefaultContext: unknown;
    };
    assert.deepEqual(view.flowDefaultContext, flowDefault);
    // Most seeded Flows have a default context; some have none.
    const empties = Array.from({ length: 100 }, (_, i) => target(i + 1)).filter(
      (x) => Object.keys(emu.store.flowDefault(x.flowReferenceId)).length === 0,
    ).length;
    assert.ok(empties > 0 && empties < 50, `${empties} of 100 seeded Flows have an empty default`);
    const e = target(seededWhoseDefault(true));
    const emptied = await post(`/new/v2.0/sessions/${e.sessionId}/context/reset`, {
      userId: e.userId,
      flowReferenceId: e.flowReferenceId,
      entrypoint: e.entrypoint,
    });
    assert.deepEqual(emptied.body, {});
  });

  it("refuses a context reset whose body spells only entryPoint (the reference pages'), with a 400/1000 problem", async () => {
    const t = target(2);
    const before = structuredClone(emu.store.get(t.sessionId)!.variables);
    const res = await post(`/new/v2.0/sessions/${t.sessionId}/context/reset`, {
      userId: t.userId,
      flowReferenceId: t.flowReferenceId,
      entryPoint: t.entrypoint,
    });
    assert.equal(res.status, 400);
    assert.match(res.type!, /application\/problem\+json/);
    assert.deepEqual(
      [res.body['status'], res.body['code'], res.body['title'], res.body['detail']],
      [400, 1000, 'Bad Request', 'missing argument: entrypoint'],
    );
    assert.deepEqual(emu.store.get(t.sessionId)!.variables, before, 'nothing was reset');
  });

  it('serves the paths without /new too', async () => {
    const t = target(2);
    const res = await post(`/v2.0/sessions/${t.sessionId}/context/reset`, {
      userId: t.userId,
      flowReferenceId: t.flowReferenceId,
      entrypoint: t.entrypoint,
    });
    assert.equal(res.status, 200);
  });

  it('takes an OAuth2 access token as Bearer, but never an API key as Bearer nor a token as X-API-Key', async () => {
    const issued = await fetch(`${emu.httpUrl}/auth/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=dev-client&client_secret=dev-secret',
    });
    const { access_token: token } = (await issued.json()) as { access_token: string };
    const path = '/new/v2.0/sessions/session-9/state/reset';
    const body = { userId: 'user-9' };
    assert.equal((await post(path, body, { authorization: `Bearer ${token}` })).status, 200);
    const keyAsBearer = await post(path, body, { authorization: `Bearer ${KEY}` });
    assert.deepEqual([keyAsBearer.status, keyAsBearer.body['code']], [401, 401]);
    assert.doesNotMatch(JSON.stringify(keyAsBearer.body), new RegExp(KEY));
    assert.equal((await post(path, body, { 'x-api-key': token })).status, 401);
    assert.equal((await post(`${path}?api_key=${encodeURIComponent(KEY)}`, body, {})).status, 200);
  });

  it("takes the emulator's own tokens (dev-token) as X-API-Key, ?api_key= and Bearer alike", async () => {
    const path = '/new/v2.0/sessions/session-10/state/reset';
    const body = { userId: 'user-10' };
    assert.equal((await post(path, body, { 'x-api-key': 'dev-token' })).status, 200);
    assert.equal((await post(path, body, { authorization: 'Bearer dev-token' })).status, 200);
    assert.equal((await post(`${path}?api_key=dev-token`, body, {})).status, 200);
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
  });

  it("answers 403 from the user's roles (a project the key may not manage), and invents no session:manage scope", async () => {
    const forbidden = await post(
      '/new/v2.0/sessions/session-4/state/reset',
      { userId: 'user-4' },
      { 'x-api-key': 'other-project' },
    );
    assert.deepEqual([forbidden.status, forbidden.body['code']], [403, 403]);
    assert.match(forbidden.type!, /application\/problem\+json/);
    // A key is not a runtime token: the runtime door's scopes mean nothing here.
    const runtimeOnly = await post(
      '/new/v2.0/sessions/session-4/state/reset',
      { userId: 'user-4' },
      { 'x-api-key': 'runtime-only' },
    );
    assert.equal(runtimeOnly.status, 200);
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
    assert.deepEqual(
      await client().resetContext(target(10)),
      emu.store.flowDefault(target(10).flowReferenceId),
    );
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

describe("CognigyRestTransport: verified when the context is the Flow's default", () => {
  const FLOW = '2b5c1f0e-1111-4222-8333-444455556666';
  const DEFAULT = { locale: 'de-DE', greeting: { shown: false }, retries: 0 };
  const row = (i: number) => ({
    sessionId: `shared-flow-${i}`,
    userId: `shared-user-${i}`,
    flowReferenceId: FLOW,
    entrypoint: SEED_ENTRYPOINT,
  });
  before(() => {
    emu.store.setFlowDefault(FLOW, DEFAULT);
    for (let i = 1; i <= 3; i++) {
      const r = row(i);
      emu.store.create({
        sessionId: r.sessionId,
        userId: r.userId,
        flowReferenceId: FLOW,
        variables: { ...DEFAULT, locale: 'en-GB', customer: `Customer ${i}` },
      });
    }
  });
  const resetterFor = (apiUrl: string, extra: { defaultContextKeys?: string[] } = {}) =>
    createResetter({
      transport: new CognigyRestTransport({ apiUrl, apiKey: KEY, ratePerSec: 0, ...extra }),
      plan: { keepNlu: true },
    });

  it("learns each Flow's default from its first reset in the run, then verifies the others against it, no flag needed", async () => {
    const resetter = resetterFor(emu.httpUrl);
    try {
      const [first, second, third] = [
        await resetter.pipeline.reset(row(1)),
        await resetter.pipeline.reset(row(2)),
        await resetter.pipeline.reset(row(3)),
      ];
      assert.deepEqual([first.outcome, first.verified, first.notVerified], ['reset', false, ['variables']]);
      for (const o of [second, third]) {
        assert.deepEqual([o.outcome, o.verified, o.notVerified, o.error], ['reset', true, [], null]);
      }
      assert.deepEqual(emu.store.get('shared-flow-3')!.variables, DEFAULT);
    } finally {
      await resetter.close();
    }
  });

  it("fails a reset whose context still holds the session's own values, naming the keys and never the values", async () => {
    const api = await scriptedApi();
    const resetter = resetterFor(api.url);
    try {
      api.script = [
        { json: DEFAULT },
        { json: { ...DEFAULT, locale: 'en-GB', customer: 'Customer SECRET-NAME' } },
      ];
      const first = await resetter.pipeline.reset(row(1));
      const second = await resetter.pipeline.reset(row(2));
      assert.equal(first.outcome, 'reset');
      assert.deepEqual(
        [second.outcome, second.verified, second.error?.code],
        ['failed', false, 'CR_ERR_RESET_VERIFY_VARIABLES'],
      );
      assert.match(
        second.error!.message,
        /differs in 2 key\(s\) from the Flow's default.*: locale, customer$/,
      );
      assert.doesNotMatch(second.error!.message, /SECRET-NAME|en-GB/);
    } finally {
      await resetter.close();
      api.close();
    }
  });

  it('with defaultContextKeys, verifies the first reset too, by the keys it holds', async () => {
    const api = await scriptedApi();
    const resetter = resetterFor(api.url, { defaultContextKeys: ['locale', 'greeting', 'retries'] });
    try {
      api.script = [{ json: DEFAULT }, { json: { ...DEFAULT, customer: 'x' } }];
      const first = await resetter.pipeline.reset(row(1));
      assert.deepEqual([first.outcome, first.verified, first.notVerified], ['reset', true, []]);
      const second = await resetter.pipeline.reset(row(2));
      assert.equal(second.error?.code, 'CR_ERR_RESET_VERIFY_VARIABLES');
      assert.match(second.error.message, /beyond the Flow's default: customer$/);
    } finally {
      await resetter.close();
      api.close();
    }
  });
});
