import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import {
  dial,
  dialRefused,
  getJson,
  seedDirective,
  sendJson,
  stateCheck,
  withDeadline,
} from './helpers/ws.js';
import { withFaults } from './helpers/faults.js';

describe('emulator handshake', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({
      sessions: 3,
      tokens: [
        { token: 'dev-token' },
        { token: 'read-only', scopes: ['bot:runtime:execute'] },
        { token: 'no-scopes', scopes: [] },
      ],
    });
  });
  after(() => emu.close());

  it('accepts a valid handshake and selects the cognigy-runtime-v1 subprotocol', async () => {
    const client = await dial(emu.wsUrl);
    assert.equal(client.ws.protocol, 'cognigy-runtime-v1');
    client.close();
  });

  it('accepts any Origin', async () => {
    const client = await dial(emu.wsUrl, { origin: 'https://evil.example' });
    client.close();
  });

  it('answers 400 when tenant is missing', async () => {
    const refused = await dialRefused(emu.wsUrl, { tenant: undefined });
    assert.equal(refused.status, 400);
  });

  it('answers 400 when botId is missing', async () => {
    assert.equal((await dialRefused(emu.wsUrl, { botId: undefined })).status, 400);
  });

  it('answers 401 for an unknown token, and never echoes it', async () => {
    const refused = await dialRefused(emu.wsUrl, { token: 'secret-unknown-token-123' });
    assert.equal(refused.status, 401);
    assert.doesNotMatch(refused.body, /secret-unknown-token-123/);
  });

  it('answers 401 for a missing token', async () => {
    assert.equal((await dialRefused(emu.wsUrl, { token: undefined })).status, 401);
  });

  it('answers 403 for a token without bot:runtime:execute', async () => {
    assert.equal((await dialRefused(emu.wsUrl, { token: 'no-scopes' })).status, 403);
  });

  it('answers 404 for another path', async () => {
    const refused = await dialRefused(emu.wsUrl.replace('/ws/v1', '/ws/v2'));
    assert.equal(refused.status, 404);
  });

  it('answers 429 with Retry-After when the handshake rate is exceeded', async () => {
    await withFaults(emu, { handshakeRate: 1 }, async () => {
      const first = await dial(emu.wsUrl, { tenant: 'tenant-429' });
      first.close();
      const refused = await dialRefused(emu.wsUrl, { tenant: 'tenant-429' });
      assert.equal(refused.status, 429);
      assert.equal(refused.headers['retry-after'], '1');
    });
  });

  it('counts handshakes by answer in /emulator/stats', async () => {
    const { body } = await getJson(`${emu.httpUrl}/emulator/stats`);
    assert.ok(body.handshakes['101'] >= 2);
    assert.ok(body.handshakes['401'] >= 2);
    assert.ok(body.handshakes['403'] >= 1);
    assert.ok(body.handshakes['400'] >= 2);
  });
});

describe('emulator close codes', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({
      sessions: 5,
      tokens: [{ token: 'dev-token' }, { token: 'runtime-only', scopes: ['bot:runtime:execute'] }],
    });
    emu.store.create({ sessionId: 'crashing', engineError: true });
  });
  after(() => emu.close());

  it('closes 1008 with a reason naming the invalid field', async () => {
    const client = await dial(emu.wsUrl);
    client.send({ ...seedDirective('session-1'), maxDurationSec: 5 });
    const closed = await client.waitClosed();
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /maxDurationSec/);
  });

  it('closes 1008 for a SEND from a token without session:manage', async () => {
    const client = await dial(emu.wsUrl, { token: 'runtime-only' });
    client.send(seedDirective('session-1'));
    const closed = await client.waitClosed();
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /session:manage/);
    const state = await getJson(`${emu.httpUrl}/emulator/sessions/session-1`);
    assert.equal(state.body.flowState, 'ACTIVE', 'the refused directive changed nothing');
  });

  it('closes 1008 "token expired" once a token expires mid-connection', async () => {
    // The token lives until the test expires it: no race with how long earlier tests took.
    emu.tokens.add({ token: 'short-lived' });
    const client = await dial(emu.wsUrl, { token: 'short-lived' });
    const first = await client.request(stateCheck('session-2'));
    assert.equal(first['flowState'], 'ACTIVE');
    emu.tokens.expire('short-lived');
    // The first frame after expiry closes the connection, unanswered.
    client.send(stateCheck('session-2'));
    const closed = await withDeadline(
      Promise.race([
        client.next().then((answer) => assert.fail(`answered ${JSON.stringify(answer)}`)),
        client.closed,
      ]),
    );
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /token expired/);
  });

  it('closes 1009 for a frame over 64 KiB', async () => {
    const client = await dial(emu.wsUrl);
    client.send({ ...seedDirective('session-1'), sessionId: 'x'.repeat(65 * 1024) });
    assert.equal((await client.waitClosed()).code, 1009);
  });

  it('closes 1011 when the engine fails on a session', async () => {
    const client = await dial(emu.wsUrl);
    client.send(seedDirective('crashing'));
    assert.equal((await client.waitClosed()).code, 1011);
  });

  it('drops the connection (1006) on every Nth frame', async () => {
    await withFaults(emu, { dropEveryFrames: 3 }, async () => {
      const client = await dial(emu.wsUrl);
      assert.equal((await client.request(stateCheck('session-3')))['flowState'], 'ACTIVE');
      assert.equal((await client.request(stateCheck('session-3')))['flowState'], 'ACTIVE');
      client.send(seedDirective('session-3'));
      assert.equal((await client.waitClosed()).code, 1006);
      // The dropped directive was applied: only its answer was lost.
      const state = await getJson(`${emu.httpUrl}/emulator/sessions/session-3`);
      assert.equal(state.body.flowState, 'RESET');
    });
  });

  it('closes 1008 for a binary frame', async () => {
    const client = await dial(emu.wsUrl);
    client.ws.send(Buffer.from('{"type":"SEND"}'), { binary: true });
    const closed = await client.waitClosed();
    assert.equal(closed.code, 1008);
    assert.match(closed.reason, /binary/);
  });

  it('closes 1000 when the emulator shuts down', async () => {
    const other = await startEmulator();
    const client = await dial(other.wsUrl);
    await other.close();
    assert.equal((await client.waitClosed()).code, 1000);
  });
});

describe('emulator resets', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ sessions: 20 });
  });
  after(() => emu.close());

  it('clears every layer the seed directive names', async () => {
    const client = await dial(emu.wsUrl);
    const before = await client.request(stateCheck('session-1', 'q1'));
    assert.equal(before['flowState'], 'ACTIVE');
    assert.ok(Object.keys(before['variables'] as object).length > 0);
    assert.ok((before['historyLength'] as number) > 0);
    assert.notEqual(before['nluContext'], null);

    const ack = await client.request({ ...seedDirective('session-1'), requestId: 'r1' });
    assert.deepEqual(ack, { status: 'RESET_COMPLETE', sessionId: 'session-1', requestId: 'r1' });

    const state = await client.request(stateCheck('session-1', 'q2'));
    assert.deepEqual(state, {
      flowState: 'RESET',
      variables: {},
      dialogState: 'COLD',
      engineState: 'INITIALIZED',
      historyLength: 0,
      nluContext: null,
      sessionId: 'session-1',
      requestId: 'q2',
    });
    client.close();
  });

  it('clears only what a partial directive names', async () => {
    const client = await dial(emu.wsUrl);
    const ack = await client.request({
      ...seedDirective('session-2'),
      stateClearMatrix: { dialogState: 'COLD' },
      contextWipeDirective: { clearVariables: true, clearHistory: false },
    });
    assert.equal(ack['status'], 'RESET_COMPLETE');
    const { body } = await getJson(`${emu.httpUrl}/emulator/sessions/session-2`);
    assert.equal(body.flowState, 'ACTIVE');
    assert.equal(body.dialogState, 'COLD');
    assert.equal(body.engineState, 'RUNNING');
    assert.deepEqual(body.variables, {});
    assert.equal(body.historyLength, 4);
    assert.equal(body.nluContext.intent, 'order.status');
    client.close();
  });

  it('answers SESSION_NOT_FOUND to a SEND and a QUERY for an unknown session', async () => {
    const client = await dial(emu.wsUrl);
    assert.equal((await client.request(seedDirective('nobody')))['status'], 'SESSION_NOT_FOUND');
    assert.deepEqual(await client.request(stateCheck('nobody')), {
      status: 'SESSION_NOT_FOUND',
      sessionId: 'nobody',
    });
    client.close();
  });

  it('answers REJECTED for a session the engine refuses to reset, and applies nothing', async () => {
    emu.store.create({ sessionId: 'refuser', rejects: true });
    const client = await dial(emu.wsUrl);
    const answer = await client.request(seedDirective('refuser'));
    assert.equal(answer['status'], 'REJECTED');
    const state = await client.request(stateCheck('refuser'));
    assert.equal(state['flowState'], 'ACTIVE');
    client.close();
  });

  it('keeps a blocking flow ACTIVE after the acknowledgement until the action ends', async () => {
    emu.store.create({ sessionId: 'webhook', blockingMs: 300, variables: { a: 1 } });
    const client = await dial(emu.wsUrl);
    // Before the directive goes: the action cannot end sooner than 300 ms after this, however late the ack.
    const started = Date.now();
    const ack = await client.request(seedDirective('webhook'));
    assert.equal(ack['status'], 'RESET_COMPLETE');
    const first = await client.request(stateCheck('webhook'));
    assert.equal(first['flowState'], 'ACTIVE');
    assert.deepEqual(first['variables'], {}, 'variables are cleared at once');
    let polls = 1;
    for (;;) {
      const state = await client.request(stateCheck('webhook'));
      polls++;
      if (state['flowState'] === 'RESET') break;
      assert.ok(Date.now() - started < 5000, 'the flow never left ACTIVE');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(Date.now() - started >= 250, 'the flow reset landed before the action ended');
    assert.ok(polls > 2);
    client.close();
  });

  it('seeds a share of sessions into blocking actions, deterministically', async () => {
    const seeded = await startEmulator({
      sessions: 200,
      faults: { blockingShare: 0.25, blockingMs: 60_000, seed: 7 },
    });
    try {
      const client = await dial(seeded.wsUrl);
      let blocking = 0;
      for (let k = 1; k <= 200; k++) {
        await client.request(seedDirective(`session-${k}`));
        if ((await client.request(stateCheck(`session-${k}`)))['flowState'] === 'ACTIVE') blocking++;
      }
      assert.ok(blocking > 25 && blocking < 75, `expected about 50 blocking sessions, got ${blocking}`);
      client.close();
    } finally {
      await seeded.close();
    }
  });

  it('answers RATE_LIMITED with retryAfterMs past the per-tenant message rate, and applies nothing', async () => {
    const limited = await startEmulator({ sessions: 10, faults: { messageRate: 2 } });
    try {
      const client = await dial(limited.wsUrl);
      const answers = [];
      for (let k = 1; k <= 5; k++) answers.push(await client.request(seedDirective(`session-${k}`)));
      const rateLimited = answers.filter((a) => a['status'] === 'RATE_LIMITED');
      assert.ok(rateLimited.length >= 2, `expected RATE_LIMITED answers, got ${JSON.stringify(answers)}`);
      assert.ok((rateLimited[0]!['retryAfterMs'] as number) > 0);
      const last = answers.lastIndexOf(rateLimited.at(-1)!) + 1;
      assert.equal((await client.request(stateCheck(`session-${last}`)))['flowState'], 'ACTIVE');
      // Queries are not rate limited.
      assert.equal((await client.request(stateCheck('session-1')))['flowState'], 'RESET');
      client.close();
    } finally {
      await limited.close();
    }
  });

  it('answers pipelined requests one each, in request order, with latency on', async () => {
    const slow = await startEmulator({ sessions: 50, faults: { latencyMs: 15 } });
    try {
      const client = await dial(slow.wsUrl);
      for (let k = 1; k <= 50; k++) {
        client.send({ ...seedDirective(`session-${k}`), requestId: `s${k}` });
        client.send(stateCheck(`session-${k}`, `q${k}`));
      }
      for (let k = 1; k <= 50; k++) {
        assert.equal((await client.next())['requestId'], `s${k}`);
        const state = await client.next();
        assert.equal(state['requestId'], `q${k}`);
        assert.equal(state['flowState'], 'RESET');
      }
      // Nothing unsolicited follows.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(client.messages.length, 0);
      client.close();
    } finally {
      await slow.close();
    }
  });

  it('answers pings with pongs', async () => {
    const client = await dial(emu.wsUrl);
    const pong = new Promise<string>((resolve) => client.ws.once('pong', (data) => resolve(data.toString())));
    client.ws.ping('hello');
    assert.equal(await withDeadline(pong), 'hello');
    client.close();
  });

  it('keeps serving other connections through 1,000 garbage frames on one', async () => {
    const good = await dial(emu.wsUrl);
    const bad = new WebSocket(`${emu.wsUrl}?tenant=t&botId=b&token=dev-token`);
    bad.on('error', () => undefined);
    await withDeadline(new Promise((resolve) => bad.once('open', resolve)));
    const garbage = [
      '{',
      'null',
      '[]',
      '{"type":"NOPE"}',
      '\u0000\u0001',
      '{"type":"SEND"}',
      'x'.repeat(1000),
    ];
    for (let i = 0; i < 1000 && bad.readyState === WebSocket.OPEN; i++)
      bad.send(garbage[i % garbage.length]!);
    const closed = await withDeadline(
      new Promise<number>((resolve) => bad.once('close', (code) => resolve(code))),
    );
    assert.equal(closed, 1008);
    // 1,000 more, each on a fresh connection: the emulator survives all of them.
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const ws = new WebSocket(`${emu.wsUrl}?tenant=t&botId=b&token=dev-token`);
        ws.on('error', () => undefined);
        await withDeadline(new Promise((resolve) => ws.once('open', resolve)));
        for (let j = 0; j < 25; j++) ws.send(garbage[(i + j) % garbage.length]!);
        await withDeadline(new Promise((resolve) => ws.once('close', resolve)));
      }),
    );
    const state = await good.request(stateCheck('session-5'));
    assert.equal(state['flowState'], 'ACTIVE');
    assert.equal((await good.request(seedDirective('session-5')))['status'], 'RESET_COMPLETE');
    good.close();
  });
});

describe('emulator strict mode', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ sessions: 3, strict: true, faults: { messageRate: 1000 } });
  });
  after(() => emu.close());

  it("answers with the seed's bare shapes only", async () => {
    const client = await dial(emu.wsUrl);
    assert.deepEqual(await client.request({ ...seedDirective('session-1'), requestId: 'r1' }), {
      status: 'RESET_COMPLETE',
    });
    assert.deepEqual(await client.request(stateCheck('session-1', 'q1')), {
      flowState: 'RESET',
      variables: {},
    });
    assert.deepEqual(await client.request(seedDirective('missing')), { status: 'SESSION_NOT_FOUND' });
    const before = await client.request(stateCheck('session-2'));
    assert.deepEqual(Object.keys(before).sort(), ['flowState', 'variables']);
    client.close();
  });
});

describe("the seed's own flow against the emulator", () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ sessions: 2, strict: true });
  });
  after(() => emu.close());

  it('dials with the seed query and headers, resets, and verifies with one read per request', async () => {
    // DialCognigyWS: tenant, botId and token in the query; Origin and Sec-WebSocket-Protocol headers.
    const url = new URL(emu.wsUrl);
    url.searchParams.set('tenant', 'acme');
    url.searchParams.set('botId', 'support-bot');
    url.searchParams.set('token', 'dev-token');
    // gorilla sets Sec-WebSocket-Protocol as a raw header; ws sends the same header from its protocols list.
    const ws = new WebSocket(url, ['cognigy-runtime-v1'], {
      headers: { Origin: 'https://api.cognigy.com' },
      handshakeTimeout: 10_000,
    });
    const { TestClient } = await import('./helpers/ws.js');
    const client = new TestClient(ws);
    await withDeadline(new Promise((resolve) => ws.once('open', resolve)));

    const pre = await client.request({ type: 'QUERY', sessionId: 'session-1', request: 'STATE_CHECK' });
    assert.equal(pre['flowState'], 'ACTIVE');
    assert.ok(Object.keys(pre['variables'] as object).length > 0);

    // CompileResetPayload: the full matrix, every wipe, maxDurationSec 900, RFC 3339 seconds.
    const ack = await client.request(seedDirective('session-1', 900));
    assert.equal(ack['status'], 'RESET_COMPLETE');

    const state = await client.request({ type: 'QUERY', sessionId: 'session-1', request: 'STATE_CHECK' });
    assert.equal(state['flowState'], 'RESET');
    assert.equal(Object.keys(state['variables'] as object).length, 0);
    client.close();
  });
});

describe('emulator inspection over HTTP', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ sessions: 3, tokens: [{ token: 'very-secret-token-xyz' }] });
  });
  after(() => emu.close());

  it('shows the full state of a seeded session', async () => {
    const { status, body } = await getJson(`${emu.httpUrl}/emulator/sessions/session-2`);
    assert.equal(status, 200);
    assert.equal(body.sessionId, 'session-2');
    assert.equal(body.userId, 'user-2');
    assert.match(body.flowReferenceId, /^[0-9a-f-]{36}$/);
    assert.match(body.entrypoint, /^[0-9a-f]{24}$/);
    assert.equal(body.flowState, 'ACTIVE');
    assert.equal(body.dialogState, 'WARM');
    assert.equal(body.engineState, 'RUNNING');
    assert.ok(Object.keys(body.variables).length > 0);
    assert.ok(body.history.length > 0);
    assert.ok(body.nluContext !== null);
  });

  it('answers 404 for an unknown session and an unknown route', async () => {
    assert.equal((await getJson(`${emu.httpUrl}/emulator/sessions/session-4`)).status, 404);
    const route = await getJson(`${emu.httpUrl}/nothing-here`);
    assert.equal(route.status, 404);
    assert.equal(route.body.error.code, 'CR_EMU_ERR_NOT_FOUND');
  });

  it('creates sessions, refuses duplicates and bad bodies', async () => {
    const created = await sendJson('POST', `${emu.httpUrl}/emulator/sessions`, {
      sessions: [
        { sessionId: 'custom-1', variables: { x: 1 } },
        { sessionId: 'custom 2', stuck: true },
      ],
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.created, 2);
    const shown = await getJson(`${emu.httpUrl}/emulator/sessions/${encodeURIComponent('custom 2')}`);
    assert.equal(shown.body.blocking.durationMs, null);
    assert.equal(
      (await sendJson('POST', `${emu.httpUrl}/emulator/sessions`, { sessionId: 'custom-1' })).status,
      409,
    );
    const bad = await sendJson('POST', `${emu.httpUrl}/emulator/sessions`, {
      sessionId: 'x',
      flowState: 'DANCING',
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /flowState/);
    const bulk = await sendJson('POST', `${emu.httpUrl}/emulator/sessions`, { count: 100, prefix: 'bulk-' });
    assert.equal(bulk.body.created, 100);
    assert.equal((await getJson(`${emu.httpUrl}/emulator/sessions/bulk-100`)).status, 200);
  });

  it('changes faults at run time and refuses invalid ones', async () => {
    const ok = await sendJson('PUT', `${emu.httpUrl}/emulator/faults`, { latencyMs: 5 });
    assert.equal(ok.body.latencyMs, 5);
    const bad = await sendJson('PUT', `${emu.httpUrl}/emulator/faults`, { dropRate: 2 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /dropRate/);
    await sendJson('PUT', `${emu.httpUrl}/emulator/faults`, { latencyMs: 0 });
  });

  it('never shows a token in stats', async () => {
    const client = await dial(emu.wsUrl, { token: 'very-secret-token-xyz' });
    await client.request(stateCheck('session-1'));
    client.close();
    const res = await fetch(`${emu.httpUrl}/emulator/stats`);
    const text = await res.text();
    assert.doesNotMatch(text, /very-secret-token-xyz/);
    const stats = JSON.parse(text);
    assert.equal(stats.sessions, 105);
    assert.ok(stats.queries >= 1);
  });
});

describe('emulator resets per session', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ sessions: 5 });
  });
  after(() => emu.close());

  it('counts in /emulator/stats how many sessions were reset once, twice, … (a deleted one leaves it)', async () => {
    const client = await dial(emu.wsUrl);
    for (const id of ['session-1', 'session-1', 'session-2', 'session-3'])
      assert.equal((await client.request(seedDirective(id))).status, 'RESET_COMPLETE');
    await client.request(stateCheck('session-4'));
    client.close();
    assert.deepEqual((await getJson(`${emu.httpUrl}/emulator/stats`)).body.resetsPerSession, { 1: 2, 2: 1 });
    assert.equal((await sendJson('DELETE', `${emu.httpUrl}/emulator/sessions/session-1`, {})).status, 204);
    assert.deepEqual((await getJson(`${emu.httpUrl}/emulator/stats`)).body.resetsPerSession, { 1: 2 });
  });
});
