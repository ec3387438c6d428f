import * as assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { CognigyResetError } from '../src/errors.js';
import { type Emulator, startEmulator } from '../src/emulator/index.js';
import { OAuth2TokenProvider } from '../src/transports/auth/oauth2.js';
import { StaticTokenProvider } from '../src/transports/auth/token-provider.js';
import { RuntimeConnection } from '../src/transports/runtime-ws/connection.js';
import { RuntimeWsTransport } from '../src/transports/runtime-ws/transport.js';
import { runtimeDialUrl } from '../src/transports/runtime-ws/url.js';
import { compileDirective } from '../src/protocol/index.js';
import { planReset } from '../src/model/plan.js';
import { withDeadline } from './helpers/ws.js';
import { withFaults } from './helpers/faults.js';

const PLAN = planReset();

function transportFor(
  wsUrl: string,
  token = 'dev-token',
  extra: Partial<ConstructorParameters<typeof RuntimeWsTransport>[0]> = {},
) {
  return new RuntimeWsTransport({
    url: runtimeDialUrl(wsUrl, 'tenant-1', 'bot-1', false),
    tokens: new StaticTokenProvider(token),
    connections: 1,
    ...extra,
  });
}

/** Sends a reset alone (no state check behind it) and resolves with its answer. */
async function sendReset(
  transport: RuntimeWsTransport,
  sessionId: string,
  requestId?: string,
  timeoutMs = 5000,
) {
  const prepared = transport.prepare({ sessionId }, PLAN, { requestId, maxDurationSec: undefined });
  // The transport retries nothing inside: the pipeline's retry step is never called here.
  const noRetry = (): Promise<void> => Promise.resolve();
  return transport.reset(prepared, {
    timeoutMs,
    verify: false,
    checkRequestId: undefined,
    beforeRetry: noRetry,
  }).ack;
}

async function rejection(promise: Promise<unknown>): Promise<CognigyResetError> {
  try {
    await withDeadline(promise, 10_000, 'a rejection');
  } catch (err) {
    if (err instanceof CognigyResetError) return err;
    throw err;
  }
  assert.fail('expected a rejection');
}

/** A hand-rolled engine that misbehaves on purpose. */
async function rawEngine(
  onMessage: (ws: WebSocket, text: string, n: number) => void,
  opts: { autoPong?: boolean; onConnection?: (req: IncomingMessage) => void } = {},
): Promise<{ wsUrl: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    autoPong: opts.autoPong ?? true,
    handleProtocols: (protocols) => (protocols.has('cognigy-runtime-v1') ? 'cognigy-runtime-v1' : false),
  });
  await new Promise((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws, req) => {
    opts.onConnection?.(req);
    let n = 0;
    ws.on('message', (data) => onMessage(ws, (data as Buffer).toString('utf8'), ++n));
  });
  const address = wss.address() as { port: number };
  return {
    wsUrl: `ws://127.0.0.1:${address.port}/ws/v1`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

for (const strict of [false, true]) {
  describe(`runtime-ws transport against the emulator (${strict ? 'strict: bare shapes only' : 'normal'})`, () => {
    let emu: Emulator;
    before(async () => {
      emu = await startEmulator({ sessions: 500, strict });
    });
    after(() => emu.close());

    it('resets a session and reads its state back with a state check', async (t) => {
      const transport = transportFor(emu.wsUrl);
      t.after(() => transport.close());
      const ack = await sendReset(transport, 'session-1', 'r-1');
      assert.equal(ack.status, 'RESET_COMPLETE');
      const state = await transport.check('session-1', 'r-2', { timeoutMs: 5000 });
      assert.equal(state.kind, 'state');
      assert.equal(state.kind === 'state' && state.flowState, 'RESET');
      assert.deepEqual(state.kind === 'state' && state.variables, {});
    });

    it('keeps 300 requests in flight on one connection and matches every answer to its request', async (t) => {
      const transport = transportFor(emu.wsUrl);
      t.after(() => transport.close());
      // Every third id does not exist, so a mismatched answer would show as a wrong status.
      const ids = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? `ghost-${i}` : `session-${i + 100}`));
      const acks = await Promise.all(
        ids.map((id) => sendReset(transport, id, strict ? undefined : `q-${id}`)),
      );
      acks.forEach((ack, i) => {
        assert.equal(
          ack.status,
          ids[i]!.startsWith('ghost') ? 'SESSION_NOT_FOUND' : 'RESET_COMPLETE',
          ids[i],
        );
      });
      assert.equal(transport.counters.dials, 1);
    });

    it('spreads bursts over fresh connections: one dial for a cold burst, one more slot at each busy one', async (t) => {
      const before = emu.stats().handshakes['101'] ?? 0;
      const transport = transportFor(emu.wsUrl, 'dev-token', { connections: 3 });
      t.after(() => transport.close());
      const dials: number[] = [];
      for (const from of [400, 420, 440, 460]) {
        const acks = await withDeadline(
          Promise.all(Array.from({ length: 20 }, (_, i) => sendReset(transport, `session-${from + i}`))),
        );
        assert.ok(acks.every((ack) => ack.status === 'RESET_COMPLETE'));
        dials.push(transport.counters.dials);
      }
      assert.deepEqual(dials, [1, 2, 3, 3]);
      assert.equal((emu.stats().handshakes['101'] ?? 0) - before, 3);
    });
  });
}

describe('runtime-ws handshake and close codes', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({
      sessions: 10,
      tokens: [
        { token: 'dev-token' },
        { token: 'no-execute', scopes: ['session:manage'] },
        { token: 'no-manage', scopes: ['bot:runtime:execute'] },
      ],
    });
    emu.store.create({ sessionId: 'broken', engineError: true });
  });
  after(() => emu.close());

  it('sends the Origin header, the cognigy-runtime-v1 subprotocol, and tenant, botId and token in the query', async () => {
    let seen: IncomingMessage | undefined;
    const engine = await rawEngine(
      (ws, text) => ws.send(JSON.stringify({ status: 'RESET_COMPLETE', echo: text.length })),
      {
        onConnection: (req) => (seen = req),
      },
    );
    const transport = transportFor(engine.wsUrl, 'query-token');
    assert.equal((await sendReset(transport, 's-1')).status, 'RESET_COMPLETE');
    const url = new URL(seen!.url!, 'http://x');
    assert.equal(url.pathname, '/ws/v1');
    assert.equal(url.searchParams.get('tenant'), 'tenant-1');
    assert.equal(url.searchParams.get('botId'), 'bot-1');
    assert.equal(url.searchParams.get('token'), 'query-token');
    assert.equal(seen!.headers['sec-websocket-protocol'], 'cognigy-runtime-v1');
    assert.equal(seen!.headers.origin, 'https://api.cognigy.com');
    await transport.close();
    await engine.close();
  });

  it('maps 400, 401 and 403 at the handshake to coded errors carrying the status, without the token', async () => {
    const noTenant = new URL(emu.wsUrl);
    noTenant.searchParams.set('botId', 'b');
    const e400 = await rejection(
      RuntimeConnection.open({
        url: noTenant,
        token: 'dev-token',
        origin: 'o',
        handshakeTimeoutMs: 5000,
        pingIntervalMs: 30_000,
        deadAfterMs: 60_000,
      }),
    );
    assert.equal(e400.code, 'CR_ERR_TRANSPORT_BAD_REQUEST');
    assert.equal(e400.status, 400);
    const e401 = await rejection(sendReset(transportFor(emu.wsUrl, 'secret-unknown-42'), 'session-1'));
    assert.equal(e401.code, 'CR_ERR_AUTH_UNAUTHORIZED');
    assert.equal(e401.status, 401);
    assert.doesNotMatch(e401.message, /secret-unknown-42/);
    const e403 = await rejection(sendReset(transportFor(emu.wsUrl, 'no-execute'), 'session-1'));
    assert.equal(e403.code, 'CR_ERR_AUTH_FORBIDDEN');
    assert.equal(e403.status, 403);
  });

  it('maps 429 to a rate-limit error and reads Retry-After into retryAfterMs', async () => {
    await withFaults(emu, { handshakeRate: 1 }, async () => {
      const first = transportFor(emu.wsUrl);
      await sendReset(first, 'session-2');
      const second = transportFor(emu.wsUrl);
      const e429 = await rejection(sendReset(second, 'session-3'));
      assert.equal(e429.code, 'CR_ERR_TRANSPORT_RATE_LIMITED');
      assert.equal(e429.status, 429);
      assert.equal(e429.retryAfterMs, 1000);
      await first.close();
      await second.close();
    });
  });

  it('turns 1008 for a token lacking session:manage into a permission error carrying the close code', async () => {
    const err = await rejection(sendReset(transportFor(emu.wsUrl, 'no-manage'), 'session-4'));
    assert.equal(err.code, 'CR_ERR_AUTH_SCOPE');
    assert.equal(err.closeCode, 1008);
  });

  it('turns 1011 (engine error) into a retryable error carrying the close code', async () => {
    const err = await rejection(sendReset(transportFor(emu.wsUrl), 'broken'));
    assert.equal(err.code, 'CR_ERR_TRANSPORT_ENGINE_ERROR');
    assert.equal(err.closeCode, 1011);
    assert.equal(err.retryable, true);
  });

  for (const [close, code] of [
    [1000, 'CR_ERR_TRANSPORT_CLOSED_NORMAL'],
    [1008, 'CR_ERR_TRANSPORT_POLICY'],
    [1009, 'CR_ERR_TRANSPORT_TOO_BIG'],
    [1011, 'CR_ERR_TRANSPORT_ENGINE_ERROR'],
    [1006, 'CR_ERR_TRANSPORT_DROPPED'],
  ] as const) {
    it(`fails a request in flight with ${code} when the engine closes with ${close}`, async (t) => {
      const engine = await rawEngine((ws) => (close === 1006 ? ws.terminate() : ws.close(close, 'bye')));
      t.after(() => engine.close());
      const err = await rejection(sendReset(transportFor(engine.wsUrl), 's-1'));
      assert.equal(err.code, code);
      assert.equal(err.closeCode, close);
    });
  }

  it('reconnects after a drop: the next request goes out on a new connection', async () => {
    let frames = 0;
    const engine = await rawEngine((ws) =>
      ++frames === 1 ? ws.terminate() : ws.send('{"status":"RESET_COMPLETE"}'),
    );
    const transport = transportFor(engine.wsUrl);
    assert.equal((await rejection(sendReset(transport, 's-1'))).code, 'CR_ERR_TRANSPORT_DROPPED');
    assert.equal((await sendReset(transport, 's-1')).status, 'RESET_COMPLETE');
    assert.equal(transport.counters.dials, 2);
    await transport.close();
    await engine.close();
  });
});

describe('runtime-ws answer matching and keepalive', () => {
  it('fails the oldest request with CR_ERR_PROTO_BAD_ANSWER on a broken frame, and the connection goes on', async () => {
    const engine = await rawEngine((ws, _t, n) =>
      ws.send(n === 1 ? '{not json' : '{"status":"RESET_COMPLETE"}'),
    );
    const transport = transportFor(engine.wsUrl);
    const [first, second] = await Promise.allSettled([sendReset(transport, 'a'), sendReset(transport, 'b')]);
    assert.equal(
      first.status === 'rejected' && (first.reason as CognigyResetError).code,
      'CR_ERR_PROTO_BAD_ANSWER',
    );
    assert.equal(second.status === 'fulfilled' && second.value.status, 'RESET_COMPLETE');
    assert.equal(transport.counters.dials, 1);
    await transport.close();
    await engine.close();
  });

  it("refuses an answer about another session, a state check's as a reset's", async () => {
    const engine = await rawEngine((ws, text) => {
      const frame = JSON.parse(text) as { sessionId: string; type: string };
      const about = frame.sessionId === 'a' ? 'someone-else' : frame.sessionId;
      ws.send(
        JSON.stringify(
          frame.type === 'QUERY'
            ? { flowState: 'RESET', variables: {}, sessionId: about }
            : { status: 'RESET_COMPLETE', sessionId: about },
        ),
      );
    });
    const transport = transportFor(engine.wsUrl);
    assert.equal((await rejection(sendReset(transport, 'a'))).code, 'CR_ERR_PROTO_ANSWER_MISMATCH');
    const options = { timeoutMs: 5000, signal: undefined };
    assert.equal(
      (await rejection(transport.check('a', undefined, options))).code,
      'CR_ERR_PROTO_ANSWER_MISMATCH',
    );
    assert.equal((await transport.check('b', undefined, options)).kind, 'state');
    assert.equal((await sendReset(transport, 'b')).status, 'RESET_COMPLETE');
    await transport.close();
    await engine.close();
  });

  it('matches by the echoed requestId and refuses an answer that echoes another request', async () => {
    const engine = await rawEngine((ws, text) => {
      const { requestId } = JSON.parse(text) as { requestId: string };
      ws.send(
        JSON.stringify({ status: 'RESET_COMPLETE', requestId: requestId === 'r-a' ? 'r-b' : requestId }),
      );
    });
    const transport = transportFor(engine.wsUrl);
    const err = await rejection(sendReset(transport, 'a', 'r-a'));
    assert.equal(err.code, 'CR_ERR_PROTO_ANSWER_MISMATCH');
    assert.equal((await sendReset(transport, 'b', 'r-c')).status, 'RESET_COMPLETE');
    await transport.close();
    await engine.close();
  });

  it('drops the connection with CR_ERR_PROTO_UNSOLICITED on a frame no request waits for', async () => {
    const engine = await rawEngine((ws) => {
      ws.send('{"status":"RESET_COMPLETE"}');
      ws.send('{"status":"RESET_COMPLETE"}');
    });
    const conn = await RuntimeConnection.open({
      url: new URL(`${engine.wsUrl}?tenant=t&botId=b`),
      token: 'dev-token',
      origin: 'o',
      handshakeTimeoutMs: 5000,
      pingIntervalMs: 30_000,
      deadAfterMs: 60_000,
    });
    const closed = new Promise<CognigyResetError>((resolve) => conn.onClose(resolve));
    const { text } = compileDirective('a', PLAN);
    assert.equal((await conn.request(text, 'a', undefined, 'status', 5000)).kind, 'status');
    const err = await withDeadline(closed, 5000, 'the close');
    assert.equal(err.code, 'CR_ERR_PROTO_UNSOLICITED');
    assert.equal(conn.isOpen, false);
    await engine.close();
  });

  it('declares the connection dead when no frame or pong arrives for deadAfterMs', async (t) => {
    const engine = await rawEngine(() => undefined, { autoPong: false });
    t.after(() => engine.close());
    const transport = transportFor(engine.wsUrl, 'dev-token', { pingIntervalMs: 40, deadAfterMs: 200 });
    t.after(() => transport.close());
    const pending = sendReset(transport, 'a');
    // The raw engine never answers and never pongs.
    const err = await rejection(pending);
    assert.equal(err.code, 'CR_ERR_TRANSPORT_DEAD');
  });

  it('fails a request with CR_ERR_RESET_ACK_TIMEOUT when its answer misses the deadline', async (t) => {
    const engine = await rawEngine(() => undefined);
    t.after(() => engine.close());
    const transport = transportFor(engine.wsUrl);
    t.after(() => transport.close());
    const err = await rejection(sendReset(transport, 'a', undefined, 100));
    assert.equal(err.code, 'CR_ERR_RESET_ACK_TIMEOUT');
  });
});

describe('OAuth2 token refresh', () => {
  let emu: Emulator;
  before(async () => {
    emu = await startEmulator({ sessions: 20, tokens: [] });
  });
  after(() => emu.close());

  it('answers a 401 with one refresh shared by every connection, then one redial each', async () => {
    const tokens = new OAuth2TokenProvider({
      tokenUrl: `${emu.httpUrl}/auth/oauth2/token`,
      clientId: 'dev-client',
      clientSecret: 'dev-secret',
      refreshToken: 'dev-refresh-token',
      initialToken: 'stale-token',
    });
    const transport = new RuntimeWsTransport({
      url: runtimeDialUrl(emu.wsUrl, 't', 'b', false),
      tokens,
      connections: 4,
    });
    await transport.warm();
    assert.equal(tokens.requests, 1);
    assert.equal(emu.stats().oauth['issued'], 1);
    assert.equal(emu.stats().handshakes['401'], 4);
    assert.equal(emu.stats().handshakes['101'], 4);
    assert.equal((await sendReset(transport, 'session-1')).status, 'RESET_COMPLETE');
    await transport.close();
  });

  it('fails with CR_ERR_AUTH_REFRESH_FAILED (never echoing the secret) when the client is refused', async () => {
    const tokens = new OAuth2TokenProvider({
      tokenUrl: `${emu.httpUrl}/auth/oauth2/token`,
      clientId: 'dev-client',
      clientSecret: 'wrong-secret-xyz',
    });
    const err = await rejection(tokens.get());
    assert.equal(err.code, 'CR_ERR_AUTH_REFRESH_FAILED');
    assert.equal(err.status, 401);
    assert.match(err.message, /invalid_client/);
    assert.doesNotMatch(err.message, /wrong-secret-xyz/);
  });
});
